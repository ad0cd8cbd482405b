"""modules/spec/cluster.py: node pools' keys for AKS pools in practice (labels, taints, maxPods, Windows, subnet, surge),
good and bad, each error with the file and key path a user sees."""

from __future__ import annotations

from typing import Any

import pytest

from modules.spec import parse_spec
from tests.modules.test_spec import FILE, errors

POOLS = "fluxfleet:cluster.nodePools"
SUBNET = (
    "/subscriptions/6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f/resourceGroups/rg-net/providers/Microsoft.Network"
    "/virtualNetworks/vnet-weu/subnets/snet-apps"
)


def with_user_pool(raw: dict[str, Any], **keys: Any) -> dict[str, Any]:
    raw["cluster"]["nodePools"].append({"name": "apps", "vmSize": "Standard_D8s_v5", "count": 2, **keys})
    return raw


def test_a_pool_with_every_new_key_reads_into_typed_values(raw):
    with_user_pool(
        raw,
        nodeLabels={"workload": "apps", "example.com/team": "web", "empty": ""},
        nodeTaints=["dedicated=apps:NoSchedule", "spot=true:PreferNoSchedule", "k.example.io/x=y:NoExecute"],
        maxPods=250,
        osSKU="AzureLinux3",
        vnetSubnetId=SUBNET,
        maxSurge=3,
    )
    raw["cluster"]["nodePools"].append(
        {"name": "win22", "vmSize": "Standard_D4s_v5", "count": 1, "osType": "Windows", "osSKU": "Windows2022"}
    )
    system, apps, win = parse_spec(raw, file=FILE).cluster.node_pools
    assert system.os_type == "Linux" and system.max_pods is None and system.max_surge is None
    assert apps.node_labels == {"workload": "apps", "example.com/team": "web", "empty": ""}
    assert apps.node_taints == ["dedicated=apps:NoSchedule", "spot=true:PreferNoSchedule", "k.example.io/x=y:NoExecute"]
    assert (apps.max_pods, apps.os_sku, apps.vnet_subnet_id) == (250, "AzureLinux3", SUBNET)
    assert apps.max_surge == "3"  # as ARM takes it
    assert (win.os_type, win.os_sku) == ("Windows", "Windows2022")


@pytest.mark.parametrize("surge", [1, "5", "1%", "33%", "100%"])
def test_max_surge_is_a_node_count_or_a_percentage(raw, surge):
    assert parse_spec(with_user_pool(raw, maxSurge=surge), file=FILE).cluster.node_pools[1].max_surge == str(surge)


@pytest.mark.parametrize(
    ("keys", "path", "message"),
    [
        (
            {"nodeLabels": {"bad key!": "x"}},
            "nodeLabels.bad key!",
            "'bad key!' is not a Kubernetes label key ([prefix/]name, the name 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)",
        ),
        (
            {"nodeLabels": {"Example.com/team": "web"}},
            "nodeLabels.Example.com/team",
            "'Example.com/team': the prefix before '/' is not a DNS subdomain (lower case, at most 253 characters)",
        ),
        (
            {"nodeLabels": {"kubernetes.azure.com/mode": "user"}},
            "nodeLabels.kubernetes.azure.com/mode",
            "'kubernetes.azure.com/mode': the kubernetes.azure.com/ prefix is reserved for the labels AKS sets",
        ),
        (
            {"nodeLabels": {"team": "-web"}},
            "nodeLabels.team",
            "'-web' is not a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit; or empty)",
        ),
        ({"nodeLabels": ["team=web"]}, "nodeLabels", "Input should be a valid dictionary"),
        (
            {"nodeTaints": ["dedicated=apps:NoSchedule", "dedicated:NoSchedule"]},
            "nodeTaints[1]",
            "'dedicated:NoSchedule' is not a taint: write key=value:Effect (such as dedicated=gpu:NoSchedule)",
        ),
        (
            {"nodeTaints": ["dedicated=apps:Evict"]},
            "nodeTaints[0]",
            "taint 'dedicated=apps:Evict': the effect must be one of NoSchedule, PreferNoSchedule, NoExecute",
        ),
        (
            {"nodeTaints": ["dedi cated=apps:NoSchedule"]},
            "nodeTaints[0]",
            "taint 'dedi cated=apps:NoSchedule': 'dedi cated' is not a Kubernetes label key",
        ),
        (
            {"nodeTaints": ["a=b:NoSchedule", "a=b:NoSchedule"]},
            "nodeTaints[1]",
            "duplicate 'a=b:NoSchedule'",
        ),
        ({"maxPods": 9}, "maxPods", "Input should be greater than or equal to 10"),
        ({"maxPods": 251}, "maxPods", "Input should be less than or equal to 250"),
        ({"maxPods": "30"}, "maxPods", "Input should be a valid integer"),
        ({"maxSurge": 0}, "maxSurge", "0 is not a surge: a number of nodes (1 or more) or a percentage such as 33%"),
        ({"maxSurge": "150%"}, "maxSurge", "'150%' is not a surge"),
        ({"maxSurge": "10 %"}, "maxSurge", "'10 %' is not a surge"),
        ({"maxSurge": True}, "maxSurge", "True is not a surge"),
        (
            {"vnetSubnetId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"},
            "vnetSubnetId",
            "is not a subnet resource id (/subscriptions/SUBSCRIPTION/resourceGroups/GROUP/providers/"
            "Microsoft.Network/virtualNetworks/VNET/subnets/SUBNET)",
        ),
        ({"vnetSubnetID": SUBNET}, "vnetSubnetID", "unknown key (did you mean 'vnetSubnetId'?)"),
        ({"osType": "linux"}, "osType", "Input should be 'Linux' or 'Windows' (got 'linux')"),
        ({"osSKU": "CBLMariner"}, "osSKU", "Input should be 'Ubuntu', 'Ubuntu2204', 'AzureLinux'"),
        ({"osSku": "Ubuntu"}, "osSku", "unknown key (did you mean 'osSKU'?)"),
        ({"osSKU": "Windows2022"}, "osSKU", "Windows2022 is a Windows SKU: it needs osType: Windows"),
        (
            {"name": "win", "osType": "Windows", "osSKU": "AzureLinux"},
            "osSKU",
            "AzureLinux is a Linux SKU: a Windows pool takes Windows2019 or Windows2022",
        ),
        ({"name": "windows", "osType": "Windows"}, "name", "a Windows node pool name has at most 6 characters"),
    ],
)
def test_bad_pool_keys_name_the_file_and_key(raw, keys, path, message):
    found = errors(with_user_pool(raw, **keys))
    assert any(line.startswith(f"{FILE}: {POOLS}[1].{path}: ") and message in line for line in found), found


def test_the_system_pool_runs_linux(raw):
    raw["cluster"]["nodePools"][0].update(osType="Windows", name="sys")
    assert errors(raw) == [
        f"{FILE}: {POOLS}[0].osType: a System node pool runs Linux (AKS runs its system pods there): add a User pool"
    ]


def test_a_windows_pool_needs_azure_cni(raw):
    raw["cluster"]["networkPlugin"] = "kubenet"
    with_user_pool(raw, name="win", osType="Windows")
    assert errors(raw) == [f"{FILE}: {POOLS}[1].osType: a Windows node pool needs networkPlugin: azure, not kubenet"]


def test_pool_errors_are_all_reported_never_a_traceback(raw):
    with_user_pool(raw, maxPods=5, nodeTaints=["x"], nodeLabels={"kubernetes.azure.com/a": "b"}, maxSurge="0%")
    found = errors(raw)
    assert [line.split(": ")[1] for line in found] == [
        f"{POOLS}[1].maxPods",
        f"{POOLS}[1].nodeLabels.kubernetes.azure.com/a",
        f"{POOLS}[1].nodeTaints[0]",
        f"{POOLS}[1].maxSurge",
    ]
