"""The bodies the program sends validate against Azure's official swagger (tests/fixtures/arm-examples)."""

from __future__ import annotations


import json
from typing import Any
from collections.abc import Iterator

import jsonschema
import pytest

from modules.spec import load_stack_file
from tests.conftest import ROOT, deploy, deploy_spec, fixture_file, unwrap_secrets
from tests.swagger import api_default, request_schema

KC = ("specification", "kubernetesconfiguration", "resource-manager", "Microsoft.KubernetesConfiguration")
FLUX_SWAGGER = (*KC, "fluxConfigurations", "stable", "2025-04-01", "fluxconfiguration.json")
EXTENSION_SWAGGER = (*KC, "extensions", "stable", "2025-03-01", "extensions.json")
CLUSTER_PATH = ("clusterRp", "clusterResourceName", "clusterName", "resourceGroupName")
EXAMPLE_STACKS = sorted(p.name for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def validator(*parts: str, definition: str) -> jsonschema.Draft7Validator:
    schema = request_schema(fixture_file("arm-examples", *parts), definition)
    return jsonschema.Draft7Validator(schema)


def flux_body(inputs: dict) -> dict:
    """The PUT body azure-native sends: path parameters out, the rest under `properties`."""
    skip = (*CLUSTER_PATH, "fluxConfigurationName")
    return {"properties": {k: v for k, v in unwrap_secrets(inputs).items() if k not in skip}}


def extension_body(inputs: dict) -> dict:
    skip = (*CLUSTER_PATH, "extensionName")
    top = ("identity", "plan")
    plain = unwrap_secrets(inputs)
    body = {k: v for k, v in plain.items() if k in top}
    body["properties"] = {k: v for k, v in plain.items() if k not in (*skip, *top)}
    return body


def errors(validator: jsonschema.Draft7Validator, body: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


@pytest.mark.parametrize("stack_file", EXAMPLE_STACKS)
def test_example_stack_bodies_match_the_swagger(stack_file):
    flux = validator(*FLUX_SWAGGER, definition="FluxConfiguration")
    extension = validator(*EXTENSION_SWAGGER, definition="Extension")
    from tests.modules.spec.ssh import DeployKeyVault

    stack = load_stack_file(ROOT / "stacks" / stack_file)
    deployment = deploy_spec(stack.spec, DeployKeyVault(), stack=stack.name)  # prod-weu's deploy key: a real key
    bodies = [
        (t, v) for (t, _), v in deployment.raw_inputs.items() if t.startswith("azure-native:kubernetesconfiguration")
    ]
    assert {t for t, _ in bodies} == {
        "azure-native:kubernetesconfiguration:Extension",
        "azure-native:kubernetesconfiguration:FluxConfiguration",
    }
    for type_, inputs in bodies:
        if type_.endswith(":FluxConfiguration"):
            assert errors(flux, flux_body(inputs)) == []
        else:
            assert errors(extension, extension_body(inputs)) == []


def test_every_source_kind_matches_the_swagger(raw):
    flux = validator(*FLUX_SWAGGER, definition="FluxConfiguration")
    demo = raw["flux"]["configurations"]["demo"]
    del demo["git"]
    demo["bucket"] = {
        "url": "https://minio.example.com",
        "bucketName": "b",
        "accessKey": "AK",
        "secretKey": {"keyVault": "kv-test", "secret": "s"},
    }
    raw["flux"]["configurations"]["blob"] = {
        "azureBlob": {
            "url": "https://acct.blob.core.windows.net",
            "containerName": "c",
            "managedIdentity": {"clientId": "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"},
        },
        "waitForReconciliation": True,
        "reconciliationWaitDuration": "PT5M",
        "kustomizations": {
            "apps": {
                "path": "./apps",
                "postBuild": {
                    "substitute": {"a": "b"},
                    "substituteFrom": [{"kind": "Secret", "name": "vars", "optional": True}],
                },
            }
        },
    }
    deployment = deploy(raw)
    bodies = [v for (t, _), v in deployment.raw_inputs.items() if t.endswith(":FluxConfiguration")]
    assert len(bodies) == 2
    for inputs in bodies:
        assert errors(flux, flux_body(inputs)) == []


def test_the_check_catches_a_wrong_body(raw):
    """The schema is strict: a misspelt or read-only property fails, so a passing body means something."""
    flux = validator(*FLUX_SWAGGER, definition="FluxConfiguration")
    inputs = deploy(raw).raw(":FluxConfiguration")
    body = flux_body(inputs)
    body["properties"]["kustomizations"]["apps"]["syncInterval"] = 600
    body["properties"]["complianceState"] = "Compliant"
    body["properties"]["scope"] = "tenant"
    found = errors(flux, body)
    assert any("syncInterval" in e for e in found)
    assert any("complianceState" in e for e in found)
    assert any(e.startswith("properties.scope") for e in found)


AKS_SWAGGER = (
    "specification",
    "containerservice",
    "resource-manager",
    "Microsoft.ContainerService",
    "aks",
    "stable",
    "2025-09-01",
    "managedClusters.json",
)  # an excerpt: the agent pool and maintenance definitions (arm-examples/INDEX.md)
POOL_PATH = ("agentPoolName", "resourceGroupName", "resourceName")


def agent_pool_body(inputs: dict) -> dict:
    return {"properties": {k: v for k, v in unwrap_secrets(inputs).items() if k not in POOL_PATH}}


def pool_errors(deployment) -> list[str]:
    """Each AgentPool's PUT body against `AgentPool`, and the cluster's inline pool against its profile."""
    agent_pool = validator(*AKS_SWAGGER, definition="AgentPool")
    properties = validator(*AKS_SWAGGER, definition="ManagedClusterAgentPoolProfileProperties")
    profile = validator(*AKS_SWAGGER, definition="ManagedClusterAgentPoolProfile")
    found = []
    for (type_, name), inputs in deployment.raw_inputs.items():
        if type_ == "azure-native:containerservice:AgentPool":
            found += [f"{name}: {e}" for e in errors(agent_pool, agent_pool_body(inputs))]
        elif type_ == "azure-native:containerservice:ManagedCluster":
            for pool in unwrap_secrets(inputs)["agentPoolProfiles"]:
                found += errors(properties, {k: v for k, v in pool.items() if k != "name"})
                found += errors(profile, {"name": pool["name"]})
    return found


@pytest.mark.parametrize("stack_file", EXAMPLE_STACKS)
def test_example_stack_node_pools_match_the_swagger(stack_file):
    stack = load_stack_file(ROOT / "stacks" / stack_file)
    from tests.modules.spec.ssh import DeployKeyVault

    assert pool_errors(deploy_spec(stack.spec, DeployKeyVault(), stack=stack.name)) == []


def test_every_node_pool_key_matches_the_swagger(raw):
    subnet = (
        "/subscriptions/6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f/resourceGroups/rg-net/providers/Microsoft.Network"
        "/virtualNetworks/vnet-weu/subnets/snet-apps"
    )
    raw["cluster"]["nodePools"][0].update(nodeTaints=["CriticalAddonsOnly=true:NoSchedule"], maxSurge="10%")
    raw["cluster"]["nodePools"] += [
        {
            "name": "apps",
            "vmSize": "Standard_D8s_v5",
            "minCount": 1,
            "maxCount": 5,
            "zones": ["1", "2", "3"],
            "maxPods": 110,
            "nodeLabels": {"workload": "apps"},
            "nodeTaints": ["dedicated=apps:NoSchedule"],
            "vnetSubnetId": subnet,
            "maxSurge": 2,
            "osSKU": "AzureLinux",
        },
        {"name": "win", "vmSize": "Standard_D4s_v5", "count": 1, "osType": "Windows", "osSKU": "Windows2022"},
    ]
    deployment = deploy(raw)
    assert len([t for t, _ in deployment.raw_inputs if t.endswith(":AgentPool")]) == 2
    assert pool_errors(deployment) == []


def test_the_pool_check_catches_a_wrong_body(raw):
    raw["cluster"]["nodePools"].append({"name": "apps", "vmSize": "Standard_D8s_v5", "count": 1})
    body = agent_pool_body(deploy(raw).raw(":AgentPool"))
    body["properties"].update(upgradeSettings={"maxSurge": 2}, osSKU="Windows2025", nodeTaint=["a=b:NoSchedule"])
    found = errors(validator(*AKS_SWAGGER, definition="AgentPool"), body)
    assert any(e.startswith("properties.upgradeSettings.maxSurge") for e in found)  # ARM takes a string
    assert any(e.startswith("properties.osSKU") for e in found)
    assert any("nodeTaint" in e for e in found)


AZ_CLI = json.loads((ROOT / "tests" / "fixtures" / "az_cli_flux_create_arc.json").read_text())
# What the stack sets that the CLI leaves to the service and the swagger documents no default for.
SERVICE_DEFAULTS = {
    "extension": {("properties", "scope", "cluster", "releaseNamespace"): "flux-system"},
    "fluxConfiguration": {},
}
SWAGGERS = {"extension": (EXTENSION_SWAGGER, "Extension"), "fluxConfiguration": (FLUX_SWAGGER, "FluxConfiguration")}
MISSING = object()


def leaves(body: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every scalar or list in a request body."""
    if isinstance(body, dict) and body:
        for key, value in body.items():
            yield from leaves(value, (*prefix, key))
    else:
        yield prefix, body


def arm_path(inputs: dict, collection: str, name: str) -> str:
    cluster = f"{inputs['clusterRp']}/{inputs['clusterResourceName']}/{inputs['clusterName']}"
    return (
        f"/subscriptions/{{subscriptionId}}/resourceGroups/{inputs['resourceGroupName']}/providers/{cluster}"
        f"/providers/Microsoft.KubernetesConfiguration/{collection}/{name}"
    )


def tutorial_stack_requests() -> dict[str, tuple[str, dict]]:
    """The requests the Arc tutorial stack's program makes, in the fixture's shape."""
    stack = load_stack_file(ROOT / "stacks" / AZ_CLI["stack"])
    deployment = deploy_spec(stack.spec, stack=stack.name)
    extension = deployment.raw("kubernetesconfiguration:Extension")
    flux = deployment.raw("kubernetesconfiguration:FluxConfiguration")
    return {
        "extension": (arm_path(extension, "extensions", extension["extensionName"]), extension_body(extension)),
        "fluxConfiguration": (
            arm_path(flux, "fluxConfigurations", flux["fluxConfigurationName"]),
            flux_body(flux),
        ),
    }


@pytest.mark.parametrize("request_name", ["extension", "fluxConfiguration"])
def test_the_arc_tutorial_stack_sends_every_field_az_cli_sends(request_name):
    """Someone moving from `az k8s-configuration flux create` gets the same resource, at the same ARM path."""
    expected = AZ_CLI["requests"][request_name]
    path, body = tutorial_stack_requests()[request_name]
    assert path == expected["path"]
    ours = dict(leaves(body))
    differences = {
        ".".join(key): {"az": value, "fluxfleet": ours.get(key, MISSING)}
        for key, value in leaves(expected["body"])
        if ours.get(key, MISSING) != value
    }
    assert differences == {}


@pytest.mark.parametrize("request_name", ["extension", "fluxConfiguration"])
def test_what_the_stack_sets_beyond_az_cli_is_what_the_service_defaults_to(request_name):
    """Explicit values where the CLI relies on the service's defaults, so the two end up configured alike."""
    parts, definition = SWAGGERS[request_name]
    swagger = fixture_file("arm-examples", *parts)
    sent_by_cli = dict(leaves(AZ_CLI["requests"][request_name]["body"]))
    _, body = tutorial_stack_requests()[request_name]
    service_defaults = SERVICE_DEFAULTS[request_name]
    extra = {key: value for key, value in leaves(body) if key not in sent_by_cli}
    assert extra, "the stack sets nothing beyond the CLI: this test checks nothing"
    not_defaults = {
        ".".join(key): value
        for key, value in extra.items()
        if value != service_defaults.get(key, api_default(swagger, definition, key))
    }
    assert not_defaults == {}


AKS_EXAMPLES = (*AKS_SWAGGER[:-2], "2026-05-01", "examples")
MAINTENANCE_PATH = ("configName", "resourceGroupName", "resourceName")
NOT_SET = {"notAllowedDates", "startDate"}  # the examples' blackout dates and start date: fluxfleet sets neither


def maintenance_body(inputs: dict) -> dict:
    return {"properties": {k: v for k, v in unwrap_secrets(inputs).items() if k not in MAINTENANCE_PATH}}


def example_window(file: str, where: str, name: str) -> dict:
    """The `maintenanceWindow` of configuration `name` in an official example: its request, or its response."""
    example = json.loads(fixture_file("arm-examples", *AKS_EXAMPLES, file).read_text())
    if where == "request":
        assert example["parameters"]["configName"] == name
        return example["parameters"]["parameters"]["properties"]["maintenanceWindow"]
    body = example["responses"]["200"]["body"]
    [item] = [i for i in body.get("value", [body]) if i["name"] == name]
    return item["properties"]["maintenanceWindow"]


@pytest.mark.parametrize(
    ("upgrade", "name", "file", "where"),
    [
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "30 8 * * 1#1", "duration": "10h"}]},
            "aksManagedAutoUpgradeSchedule",
            "MaintenanceConfigurationsCreate_Update_MaintenanceWindow.json",
            "request",
        ),
        (  # the only weekly schedule of the examples is that file's response
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "30 8 * * 1", "duration": "10h"}]},
            "aksManagedAutoUpgradeSchedule",
            "MaintenanceConfigurationsCreate_Update_MaintenanceWindow.json",
            "response",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "30 8 15 * *", "duration": "5h"}]},
            "aksManagedAutoUpgradeSchedule",
            "MaintenanceConfigurationsList_MaintenanceWindow.json",
            "response",
        ),
        (
            {"channel": "none", "nodeOSChannel": "NodeImage", "windows": [{"cron": "30 13 * * *", "duration": "10h"}]},
            "aksManagedNodeOSUpgradeSchedule",
            "MaintenanceConfigurationsList_MaintenanceWindow.json",
            "response",
        ),
    ],
)
def test_maintenance_configurations_have_the_shape_of_the_official_examples(raw, upgrade, name, file, where):
    raw["cluster"]["upgrade"] = upgrade
    [inputs] = [
        v for (t, n), v in deploy(raw).raw_inputs.items() if t.endswith(":MaintenanceConfiguration") and n == name
    ]
    body = maintenance_body(inputs)
    ours, theirs = body["properties"]["maintenanceWindow"], example_window(file, where, name)
    [(kind, schedule)] = ours["schedule"].items()
    assert list(theirs["schedule"]) == [kind]
    assert set(schedule) == set(theirs["schedule"][kind])  # the same keys for the same schedule kind
    assert set(ours) == set(theirs) - NOT_SET
    configuration = validator(*AKS_SWAGGER, definition="MaintenanceConfiguration")
    assert errors(configuration, body) == []
    assert errors(configuration, {"properties": {"maintenanceWindow": theirs}}) == []  # the check reads the examples


def test_the_maintenance_check_catches_a_wrong_body(raw):
    raw["cluster"]["upgrade"] = {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]}
    [inputs] = [v for (_, n), v in deploy(raw).raw_inputs.items() if n == "aksManagedAutoUpgradeSchedule"]
    body = maintenance_body(inputs)
    window = body["properties"]["maintenanceWindow"]
    window.update(durationHours=3, utcOffset="+1:00", schedule={"weekly": {"dayOfWeek": "Sat", "intervalWeeks": 5}})
    found = errors(validator(*AKS_SWAGGER, definition="MaintenanceConfiguration"), body)
    for key in ("durationHours", "utcOffset", "schedule.weekly.dayOfWeek", "schedule.weekly.intervalWeeks"):
        assert any(e.startswith(f"properties.maintenanceWindow.{key}:") for e in found), (key, found)


@pytest.mark.parametrize(
    "upgrade",
    [{}, {"channel": "node-image"}, {"channel": "stable", "nodeOSChannel": "SecurityPatch"}, {"nodeOSChannel": "None"}],
)
def test_the_auto_upgrade_profile_matches_the_swagger(raw, upgrade):
    raw["cluster"]["upgrade"] = upgrade
    profile = unwrap_secrets(deploy(raw).raw(":ManagedCluster"))["autoUpgradeProfile"]
    assert errors(validator(*AKS_SWAGGER, definition="ManagedClusterAutoUpgradeProfile"), profile) == []
