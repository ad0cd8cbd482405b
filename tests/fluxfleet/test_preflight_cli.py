"""`fluxfleet preflight` end to end: the command line, the real ArmReader and SDK clients, and ARM bodies served
through azure-core's transport (official examples from tests/fixtures and the project's own failing-state fixtures)."""

from __future__ import annotations

import copy
import json
import re
import shutil
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from fluxfleet.cli import app
from modules import kubernetes_versions
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import CANARY, DEV_SHARED, ROOT, add_stack_on_the_dev_cluster, fixture_file
from tests.modules.test_keyvault import CHALLENGE, GET_SECRET

SUB = "11111111-2222-3333-4444-555555555555"
FIXTURES = ROOT / "tests" / "fixtures" / "arm"
EXTENSIONS = ("kubernetesconfiguration", "resource-manager", "Microsoft.KubernetesConfiguration", "extensions")
RESOURCES = ("resources", "resource-manager", "Microsoft.Resources", "stable", "2024-11-01", "examples")
ARC = ("hybridkubernetes", "resource-manager", "Microsoft.Kubernetes", "stable", "2026-03-01", "examples")
# The upgrade profile example of 2025-10-01 (the index holds none of 2026-05-01: tests/fixtures/arm-examples/INDEX.md)
AKS_UPGRADES = ("containerservice", "resource-manager", "Microsoft.ContainerService", "aks", "stable", "2025-10-01")


def official(*parts: str) -> Any:
    return copy.deepcopy(example(fixture_file("arm-examples", "specification", *parts)))


def fixture(name: str) -> Any:
    return copy.deepcopy(example(FIXTURES / f"{name}.json"))


class Azure:
    """A subscription as ARM and Key Vault answer for it: healthy unless a test breaks something."""

    def __init__(self):
        provider = official(*RESOURCES, "GetProvider.json")
        provider["registrationState"] = "Registered"
        self.providers = {
            ns: {**provider, "namespace": ns}
            for ns in ("Microsoft.Kubernetes", "Microsoft.ContainerService", "Microsoft.KubernetesConfiguration")
        }
        self.aks = fixture("managed_cluster_workload_identity")
        self.upgrades = official(*AKS_UPGRADES, "examples", "ManagedClustersGetUpgradeProfile.json")
        self.upgrades["properties"]["controlPlaneProfile"].update(  # what AKS offers a cluster on 1.35 today
            kubernetesVersion="1.35.1", upgrades=[{"kubernetesVersion": "1.36.2"}, {"kubernetesVersion": "1.36.3"}]
        )
        self.arc = official(*ARC, "GetClusterExample.json")
        self.arc["properties"].update(
            connectivityStatus="Connected", lastConnectivityTime="2026-11-25T00:00:00Z", kubernetesVersion="1.30.4"
        )
        self.arc["properties"]["arcAgentProfile"].update(agentState="Succeeded", agentErrors=[])
        flux = official(*EXTENSIONS, "stable", "2025-03-01", "examples", "GetExtension.json")
        flux.update(name="flux")
        flux["properties"].update(
            extensionType="microsoft.flux", currentVersion="1.22.2", provisioningState="Succeeded"
        )
        self.extensions = {"value": [flux]}
        self.flux_v1: dict = {"value": []}
        self.secret = copy.deepcopy(example(fixture_file(*GET_SECRET)))
        self.secret["value"] = CANARY

    def respond(self, request) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(request.url)
        path = url.path
        if url.hostname.endswith(".vault.azure.net"):
            if "Authorization" not in request.headers:
                return 401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, CHALLENGE
            return 200, self.secret, {}
        if match := re.fullmatch(rf"/subscriptions/{SUB}/providers/([^/]+)", path):
            return 200, self.providers[match[1]], {}
        if path.endswith("/extensions"):
            return 200, self.extensions, {}
        if path.endswith("/sourceControlConfigurations"):
            return 200, self.flux_v1, {}
        if path.lower().endswith("/upgradeprofiles/default"):
            return 200, self.upgrades, {}
        if "/managedClusters/" in path:
            return (200, self.aks, {}) if self.aks else (404, {"error": {"code": "ResourceNotFound"}}, {})
        if "/connectedClusters/" in path:
            return (200, self.arc, {}) if self.arc else (404, {"error": {"code": "ResourceNotFound"}}, {})
        return 404, {"error": {"code": "NotFound", "message": f"no route for {path}"}}, {}


@pytest.fixture
def azure(monkeypatch) -> Azure:
    """The CLI's ArmReader, with a token credential and a transport standing in for Azure AD and the network."""
    subscription = Azure()
    real = arm.ArmReader
    monkeypatch.setattr(
        arm, "ArmReader", lambda: real(FakeCredential(), transport=ScriptedTransport(subscription.respond))
    )
    monkeypatch.chdir(ROOT)
    return subscription


def preflight(*args: str):
    return CliRunner().invoke(app, ["preflight", "--subscription", SUB, *args])


def test_aks_and_arc_stacks_pass_every_check(azure):
    result = preflight("dev", "edge-store-001", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    dev, edge = report["stacks"]
    assert [c["id"] for c in dev["checks"] if c["outcome"] != "pass"] == []
    assert [c["id"] for c in edge["checks"] if c["outcome"] != "pass"] == []
    assert {c["id"] for c in dev["checks"]} == {
        "spec",
        "credentials",
        "providers",
        "cluster",
        "cluster-identity",
        "kubernetes-version",
        "kubernetes-offered",
        "flux-extension",
        "flux-v1",
        "key-vault",
    }
    offered = next(c for c in dev["checks"] if c["id"] == "kubernetes-offered")
    assert offered["message"] == "Kubernetes 1.35: runs 1.35.1"
    identity = next(c for c in dev["checks"] if c["id"] == "cluster-identity")
    assert identity["message"] == "UserAssigned managed identity"
    assert CANARY not in result.output


def test_failing_checks_in_text_with_remedies_and_no_secret(azure):
    azure.extensions = fixture("extensions_failing")  # flux stuck Creating since 2024, dapr Failed
    azure.arc = fixture("connected_cluster_offline")
    azure.flux_v1 = fixture("source_control_configurations_flux_v1")
    result = preflight("dev", "edge-store-001")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    failures = [line for line in lines if line.startswith("  ✗")]
    assert any(
        line.startswith("  ✗ flux-extension") and "stuck Creating since 2024-03-04 05:06 UTC" in line
        for line in failures
    )
    assert any(
        line.startswith("  ✗ cluster") and "flux-demo-rg/flux-demo-arc: connectivity Offline" in line
        for line in failures
    )
    assert any(line.startswith("  ✗ flux-v1") and "cluster-config" in line for line in failures)
    remedies = [line for line in lines if line.startswith("      → ")]
    assert len(remedies) == len(failures)
    assert lines[-1] == "2 stack(s) checked: 0 ready, 2 not ready"
    assert CANARY not in result.output


def test_missing_arc_cluster_and_forbidden_vault(azure):
    azure.arc = None
    real = azure.respond

    def forbid_the_vault(request):
        if urlsplit(request.url).hostname.endswith(".vault.azure.net") and "Authorization" in request.headers:
            return 403, {"error": {"code": "Forbidden", "message": "Caller is not authorized"}}, {}
        return real(request)

    azure.respond = forbid_the_vault
    report = json.loads(preflight("dev", "edge-store-001", "--format", "json").stdout)
    dev, edge = report["stacks"]
    [vault] = [c for c in dev["checks"] if c["id"] == "key-vault"]
    assert vault["outcome"] == "fail"
    assert "Key Vault Secrets User" in vault["message"] and "kv-fleet-dev" in vault["message"]
    [cluster] = [c for c in edge["checks"] if c["id"] == "cluster"]
    assert cluster["outcome"] == "fail" and cluster["remedy"].startswith("connect it first: `az connectedk8s connect")
    assert "flux-extension" not in {c["id"] for c in edge["checks"]}  # nothing to read on a cluster not there


def test_invalid_stack_is_exit_2_before_any_azure_call(azure, tmp_path):
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  fluxfleet:cluster: {kind: aks}\n")
    result = preflight("--stacks-dir", str(tmp_path), "--format", "json")
    assert result.exit_code == 2
    [stack] = json.loads(result.stdout)["stacks"]
    assert stack["checks"] == [] and stack["errors"][0]["path"] == "fluxfleet:cluster.name"


def test_an_unregistered_provider_fails_and_nothing_that_would_register_it_is_read(azure):
    azure.providers["Microsoft.KubernetesConfiguration"] = fixture("provider_not_registered")
    paths = []
    real = azure.respond
    azure.respond = lambda request: paths.append(urlsplit(request.url).path) or real(request)
    result = preflight("dev")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("  ✗ providers") and "KubernetesConfiguration: NotRegistered" in line for line in lines)
    assert any(line.startswith("  ! flux-extension") and "not read" in line for line in lines)
    assert not any(path.endswith(("/extensions", "/sourceControlConfigurations")) for path in paths)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_each_stale_dated_table_is_one_notice_on_stderr_and_stdout_is_unchanged(azure, monkeypatch, fmt):
    fresh = preflight("dev", "--format", fmt)
    monkeypatch.setattr(kubernetes_versions, "today", lambda: kubernetes_versions.AS_OF + timedelta(days=184))
    stale = preflight("dev", "--format", fmt)
    assert stale.exit_code == fresh.exit_code == 0, stale.output
    assert stale.stdout == fresh.stdout
    assert "notice:" not in fresh.stderr
    notices = [line for line in stale.stderr.splitlines() if line.startswith("notice:")]
    assert [line.split(" table is from")[0] for line in notices] == [
        "notice: the supported Kubernetes versions",
        "notice: the microsoft.flux releases",
    ]


@pytest.mark.parametrize("fix", [[], ["--fix"]], ids=["check", "fix"])
def test_a_stack_whose_cluster_another_stack_names_is_invalid_and_never_read_or_fixed(azure, tmp_path, fix):
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    add_stack_on_the_dev_cluster(stacks)
    urls, respond = [], azure.respond
    azure.respond = lambda request: (urls.append(request.url), respond(request))[1]
    result = preflight("--stacks-dir", str(stacks), "dev", "--format", "json", *fix)
    assert result.exit_code == 2, result.output
    [dev] = json.loads(result.stdout)["stacks"]
    shared = {"file": str(stacks / "Pulumi.dev.yaml"), "path": "fluxfleet:cluster.name", "message": DEV_SHARED}
    assert dev["errors"] == [shared] and dev["checks"] == []
    assert not [url for url in urls if "aks-dev-weu" in url or "/register" in url]  # no cluster read, no fix


def test_a_version_aks_does_not_offer_the_cluster_fails_and_says_what_it_offers(azure):
    """The official example as ARM sends it: a cluster on 1.7.7 offered 1.7.9 (preview) and 1.7.11, asked for 1.35."""
    azure.upgrades = official(*AKS_UPGRADES, "examples", "ManagedClustersGetUpgradeProfile.json")
    result = preflight("dev")
    assert result.exit_code == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("  ✗")]
    assert line.startswith("  ✗ kubernetes-offered")
    assert line.endswith("Kubernetes 1.35 is not offered to this cluster (runs 1.7.7; AKS offers it: 1.7.9, 1.7.11)")
    assert "az aks get-upgrades -g rg-fleet-dev -n aks-dev-weu" in result.stdout


def test_a_stages_kubernetes_pin_is_what_preflight_asks_aks_for(azure, tmp_path):
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    fleet = stacks / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace("    stacks: [dev]\n", '    stacks: [dev]\n    pins: {kubernetes: "1.36"}\n')
    )
    result = preflight("--stacks-dir", str(stacks), "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    [dev] = json.loads(result.stdout)["stacks"]
    [offered] = [c for c in dev["checks"] if c["id"] == "kubernetes-offered"]
    assert offered["message"] == "Kubernetes 1.36 offered (runs 1.35.1)"
    fleet.write_text(fleet.read_text().replace('"1.36"', '"1.37"'))  # not in this cluster's region yet
    result = preflight("--stacks-dir", str(stacks), "dev", "--format", "json")
    assert result.exit_code == 1
    [dev] = json.loads(result.stdout)["stacks"]
    [offered] = [c for c in dev["checks"] if c["id"] == "kubernetes-offered"]
    assert offered["message"] == (
        "Kubernetes 1.37 is not offered to this cluster (runs 1.35.1; AKS offers it: 1.36.2, 1.36.3)"
    )
