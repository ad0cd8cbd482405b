"""`fluxfleet preflight`'s checks over a fake Azure reader: every check passing and failing, for AKS and Arc."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fluxfleet.azure.status import (
    AccessDenied,
    AgentError,
    AzureError,
    ConnectedClusterStatus,
    ExtensionStatus,
    FeatureState,
    ManagedClusterStatus,
    ProviderState,
    SecretMetadata,
    UpgradeProfile,
)
from fluxfleet.azure.access import subscription_ways
from fluxfleet.azure.account import default_subscription
from fluxfleet.preflight import Outcome, preflight_fleet, preflight_stack, to_json, to_text
from modules.cluster_ref import ClusterRef
from modules.spec import KeyVaultRef
from tests.conftest import STANDALONE_STACKS, ROOT

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STACKS = ROOT / "stacks"

HEALTHY_AKS = ManagedClusterStatus(
    name="aks-dev-weu",
    provisioning_state="Succeeded",
    identity_type="SystemAssigned",
    kubernetes_version="1.31",
    current_kubernetes_version="1.31.2",
    oidc_issuer_enabled=True,
    workload_identity_enabled=True,
)
HEALTHY_ARC = ConnectedClusterStatus(
    name="flux-demo-arc",
    provisioning_state="Succeeded",
    connectivity_status="Connected",
    last_connectivity_time=NOW - timedelta(minutes=2),
    kubernetes_version="1.30.4",
    agent_state="Succeeded",
    agent_errors=(),
)
FLUX = ExtensionStatus(
    name="flux",
    extension_type="microsoft.flux",
    provisioning_state="Succeeded",
    version=None,
    current_version="1.22.2",
    release_train="Stable",
    auto_upgrade_minor_version=True,
    last_modified_at=NOW - timedelta(days=3),
    messages=(),
)


@dataclass
class FakeAzure:
    """Answers like Azure from the states it is given; records what was asked. Names: resource group/name."""

    providers: dict[str, str] = field(
        default_factory=lambda: {
            "Microsoft.Kubernetes": "Registered",
            "Microsoft.ContainerService": "Registered",
            "Microsoft.KubernetesConfiguration": "Registered",
        }
    )
    features: dict[str, str] = field(default_factory=dict)
    managed: dict[str, ManagedClusterStatus] = field(default_factory=dict)
    connected: dict[str, ConnectedClusterStatus] = field(default_factory=dict)
    extensions_: list[ExtensionStatus] = field(default_factory=lambda: [FLUX])
    flux_v1: list[str] = field(default_factory=list)
    secrets: dict[KeyVaultRef, SecretMetadata | AzureError] = field(default_factory=dict)
    resource_groups: set[str] = field(default_factory=lambda: {"rg-fleet-dev", "flux-demo-rg"})
    failing: dict[str, AzureError] = field(default_factory=dict)  # method name -> error to raise
    registered_by_fix: list[str] = field(default_factory=list)
    upgrades: tuple[str, ...] = ("1.35.4", "1.36.1")  # what AKS offers the managed clusters
    calls: list[str] = field(default_factory=list)

    def _call(self, method: str) -> None:
        self.calls.append(method)
        if method in self.failing:
            raise self.failing[method]

    def signed_in_identity(self) -> str:
        self._call("signed_in_identity")
        return "dev@contoso.com"

    def provider(self, subscription_id: str, namespace: str) -> ProviderState:
        self._call("provider")
        return ProviderState(namespace, self.providers.get(namespace, "NotRegistered"))

    def register_provider(self, subscription_id: str, namespace: str, timeout: float) -> ProviderState:
        self._call("register_provider")
        self.registered_by_fix.append(namespace)
        self.providers[namespace] = "Registered"
        return ProviderState(namespace, "Registered")

    def feature(self, subscription_id: str, feature: str) -> FeatureState:
        self._call("feature")
        return FeatureState(feature, self.features.get(feature, "NotRegistered"))

    def resource_group_exists(self, subscription_id: str, name: str) -> bool:
        self._call("resource_group_exists")
        return name in self.resource_groups

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus | None:
        self._call("managed_cluster")
        return self.managed.get(f"{resource_group}/{name}")

    def upgrade_profile(self, subscription_id: str, resource_group: str, name: str) -> UpgradeProfile | None:
        self._call("upgrade_profile")
        cluster = self.managed.get(f"{resource_group}/{name}")
        if cluster is None:
            return None
        return UpgradeProfile(cluster.current_kubernetes_version, self.upgrades)

    def connected_cluster(self, subscription_id: str, resource_group: str, name: str) -> ConnectedClusterStatus | None:
        self._call("connected_cluster")
        return self.connected.get(f"{resource_group}/{name}")

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        self._call("extensions")
        return list(self.extensions_)

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef):  # not read by preflight
        raise AssertionError("preflight reads no Flux configuration state")

    def source_control_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[str]:
        self._call("source_control_configurations")
        return list(self.flux_v1)

    def secret_metadata(self, ref: KeyVaultRef) -> SecretMetadata:
        self._call("secret_metadata")
        answer = self.secrets.get(ref) or SecretMetadata(
            ref.vault_url, ref.secret, "4387e9f3d6e14c459867679a90fd0f79", True, NOW - timedelta(days=1), None
        )
        if isinstance(answer, AzureError):
            raise answer
        return answer


DEV_PAT = KeyVaultRef("kv-fleet-dev", "github-pat")


def aks() -> FakeAzure:
    return FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": HEALTHY_AKS})


def arc() -> FakeAzure:
    return FakeAzure(connected={"flux-demo-rg/flux-demo-arc": HEALTHY_ARC})


def check(stack_name: str, azure: FakeAzure, **kwargs):
    kwargs.setdefault("subscription_id", SUBSCRIPTION)
    return preflight_stack(STANDALONE_STACKS / f"Pulumi.{stack_name}.yaml", azure, now=lambda: NOW, **kwargs)


def outcomes(result) -> dict[tuple[str, str], Outcome]:
    return {(c.id, c.subject): c.outcome for c in result.checks}


def failed(result) -> list[str]:
    return [f"{c.id} {c.subject}: {c.message}" for c in result.checks if c.outcome is Outcome.failed]


# --------------------------------------------------------------------------------------------- all passing


def test_healthy_aks_stack_passes_every_check():
    result = check("dev", aks())
    assert result.ok and failed(result) == []
    assert [c.id for c in result.checks] == [
        "spec",
        "credentials",
        "providers",
        "providers",
        "providers",
        "cluster",
        "cluster-identity",
        "kubernetes-version",
        "kubernetes-offered",
        "flux-extension",
        "flux-v1",
        "key-vault",
    ]
    [secret] = [c for c in result.checks if c.id == "key-vault"]
    assert secret.subject == "keyvault:kv-fleet-dev/github-pat"
    assert "fluxfleet:flux.configurations.platform.git.httpsKey" in secret.message


def test_healthy_arc_stack_passes_every_check():
    result = check("edge-store-001", arc())
    assert result.ok and failed(result) == []
    assert outcomes(result)[("cluster", "flux-demo-rg/flux-demo-arc")] is Outcome.passed
    assert "key-vault" not in {c.id for c in result.checks}  # the tutorial's public repository needs no secret


# --------------------------------------------------------------------------------------------- providers and features


def test_unregistered_provider_fails_with_the_command_that_fixes_it():
    azure = aks()
    azure.providers["Microsoft.KubernetesConfiguration"] = "NotRegistered"
    result = check("dev", azure)
    [provider] = [c for c in result.checks if c.outcome is Outcome.failed]
    assert provider.subject == "Microsoft.KubernetesConfiguration"
    assert provider.message == f"NotRegistered on subscription {SUBSCRIPTION}"
    assert "az provider register --namespace Microsoft.KubernetesConfiguration" in provider.remedy
    assert azure.registered_by_fix == []  # nothing changes without --fix


def test_fix_registers_missing_providers_and_passes():
    azure = aks()
    azure.providers["Microsoft.Kubernetes"] = "Registering"
    result = check("dev", azure, fix=True)
    assert result.ok
    assert azure.registered_by_fix == ["Microsoft.Kubernetes"]
    assert outcomes(result)[("providers", "Microsoft.Kubernetes")] is Outcome.passed


def test_fix_that_times_out_fails_the_check():
    azure = aks()
    azure.providers["Microsoft.Kubernetes"] = "NotRegistered"
    azure.failing["register_provider"] = AzureError("Microsoft.Kubernetes is still Registering after 900s")
    result = check("dev", azure, fix=True)
    assert failed(result) == ["providers Microsoft.Kubernetes: Microsoft.Kubernetes is still Registering after 900s"]


def write_stack(tmp_path: Path, source: str, edit) -> Path:
    text = (STANDALONE_STACKS / f"Pulumi.{source}.yaml").read_text()
    path = tmp_path / f"Pulumi.{source}.yaml"
    path.write_text(edit(text))
    return path


def test_legacy_extension_manager_feature_is_a_warning_not_a_requirement(tmp_path):
    path = write_stack(
        tmp_path,
        "dev",
        lambda t: t.replace(
            "  fluxfleet:flux:",
            "  fluxfleet:features: [Microsoft.ContainerService/AKS-ExtensionManager, "
            "Microsoft.ContainerService/EnableWorkloadIdentityPreview]\n  fluxfleet:flux:",
        ),
    )
    azure = aks()
    azure.features["Microsoft.ContainerService/EnableWorkloadIdentityPreview"] = "Pending"
    result = preflight_stack(path, azure, subscription_id=SUBSCRIPTION, now=lambda: NOW)
    legacy, preview = [c for c in result.checks if c.id == "features"]
    assert legacy.outcome is Outcome.warning and "legacy" in legacy.message
    assert preview.outcome is Outcome.failed and preview.message.startswith("Pending")
    assert "az feature register --namespace Microsoft.ContainerService --name EnableWorkloadIdentityPreview" in (
        preview.remedy
    )


def test_registered_feature_passes_in_any_case(tmp_path):
    path = write_stack(
        tmp_path,
        "dev",
        lambda t: t.replace("  fluxfleet:flux:", "  fluxfleet:features: [Microsoft.Foo/Bar]\n  fluxfleet:flux:"),
    )
    azure = aks()
    azure.features["Microsoft.Foo/Bar"] = "registered"  # the Features API answers in lower case
    result = preflight_stack(path, azure, subscription_id=SUBSCRIPTION, now=lambda: NOW)
    assert outcomes(result)[("features", "Microsoft.Foo/Bar")] is Outcome.passed


# --------------------------------------------------------------------------------------------- AKS


def test_missing_aks_cluster_will_be_created_and_its_version_is_checked():
    azure = FakeAzure()
    result = check("dev", azure)
    assert result.ok
    assert outcomes(result)[("cluster", "rg-fleet-dev/aks-dev-weu")] is Outcome.passed
    assert outcomes(result)[("kubernetes-version", "rg-fleet-dev/aks-dev-weu")] is Outcome.passed
    assert "extensions" not in azure.calls and "source_control_configurations" not in azure.calls


def test_missing_aks_cluster_without_its_resource_group_fails():
    azure = FakeAzure(resource_groups=set())
    [cluster] = [c for c in check("dev", azure).checks if c.outcome is Outcome.failed]
    assert cluster.message == (
        f"neither the cluster nor its resource group rg-fleet-dev exists in subscription {SUBSCRIPTION}"
    )
    assert cluster.remedy.startswith("create the group first (`az group create -n rg-fleet-dev -l westeurope`)")


def test_reads_that_would_register_a_provider_wait_for_it():
    # azure-mgmt-core registers a provider on a read that needs it: a doctor must not change the subscription.
    azure = aks()
    azure.providers["Microsoft.KubernetesConfiguration"] = "NotRegistered"
    result = check("dev", azure)
    assert "extensions" not in azure.calls and "source_control_configurations" not in azure.calls
    [skipped] = [c for c in result.checks if c.outcome is Outcome.warning]
    assert (
        skipped.message
        == "not read: Microsoft.KubernetesConfiguration is not confirmed Registered (reading would register it)"
    )
    azure = aks()
    azure.providers["Microsoft.ContainerService"] = "NotRegistered"
    result = check("dev", azure)
    assert "managed_cluster" not in azure.calls and "extensions" not in azure.calls
    assert [c.message for c in result.checks if c.outcome is Outcome.warning] == [
        "not read: Microsoft.ContainerService is not confirmed Registered (reading would register it)"
    ]


def test_aks_cluster_not_succeeded_fails():
    azure = FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": replace(HEALTHY_AKS, provisioning_state="Failed")})
    result = check("dev", azure)
    assert failed(result) == ["cluster rg-fleet-dev/aks-dev-weu: provisioning state Failed"]


def test_service_principal_cluster_fails_the_identity_check():
    azure = FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": replace(HEALTHY_AKS, identity_type=None)})
    [identity] = [c for c in check("dev", azure).checks if c.outcome is Outcome.failed]
    assert identity.id == "cluster-identity"
    assert "service principal" in identity.message
    assert "--enable-managed-identity" in identity.remedy


def test_kubernetes_older_than_flux_supports_fails():
    azure = FakeAzure(managed={"rg-fleet-dev/aks-dev-weu": replace(HEALTHY_AKS, current_kubernetes_version="1.19.11")})
    assert failed(check("dev", azure)) == [
        "kubernetes-version rg-fleet-dev/aks-dev-weu: Kubernetes 1.19.11: the Flux extension needs 1.20 or newer"
    ]


# --------------------------------------------------------------------------------------------- Arc


def test_arc_cluster_not_connected_fails_with_the_connect_command():
    result = check("edge-store-001", FakeAzure())
    [cluster] = [c for c in result.checks if c.outcome is Outcome.failed]
    assert cluster.message == "no Azure Arc-connected cluster flux-demo-arc in flux-demo-rg"
    assert cluster.remedy.startswith("connect it first: `az connectedk8s connect -g flux-demo-rg -n flux-demo-arc`")


def test_offline_arc_cluster_fails_and_says_when_it_was_last_seen():
    offline = replace(HEALTHY_ARC, connectivity_status="Offline", last_connectivity_time=NOW - timedelta(hours=50))
    result = check("edge-store-001", FakeAzure(connected={"flux-demo-rg/flux-demo-arc": offline}))
    assert failed(result) == [
        "cluster flux-demo-rg/flux-demo-arc: connectivity Offline, last seen 2026-11-23 10:00 UTC"
    ]


def test_failed_arc_agents_fail_and_show_their_errors():
    broken = replace(
        HEALTHY_ARC,
        agent_state="Failed",
        agent_errors=(AgentError("Cluster connect agent is not running", "High", "clusterconnect-agent", None),),
    )
    result = check("edge-store-001", FakeAzure(connected={"flux-demo-rg/flux-demo-arc": broken}))
    assert failed(result) == [
        "arc-agents flux-demo-rg/flux-demo-arc: Arc agents Failed: Cluster connect agent is not running"
    ]


# --------------------------------------------------------------------------------------------- the Flux extension


def test_flux_extension_not_installed_is_a_warning():
    azure = aks()
    azure.extensions_ = []
    result = check("dev", azure)
    assert result.ok
    assert outcomes(result)[("flux-extension", "aks-dev-weu/flux")] is Outcome.warning


def test_extension_creating_briefly_is_a_warning_but_stuck_for_hours_fails():
    azure = aks()
    azure.extensions_ = [replace(FLUX, provisioning_state="Creating", last_modified_at=NOW - timedelta(minutes=10))]
    assert check("dev", azure).ok
    azure.extensions_ = [replace(FLUX, provisioning_state="Creating", last_modified_at=NOW - timedelta(hours=3))]
    assert failed(check("dev", azure)) == [
        "flux-extension aks-dev-weu/flux: stuck Creating since 2026-11-25 09:00 UTC (3h00m)"
    ]


def test_failed_extension_shows_what_azure_said():
    azure = aks()
    azure.extensions_ = [
        replace(FLUX, provisioning_state="Failed", messages=("helm upgrade failed: rolled back to revision 3",))
    ]
    [extension] = [c for c in check("dev", azure).checks if c.outcome is Outcome.failed]
    assert extension.message == "Failed: helm upgrade failed: rolled back to revision 3"
    assert "no Flux configuration can be applied" in extension.remedy


def test_extension_older_than_the_support_window_fails():
    azure = aks()
    azure.extensions_ = [replace(FLUX, current_version="1.6.3")]
    assert failed(check("dev", azure)) == [
        "flux-extension-version aks-dev-weu/flux: version 1.6.3 is older than 1.21, the supported window"
    ]


def prod(installed: str | None) -> FakeAzure:
    """prod-weu (pins extension 1.23.0) with the extension installed at `installed`."""
    azure = FakeAzure(managed={"rg-fleet-prod-weu/aks-prod-weu": HEALTHY_AKS})
    azure.extensions_ = [replace(FLUX, current_version=installed, version=installed, auto_upgrade_minor_version=False)]
    return azure


def test_a_pin_that_skips_the_required_hop_fails_naming_the_next_hop():
    result = check("prod-weu", prod("1.20.1"))
    assert failed(result) == [
        "flux-extension-version aks-prod-weu/flux: version 1.20.1 is older than 1.21, the supported window",
        "flux-extension-upgrade aks-prod-weu/flux: installed 1.20.1; pinned 1.23.0 skips 1.21.x: upgrade to 1.21.0 "
        "first (pin version: 1.21.0, roll out, then 1.23.0)",
    ]
    [hop] = [c for c in result.checks if c.id == "flux-extension-upgrade"]
    assert "flux-gitops-release-notes" in hop.remedy
    assert not result.ok


@pytest.mark.parametrize("installed", ["1.21.0", "1.22.2", "1.23.0"])
def test_a_pin_from_the_hop_or_later_passes(installed):
    result = check("prod-weu", prod(installed))
    assert result.ok, failed(result)
    [hop] = [c for c in result.checks if c.id == "flux-extension-upgrade"]
    assert hop.message == f"installed {installed}; pinned 1.23.0: no required upgrade skipped"


def test_no_upgrade_check_without_a_pin_or_an_installed_version():
    assert "flux-extension-upgrade" not in {c.id for c in check("dev", aks()).checks}  # dev auto-upgrades
    assert "flux-extension-upgrade" not in {c.id for c in check("prod-weu", prod(None)).checks}  # Creating, say
    azure = prod("1.20.1")
    azure.extensions_ = []  # a new install may start at any version
    assert "flux-extension-upgrade" not in {c.id for c in check("prod-weu", azure).checks}


def test_flux_installed_under_another_name_fails():
    azure = aks()
    azure.extensions_ = [replace(FLUX, name="fluxv2")]
    [other] = [c for c in check("dev", azure).checks if c.outcome is Outcome.failed]
    assert "installed as 'fluxv2'" in other.message and "az k8s-extension delete" in other.remedy


def test_flux_v1_configurations_fail():
    azure = aks()
    azure.flux_v1 = ["cluster-config"]
    [legacy] = [c for c in check("dev", azure).checks if c.outcome is Outcome.failed]
    assert legacy.id == "flux-v1" and "cluster-config" in legacy.message


# --------------------------------------------------------------------------------------------- Key Vault


def test_unreadable_secret_fails_with_the_layer_message_and_never_its_value():
    azure = aks()
    azure.secrets[DEV_PAT] = AccessDenied(
        "keyvault:kv-fleet-dev/github-pat: 403 for dev@contoso.com: needs Key Vault Secrets User on kv-fleet-dev"
    )
    result = check("dev", azure)
    assert failed(result) == [
        "key-vault keyvault:kv-fleet-dev/github-pat: keyvault:kv-fleet-dev/github-pat: 403 for dev@contoso.com: "
        "needs Key Vault Secrets User on kv-fleet-dev"
    ]


def test_disabled_and_expired_secrets_fail():
    azure = aks()
    base = SecretMetadata(DEV_PAT.vault_url, "github-pat", "a" * 32, True, None, None)
    azure.secrets[DEV_PAT] = replace(base, enabled=False)
    assert failed(check("dev", azure))[0].startswith("key-vault keyvault:kv-fleet-dev/github-pat: disabled")
    azure.secrets[DEV_PAT] = replace(base, expires=NOW - timedelta(days=1))
    assert failed(check("dev", azure))[0].startswith("key-vault keyvault:kv-fleet-dev/github-pat: expired 2026-11-24")


# --------------------------------------------------------------------------------------------- errors and exit codes


def test_a_failed_azure_read_fails_its_check_and_the_others_still_run():
    azure = aks()
    azure.failing["extensions"] = AzureError("listing extensions of aks-dev-weu: 503 after 6 retries: try again later")
    result = check("dev", azure)
    assert failed(result) == [
        "flux-extension aks-dev-weu/flux: listing extensions of aks-dev-weu: 503 after 6 retries: try again later"
    ]
    assert "source_control_configurations" in azure.calls and "secret_metadata" in azure.calls


def test_invalid_stack_is_exit_2_and_touches_no_azure(tmp_path):
    path = write_stack(tmp_path, "dev", lambda t: t.replace("dependsOn: [infra-controllers]", "dependsOn: [infra]"))
    azure = aks()
    fleet = preflight_fleet([path, STACKS / "Pulumi.dev.yaml"], azure, subscription_id=SUBSCRIPTION, now=lambda: NOW)
    assert fleet.exit_code == 2
    assert fleet.stacks[0].checks == [] and "unknown kustomization 'infra'" in str(fleet.stacks[0].errors[0])
    assert fleet.stacks[1].ok  # the valid stack is still checked
    assert azure.calls.count("managed_cluster") == 1


def test_exit_codes():
    healthy = preflight_fleet([STACKS / "Pulumi.dev.yaml"], aks(), subscription_id=SUBSCRIPTION, now=lambda: NOW)
    assert healthy.exit_code == 0
    azure = aks()
    azure.extensions_ = []  # a warning only
    assert preflight_fleet([STACKS / "Pulumi.dev.yaml"], azure, subscription_id=SUBSCRIPTION).exit_code == 0
    azure.flux_v1 = ["old"]
    assert preflight_fleet([STACKS / "Pulumi.dev.yaml"], azure, subscription_id=SUBSCRIPTION).exit_code == 1


def test_no_subscription_anywhere_is_a_failed_check(monkeypatch, tmp_path):
    for variable in ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path))  # no az profile there
    result = preflight_stack(STANDALONE_STACKS / "Pulumi.dev.yaml", aks(), now=lambda: NOW)
    assert failed(result) == ["subscription dev: no Azure subscription"]
    [check] = [check for check in result.checks if check.id == "subscription"]
    assert check.remedy == subscription_ways(option=True)  # the one list every command gives


def test_subscription_from_the_stack_wins_over_the_option(tmp_path):
    path = write_stack(
        tmp_path, "dev", lambda t: t.replace("    kind: aks\n", f"    kind: aks\n    subscriptionId: {SUBSCRIPTION}\n")
    )
    result = preflight_stack(path, aks(), subscription_id="11111111-1111-1111-1111-111111111111", now=lambda: NOW)
    assert result.subscription_id == SUBSCRIPTION


def test_default_subscription_from_environment_then_az_profile(tmp_path):
    profile = {"subscriptions": [{"id": "aaa", "isDefault": False}, {"id": "bbb", "isDefault": True}]}
    (tmp_path / "azureProfile.json").write_text(json.dumps(profile), encoding="utf-8-sig")  # az writes a BOM
    assert default_subscription({"ARM_SUBSCRIPTION_ID": "env"}, tmp_path) == "env"
    assert default_subscription({}, tmp_path) == "bbb"
    assert default_subscription({}, tmp_path / "absent") is None


# --------------------------------------------------------------------------------------------- reports


def test_text_report_is_one_line_a_check_with_remedies_for_failures():
    azure = aks()
    azure.providers["Microsoft.Kubernetes"] = "NotRegistered"
    text = to_text(preflight_fleet([STACKS / "Pulumi.dev.yaml"], azure, subscription_id=SUBSCRIPTION, now=lambda: NOW))
    lines = text.splitlines()
    assert lines[0] == f"dev  {STACKS / 'Pulumi.dev.yaml'}  subscription {SUBSCRIPTION}"
    failure = lines.index(next(line for line in lines if line.startswith("  ✗ providers")))
    assert lines[failure].endswith(f"Microsoft.Kubernetes: NotRegistered on subscription {SUBSCRIPTION}")
    assert lines[failure + 1].startswith("      → `fluxfleet preflight --fix`")
    assert any(line.startswith("  ✔ flux-extension") for line in lines)
    assert lines[-1] == "1 stack(s) checked: 0 ready, 1 not ready"


def test_json_report_shape():
    fleet = preflight_fleet(
        [STACKS / "Pulumi.dev.yaml", STACKS / "Pulumi.edge-store-001.yaml"],
        FakeAzure(managed=aks().managed, connected=arc().connected),
        subscription_id=SUBSCRIPTION,
        now=lambda: NOW,
    )
    report = json.loads(json.dumps(to_json(fleet)))
    assert report["ok"] is True
    assert [s["stack"] for s in report["stacks"]] == ["dev", "edge-store-001"]
    first = report["stacks"][0]
    assert set(first) == {"stack", "file", "subscriptionId", "ok", "errors", "checks"}
    assert set(first["checks"][0]) == {"id", "subject", "outcome", "message", "remedy"}
    assert {c["outcome"] for s in report["stacks"] for c in s["checks"]} == {"pass"}


def test_without_a_token_one_check_fails_and_nothing_else_is_read():
    azure = aks()
    azure.failing["signed_in_identity"] = AzureError("no Azure token (DefaultAzureCredential failed); sign in")
    result = check("dev", azure)
    assert failed(result) == [
        "credentials DefaultAzureCredential: no Azure token (DefaultAzureCredential failed); sign in"
    ]
    assert azure.calls == ["signed_in_identity"]
