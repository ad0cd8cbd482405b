"""Sovereign clouds in the Azure layer: every read of a stack goes to its cloud's ARM endpoint with its ARM audience,
to its cloud's Resource Graph and Key Vault, signed in at its cloud's authority; a fleet over several clouds reads
each stack in its own. Through the real SDK clients over a scripted transport (and, end to end, `fluxfleet
preflight`)."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from fluxfleet.azure.account import default_subscription
from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.clouds import (
    CloudReader,
    FleetReadsByCloud,
    SubscriptionClouds,
    fleet_reads,
    graph_beside,
    in_clouds,
)
from fluxfleet.azure.fleet_graph import ClusterTarget, FleetSnapshot
from fluxfleet.azure.resource_graph import VISIBLE_SUBSCRIPTIONS
from fluxfleet.azure.status import AzureError
from fluxfleet.cli import app
from modules.cluster_ref import ClusterRef
from modules.spec import KeyVaultRef
from tests.azure_transport import ScriptedTransport, example, recording_credentials
from tests.conftest import CANARY, fixture_file
from tests.fluxfleet.test_preflight_cli import SUB as PUBLIC_SUB
from tests.fluxfleet.test_preflight_cli import Azure
from tests.modules.test_clouds import SOVEREIGN
from tests.modules.test_keyvault import GET_SECRET

CHINA_SUB = "22222222-3333-4444-5555-666666666666"
ARC = ClusterRef.arc("arc-cn", "rg-cn")
RESOURCE_GRAPH = "/providers/Microsoft.ResourceGraph/resources"


class Clouds:
    """ARM, Resource Graph and Key Vault of every cloud, as test_preflight_cli's Azure answers for one subscription
    (each subscription is answered as that one); records every request with its host."""

    def __init__(self) -> None:
        self.azure = Azure()
        self.requests: list[Any] = []
        self.graph_subscriptions: dict[str, list[str]] = {}  # Resource Graph host -> subscriptions asked about
        self.secret = example(fixture_file(*GET_SECRET))
        self.secret["value"] = CANARY

    def respond(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        self.requests.append(request)
        url = urlsplit(request.url)
        if ".vault." in url.hostname:
            if "Authorization" not in request.headers:
                resource = "https://" + url.hostname.split(".", 1)[1]  # the vault's cloud's Key Vault resource
                challenge = f'Bearer authorization="https://login.example/tenant", resource="{resource}"'
                return 401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, {"WWW-Authenticate": challenge}
            return 200, self.secret, {}
        if url.path == RESOURCE_GRAPH:
            body = json.loads(request.body)
            self.graph_subscriptions.setdefault(url.hostname, []).extend(body["subscriptions"])
            visible = body["query"] == VISIBLE_SUBSCRIPTIONS
            rows = (
                [{"id": f"/subscriptions/{s}", "subscriptionId": s} for s in body["subscriptions"]] if visible else []
            )
            return 200, {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "data": rows}, {}
        if url.path.endswith("/fluxConfigurations"):
            return 200, {"value": []}, {}
        if "/providers/Microsoft.Features/" in url.path:
            return 200, {"name": "Microsoft.ContainerService/AKS-Extension", "properties": {"state": "Registered"}}, {}
        same = SimpleNamespace(url=re.sub(r"/subscriptions/[^/]+", f"/subscriptions/{PUBLIC_SUB}", request.url))
        same.headers = request.headers
        return self.azure.respond(same)

    def transport(self) -> ScriptedTransport:
        return ScriptedTransport(self.respond)

    def hosts(self, subscription: str) -> set[str]:
        """The hosts of the requests about this subscription."""
        return {urlsplit(r.url).hostname for r in self.requests if f"/subscriptions/{subscription}" in r.url}

    def vault_hosts(self) -> set[str]:
        return {urlsplit(r.url).hostname for r in self.requests if ".vault." in r.url}


# --------------------------------------------------------------------------------------------- one reader


@pytest.mark.parametrize("cloud", SOVEREIGN)
def test_every_read_of_a_sovereign_reader_goes_to_its_cloud(monkeypatch, cloud):
    credentials = recording_credentials(monkeypatch)
    azure = Clouds()
    reader = ArmReader(cloud=cloud["cloud"], transport=azure.transport())
    reader.signed_in_identity()
    assert reader.provider(CHINA_SUB, "Microsoft.Kubernetes").registered
    assert reader.connected_cluster(CHINA_SUB, "rg-cn", "arc-cn") is not None
    assert reader.managed_cluster(CHINA_SUB, "rg-cn", "aks-cn") is not None
    assert reader.feature(CHINA_SUB, "Microsoft.ContainerService/AKS-Extension").registered
    reader.resource_group_exists(CHINA_SUB, "rg-cn")
    assert [e.name for e in reader.extensions(CHINA_SUB, ARC)] == ["flux"]
    reader.flux_configurations(CHINA_SUB, ARC)
    reader.secret_metadata(KeyVaultRef("kv-cn", "github-pat", cloud=cloud["cloud"]))
    graph_beside(reader).query("resources | project id", [CHINA_SUB])

    assert azure.hosts(CHINA_SUB) == {cloud["arm"]}
    assert set(azure.graph_subscriptions) == {cloud["arm"]}  # Resource Graph at the cloud's ARM endpoint
    assert azure.vault_hosts() == {f"kv-cn.{cloud['vault']}"}
    [credential] = credentials  # one credential, shared by the reader's clients and the Resource Graph beside it
    assert credential.options == {"authority": cloud["authority"]}
    assert set(credential.scopes) == {cloud["arm_scope"], f"https://{cloud['vault']}/.default"}


def test_the_public_reader_is_unchanged(monkeypatch):
    credentials = recording_credentials(monkeypatch)
    azure = Clouds()
    reader = ArmReader(transport=azure.transport())
    reader.provider(PUBLIC_SUB, "Microsoft.Kubernetes")
    assert azure.hosts(PUBLIC_SUB) == {"management.azure.com"}
    assert [(c.options, c.scopes) for c in credentials] == [
        ({"authority": "login.microsoftonline.com"}, ["https://management.azure.com/.default"])
    ]


def test_a_reader_of_another_cloud_keeps_the_settings_and_signs_in_there(monkeypatch):
    credentials = recording_credentials(monkeypatch)
    azure = Clouds()
    public = ArmReader(transport=azure.transport(), retry_total=2, timeout=5)
    china = public.for_cloud("AzureChinaCloud")
    assert public.for_cloud("AzureChinaCloud") is china and public.for_cloud("AzureCloud") is public
    assert china.client_options == public.client_options and china._retry_total == 2 and china._timeout == 5
    china.provider(CHINA_SUB, "Microsoft.Kubernetes")
    assert azure.hosts(CHINA_SUB) == {"management.chinacloudapi.cn"}
    assert [c.options for c in credentials] == [{"authority": "login.chinacloudapi.cn"}]


# --------------------------------------------------------------------------------------------- a fleet over clouds


def test_a_fleet_over_two_clouds_reads_each_subscription_in_its_cloud(monkeypatch):
    credentials = recording_credentials(monkeypatch)
    azure = Clouds()
    clouds = SubscriptionClouds.of([(PUBLIC_SUB, "AzureCloud"), (CHINA_SUB.upper(), "AzureChinaCloud")])
    reader = in_clouds(ArmReader(transport=azure.transport()), clouds)
    assert isinstance(reader, CloudReader) and set(reader.readers) == {"AzureCloud", "AzureChinaCloud"}
    reader.signed_in_identity()
    for subscription in (PUBLIC_SUB, CHINA_SUB):
        reader.provider(subscription, "Microsoft.Kubernetes")
        reader.extensions(subscription, ARC)
    reader.secret_metadata(KeyVaultRef("kv-cn", "github-pat", cloud="AzureChinaCloud"))
    reader.secret_metadata(KeyVaultRef("kv-weu", "github-pat"))
    targets = [ClusterTarget(s, "rg-cn", "arc-cn", "arc") for s in (PUBLIC_SUB, CHINA_SUB)]
    snapshot = fleet_reads(reader).read(targets)  # status, promote and the rollout gate read the fleet so

    assert azure.hosts(PUBLIC_SUB) == {"management.azure.com"}
    assert azure.hosts(CHINA_SUB) == {"management.chinacloudapi.cn"}
    assert azure.vault_hosts() == {"kv-cn.vault.azure.cn", "kv-weu.vault.azure.net"}
    assert {host: set(subs) for host, subs in azure.graph_subscriptions.items()} == {
        "management.azure.com": {PUBLIC_SUB},
        "management.chinacloudapi.cn": {CHINA_SUB},
    }
    assert set(snapshot.clusters) == set(targets)  # Resource Graph knew neither: both read through their ARM
    assert sorted(c.options["authority"] for c in credentials) == [
        "login.chinacloudapi.cn",
        "login.microsoftonline.com",
    ]


def test_a_fleet_in_one_sovereign_cloud_is_read_by_that_clouds_reader(monkeypatch):
    recording_credentials(monkeypatch)
    public = ArmReader()
    reader = in_clouds(public, SubscriptionClouds.of([(CHINA_SUB, "AzureChinaCloud"), (None, "AzureChinaCloud")]))
    assert isinstance(reader, ArmReader) and reader.cloud == "AzureChinaCloud"
    assert in_clouds(public, SubscriptionClouds.of([(PUBLIC_SUB, "AzureCloud")])) is public
    assert in_clouds(public, SubscriptionClouds.of([])) is public


def test_a_subscription_stacks_put_in_two_clouds_is_one_line_error():
    clouds = SubscriptionClouds.of(
        [(CHINA_SUB, "AzureCloud"), (CHINA_SUB, "AzureChinaCloud"), (PUBLIC_SUB, "AzureCloud")]
    )
    assert clouds.of_subscription(PUBLIC_SUB) == "AzureCloud"
    with pytest.raises(AzureError) as caught:
        clouds.of_subscription(CHINA_SUB)
    assert str(caught.value) == (
        f"subscription {CHINA_SUB} is in AzureChinaCloud and in AzureCloud by the stacks that name it: a subscription "
        "is in one cloud; correct their cluster.cloud or cluster.subscriptionId"
    )
    reads = FleetReadsByCloud({"AzureCloud": FleetNone(), "AzureChinaCloud": FleetNone()}, clouds)
    snapshot = reads.read([ClusterTarget(CHINA_SUB, "rg", "c", "arc")])
    assert list(snapshot.failed.values()) == [str(caught.value)]


class FleetNone:
    def read(self, targets: Any) -> FleetSnapshot:
        return FleetSnapshot({}, (), {}, 0, datetime(2026, 1, 1, tzinfo=UTC))


# --------------------------------------------------------------------------------------------- the default subscription


def test_the_default_subscription_of_a_cloud_is_the_azure_clis_for_that_cloud(tmp_path):
    profile = {
        "subscriptions": [
            {"id": "public-default", "isDefault": True, "environmentName": "AzureCloud"},
            {"id": "china-one", "isDefault": False, "environmentName": "AzureChinaCloud"},
        ]
    }
    (tmp_path / "azureProfile.json").write_text(json.dumps(profile), encoding="utf-8-sig")
    assert default_subscription({}, tmp_path, cloud="AzureCloud") == "public-default"
    assert default_subscription({}, tmp_path, cloud="AzureChinaCloud") is None  # the current default is not there
    (tmp_path / "clouds.config").write_text("[AzureChinaCloud]\nsubscription = china-one\n")  # `az cloud set` keeps it
    assert default_subscription({}, tmp_path, cloud="AzureChinaCloud") == "china-one"
    assert default_subscription({"AZURE_SUBSCRIPTION_ID": "env"}, tmp_path, cloud="AzureChinaCloud") == "env"
    assert default_subscription({}, tmp_path) == "public-default"  # no cloud: as before


# --------------------------------------------------------------------------------------------- end to end


def stack(directory: Path, name: str, cloud: str, subscription: str, vault: str) -> None:
    environment = "azure-native:environment: china" if cloud == "AzureChinaCloud" else "azure-native:location: eastus"
    text = f"""\
        config:
          {environment}
          fluxfleet:cluster:
            kind: arc
            name: arc-{name}
            resourceGroup: rg-{name}
            cloud: {cloud}
            subscriptionId: {subscription}
          fluxfleet:flux:
            configurations:
              apps:
                git:
                  url: https://github.com/fluxcd/flux2-kustomize-helm-example
                  branch: main
                  httpsUser: git
                  httpsKey: {{keyVault: {vault}, secret: github-pat}}
                kustomizations:
                  apps: {{path: ./apps/staging}}
        """
    (directory / f"Pulumi.{name}.yaml").write_text(textwrap.dedent(text))


@pytest.mark.parametrize("stacks", [["cn"], ["weu", "cn"]], ids=["china", "public-and-china"])
def test_preflight_reads_each_stack_in_its_cloud(tmp_path, monkeypatch, stacks):
    credentials = recording_credentials(monkeypatch)
    azure = Clouds()
    real = arm.ArmReader
    monkeypatch.setattr(arm, "ArmReader", lambda: real(transport=azure.transport()))
    stack(tmp_path, "weu", "AzureCloud", PUBLIC_SUB, "kv-weu")
    stack(tmp_path, "cn", "AzureChinaCloud", CHINA_SUB, "kv-cn")

    result = CliRunner().invoke(app, ["preflight", *stacks, "--stacks-dir", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert all(check["outcome"] == "pass" for s in report["stacks"] for check in s["checks"])
    assert CANARY not in result.output

    assert azure.hosts(CHINA_SUB) == {"management.chinacloudapi.cn"}
    assert set(azure.graph_subscriptions["management.chinacloudapi.cn"]) == {CHINA_SUB}  # its Resource Graph read
    china = [c for c in credentials if c.options == {"authority": "login.chinacloudapi.cn"}]
    assert len(china) == 1
    assert set(china[0].scopes) == {"https://management.chinacloudapi.cn/.default", "https://vault.azure.cn/.default"}
    if "weu" in stacks:
        assert azure.hosts(PUBLIC_SUB) == {"management.azure.com"}
        assert set(azure.graph_subscriptions["management.azure.com"]) == {PUBLIC_SUB}
        assert azure.vault_hosts() == {"kv-cn.vault.azure.cn", "kv-weu.vault.azure.net"}
    else:
        assert azure.vault_hosts() == {"kv-cn.vault.azure.cn"} and "management.azure.com" not in {
            urlsplit(r.url).hostname for r in azure.requests
        }
        assert len(credentials) == 1  # the public cloud is not signed in to at all
