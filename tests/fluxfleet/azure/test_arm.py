"""ArmReader over the real Azure SDK clients, served real ARM bodies through azure-core's transport.

Official bodies come from tests/fixtures/arm-examples; the failing states the
official examples lack are the project's own fixtures in tests/fixtures/arm/.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.status import AccessDenied, AzureError
from modules.cluster_ref import ClusterRef
from modules.spec import KeyVaultRef
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import CANARY, ROOT, fixture_file
from tests.modules.test_keyvault import GET_SECRET, vault

SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"
FIXTURES = ROOT / "tests" / "fixtures" / "arm"
FLUX = ("kubernetesconfiguration", "resource-manager", "Microsoft.KubernetesConfiguration", "fluxConfigurations")
FLUX_EXAMPLES = (*FLUX, "stable", "2025-04-01", "examples")
EXTENSION_EXAMPLES = (*FLUX[:3], "extensions", "stable", "2025-03-01", "examples")
AKS_EXAMPLES = ("containerservice", "resource-manager", "Microsoft.ContainerService", "aks", "stable")
ARC_EXAMPLES = ("hybridkubernetes", "resource-manager", "Microsoft.Kubernetes", "stable", "2026-03-01", "examples")
RESOURCES = ("resources", "resource-manager")
FEATURE_EXAMPLES = (*RESOURCES, "Microsoft.Features", "stable", "2025-03-01", "examples")
AKS = ClusterRef.aks("aks-dev-weu", "rg-fleet-dev")
ARC = ClusterRef.arc("clusterName1", "rg1")
STABLE_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # the reader speaks no preview API


def official(*parts: str, status: str = "200") -> Any:
    """The response body of an official x-ms-examples file under tests/fixtures/arm-examples/specification."""
    return example(fixture_file("arm-examples", "specification", *parts), status)


def fixture(name: str, status: str = "200") -> Any:
    return example(FIXTURES / f"{name}.json", status)


class RecordingTransport(ScriptedTransport):
    """Records the waits azure-core's RetryPolicy asks of the transport instead of sleeping them."""

    def __init__(self, respond):
        super().__init__(respond)
        self.slept: list[float] = []

    def sleep(self, duration: float) -> None:
        self.slept.append(duration)


def answering(*answers: tuple[int, Any, dict[str, str]] | Exception) -> RecordingTransport:
    """Answers the requests in turn (the last answer repeats); an exception is raised as the transport's failure."""
    remaining = list(answers)

    def respond(request):
        answer = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return RecordingTransport(respond)


def serving(body: Any, status: int = 200) -> RecordingTransport:
    return answering((status, body, {}))


def reader_over(transport: ScriptedTransport, credential: Any = None, **options: Any) -> ArmReader:
    return ArmReader(credential or FakeCredential(), transport=transport, **options)


def only_path(transport: ScriptedTransport) -> str:
    """The path of the one request the transport saw, after checking its api-version is a stable one."""
    [request] = transport.requests
    url = urlsplit(request.url)
    [api_version] = parse_qs(url.query)["api-version"]
    assert STABLE_API_VERSION.match(api_version), api_version
    return url.path


def last_segment(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message, message
    return message


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."


class JwtCredential(FakeCredential):
    """Hands out an unsigned but well-formed JWT, as Entra ID's tokens look to a client."""

    def __init__(self, **claims: Any):
        self.token = unsigned_jwt({"aud": "https://management.azure.com", **claims})

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


# --------------------------------------------------------------------------------------------- official examples


def test_flux_configurations_list_one_call_with_its_quirks():
    transport = serving(official(*FLUX_EXAMPLES, "ListFluxConfigurations.json"))
    first, second = reader_over(transport).flux_configurations("subId1", ARC)
    path = only_path(transport)
    assert path == (
        "/subscriptions/subId1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/clusterName1"
        "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations"
    )
    assert (first.name, first.namespace, first.scope, first.source_kind) == (
        "srs-fluxconfig",
        "srs-namespace",
        "cluster",
        "GitRepository",
    )
    assert first.compliant and first.provisioning_state == "Succeeded" and first.suspend is False
    assert first.error_message is None  # the API says ""
    assert first.source_synced_commit_id == "master/0ba6f0d30760d567de0bac86c8c4eec13ce1a590"
    assert (first.synced_ref, first.synced_sha) == ("master", "0ba6f0d30760d567de0bac86c8c4eec13ce1a590")
    assert first.source_updated_at == datetime(2021, 5, 19, 18, 17, 12, tzinfo=UTC)
    assert first.status_updated_at == datetime(2021, 5, 19, 18, 17, 12, tzinfo=UTC)
    assert [(o.kind, o.name, o.compliance_state, o.message) for o in first.objects] == [
        ("GitRepository", "srs-fluxconfig", "Compliant", None),  # statusConditions: null in the list
        ("Kustomization", "srs-fluxconfig-srs-kustomization1", "Compliant", None),
        ("Kustomization", "srs-fluxconfig-srs-kustomization2", "Compliant", None),
    ]
    assert second.compliant


def test_flux_configuration_in_get_shape_gives_ready_messages():
    body = official(*FLUX_EXAMPLES, "GetFluxConfiguration.json")
    [configuration] = reader_over(serving({"value": [body], "nextLink": None})).flux_configurations("subId1", ARC)
    assert configuration.error_message is None and configuration.compliant
    messages = {o.name: o.message for o in configuration.objects}
    assert (
        messages["srs-fluxconfig-srs-kustomization1"]
        == "'Applied revision: master/0ba6f0d30760d567de0bac86c8c4eec13ce1a590'"
    )


@pytest.mark.parametrize("status", ["200", "201"])
def test_bucket_configuration_keeps_a_bare_sha_and_reads_offset_timestamps(status):
    body = official(*FLUX_EXAMPLES, "CreateFluxConfigurationWithBucket.json", status=status)
    [configuration] = reader_over(serving({"value": [body]})).flux_configurations("subId1", ARC)
    assert configuration.source_kind == "Bucket"
    assert configuration.source_synced_commit_id == "0ba6f0d30760d567de0bac86c8c4eec13ce1a590"  # no branch prefix
    assert (configuration.synced_ref, configuration.synced_sha) == (None, "0ba6f0d30760d567de0bac86c8c4eec13ce1a590")
    assert configuration.source_updated_at == datetime(2021, 5, 19, 18, 17, 12, tzinfo=UTC)  # written +00:00
    bucket = configuration.objects[0]
    assert bucket.kind == "Bucket" and bucket.message.startswith("stored artifact for revision '55396be1")


def test_extensions_list_one_call():
    transport = serving(official(*EXTENSION_EXAMPLES, "ListExtensions.json"))
    extensions = reader_over(transport).extensions("subId1", ARC)
    path = only_path(transport)
    assert path.endswith("/connectedClusters/clusterName1/providers/Microsoft.KubernetesConfiguration/extensions")
    assert [(e.name, e.extension_type, e.version, e.current_version, e.release_train) for e in extensions] == [
        ("ClusterMonitor", "azuremonitor-containers", "0.1.4", "0.1.4", "Preview"),
        ("App1Monitor", "Microsoft.RecoveryServices/recoveryVault", None, "1.0.1", "Stable"),  # id says BackupVault01
        ("azureVote", "azure-vote", "0.1.4", "0.1.4", "Preview"),
    ]
    assert all(e.succeeded and e.messages == () for e in extensions)


def test_extension_with_extension_state():
    body = official(*EXTENSION_EXAMPLES, "GetExtensionWithExtensionState.json")
    [extension] = reader_over(serving({"value": [body]})).extensions("subId1", ARC)
    assert extension.succeeded and extension.current_version == "0.1.4"
    assert extension.auto_upgrade_minor_version is False
    assert extension.last_modified_at == datetime(2021, 9, 8, 5, 10, 57, 27000, tzinfo=UTC)


def test_managed_cluster_get():
    transport = serving(official(*AKS_EXAMPLES, "2026-05-01", "examples", "ManagedClustersGet.json"))
    cluster = reader_over(transport).managed_cluster(SUB, "rg1", "clustername1")
    path = only_path(transport)
    assert (
        path
        == f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1"
    )
    assert cluster.succeeded and cluster.name == "clustername1"
    assert (cluster.kubernetes_version, cluster.current_kubernetes_version) == ("1.9.6", "1.9.6")
    assert [(pool.name, pool.provisioning_state) for pool in cluster.pools] == [("nodepool1", "Succeeded")]
    assert cluster.identity_type is None  # the example runs as a service principal
    assert (cluster.oidc_issuer_enabled, cluster.workload_identity_enabled) == (False, False)


def test_upgrade_profile_of_a_managed_cluster():
    transport = serving(official(*AKS_EXAMPLES, "2025-10-01", "examples", "ManagedClustersGetUpgradeProfile.json"))
    profile = reader_over(transport).upgrade_profile(SUB, "rg1", "clustername1")
    base = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1"
    assert only_path(transport) == f"{base}/upgradeProfiles/default"
    assert (profile.current, profile.upgrades, profile.preview) == ("1.7.7", ("1.7.9", "1.7.11"), ("1.7.9",))
    assert profile.offers("1.7") and profile.offers("1.7.11") and not profile.offers("1.7.10")
    assert not profile.offers("1.8")


def test_upgrade_profile_of_a_missing_cluster_is_none():
    transport = serving({"error": {"code": "ResourceNotFound", "message": "not found"}}, status=404)
    assert reader_over(transport).upgrade_profile(SUB, "rg1", "gone") is None


def test_managed_cluster_being_created_with_workload_identity():
    body = official(*AKS_EXAMPLES, "2026-05-01", "examples", "ManagedClustersCreate_SecurityProfile.json", status="201")
    cluster = reader_over(serving(body)).managed_cluster(SUB, "rg1", "clustername1")
    assert cluster.provisioning_state == "Creating" and not cluster.succeeded
    assert cluster.workload_identity_enabled is True


def test_managed_cluster_type_in_capitals_is_read_alike():
    [listed] = official(*AKS_EXAMPLES, "2026-01-01", "examples", "ManagedClustersList.json")["value"]
    assert listed["type"] == "Microsoft.ContainerService/ManagedClusters"
    cluster = reader_over(serving(listed)).managed_cluster(SUB, "rg1", "clustername1")
    assert cluster.succeeded and cluster.current_kubernetes_version == listed["properties"]["currentKubernetesVersion"]


def test_connected_cluster_with_failed_agents():
    transport = serving(official(*ARC_EXAMPLES, "GetClusterExample.json"))
    cluster = reader_over(transport).connected_cluster(SUB, "akkeshar", "testCluster")
    path = only_path(transport)
    assert (
        path
        == f"/subscriptions/{SUB}/resourceGroups/akkeshar/providers/Microsoft.Kubernetes/connectedClusters/testCluster"
    )
    assert cluster.name == "connectedCluster1"  # what Azure answered, not what was asked
    assert cluster.provisioning_state == "Succeeded"  # while its agents are Failed: health is not provisioning
    assert cluster.agent_state == "Failed"
    [error] = cluster.agent_errors
    assert error.message == "Upgrade failed for agent extension Strato, version not found"
    assert (error.severity, error.component) == ("Error", "Strato")
    assert error.time == datetime(2020, 12, 17, 7, 14, 58, 865041, tzinfo=UTC)
    assert cluster.connectivity_status == "Unknown" and not cluster.connected  # the example leaves it out
    assert cluster.kubernetes_version == "1.17.0"


def test_connected_cluster_being_connected_is_accepted():
    body = official(*ARC_EXAMPLES, "CreateClusterExample.json", status="201")
    cluster = reader_over(serving(body)).connected_cluster(SUB, "akkeshar", "connectedCluster1")
    assert str(cluster.provisioning_state) == "Accepted"  # the wire string, not the SDK's ProvisioningState.ACCEPTED
    assert cluster.agent_state is None and cluster.agent_errors == ()


def test_provider_registering():
    body = official(*RESOURCES, "Microsoft.Resources", "stable", "2024-11-01", "examples", "GetProvider.json")
    transport = serving(body)
    state = reader_over(transport).provider(SUB, "Microsoft.TestRP1")
    path = only_path(transport)
    assert path == f"/subscriptions/{SUB}/providers/Microsoft.TestRP1"
    assert state.registration_state == "Registering" and not state.registered


def test_provider_states_of_a_listed_subscription():
    listed = official(
        *RESOURCES, "Microsoft.Resources", "resources", "stable", "2024-11-01", "examples", "GetProviders.json"
    )
    by_namespace = {provider["namespace"].lower(): provider for provider in listed["value"]}
    transport = RecordingTransport(lambda request: (200, by_namespace[last_segment(request.url).lower()], {}))
    reader = reader_over(transport)
    states = {namespace: reader.provider(SUB, namespace).registration_state for namespace in by_namespace}
    assert sorted(states.values()) == ["NotRegistered", "Registered", "Registering"]
    assert states["microsoft.resources"] == "Registered"


def test_feature_registered_in_lower_case():
    transport = serving(official(*FEATURE_EXAMPLES, "getFeature.json"))
    state = reader_over(transport).feature(SUB, "Microsoft.ContainerService/AKS-ExtensionManager")
    path = only_path(transport)
    assert path == (
        f"/subscriptions/{SUB}/providers/Microsoft.Features/providers/Microsoft.ContainerService/features/AKS-ExtensionManager"
    )
    assert (state.name, state.state, state.registered) == (
        "Microsoft.ContainerService/AKS-ExtensionManager",
        "registered",
        True,
    )


def test_feature_pending_approval():
    body = official(*FEATURE_EXAMPLES, "FeatureRegistration", "SubscriptionFeatureRegistrationGET.json")
    state = reader_over(serving(body)).feature(SUB, "Microsoft.TestRP/testFeature")
    assert state.state == "Pending" and not state.registered


def test_secret_metadata_from_get_secret():
    body = example(fixture_file(*GET_SECRET))
    transport = vault(lambda request: (200, body, {}))
    metadata = reader_over(transport).secret_metadata(KeyVaultRef("myvault", "mysecretname"))
    assert metadata.vault_url == "https://myvault.vault.azure.net/" and metadata.name == "mysecretname"
    assert metadata.version == "4387e9f3d6e14c459867679a90fd0f79"  # the current one: the id's last segment
    assert metadata.enabled is True and metadata.expires is None
    assert metadata.updated == datetime(2017, 5, 4, 22, 53, 30, tzinfo=UTC)  # epoch seconds on the wire
    assert urlsplit(transport.requests[-1].url).path == "/secrets/mysecretname/"


# --------------------------------------------------------------------------------------------- project fixtures


def test_non_compliant_and_failed_flux_configurations():
    transport = serving(fixture("flux_configurations_failing"))
    apps, infra = reader_over(transport).flux_configurations(SUB, AKS)
    path = only_path(transport)
    assert path.startswith(
        f"/subscriptions/{SUB}/resourceGroups/rg-fleet-dev/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu/"
    )
    assert apps.compliance_state == "Non-Compliant" and not apps.compliant and apps.provisioning_state == "Succeeded"
    assert apps.error_message is None
    [failing] = [o for o in apps.objects if o.compliance_state != "Compliant"]
    assert (failing.kind, failing.name, failing.namespace) == ("Kustomization", "apps-apps", "flux-system")
    assert failing.message.startswith("kustomization path not found: stat /tmp/kustomization-2093841/apps/stagin")
    assert apps.synced_sha == "3f2a8c9d1e4b5a6f7089a1b2c3d4e5f60718293a"
    assert apps.status_updated_at == datetime(2025, 2, 3, 9, 15, 41, tzinfo=UTC)
    assert infra.provisioning_state == "Failed" and infra.suspend is True and infra.scope == "namespace"
    assert infra.error_message.startswith("Error: {failed to create the Flux configuration")
    assert (infra.source_synced_commit_id, infra.synced_sha, infra.source_updated_at, infra.objects) == (
        None,
        None,
        None,
        (),
    )


def test_flux_extension_stuck_creating_and_a_failed_extension():
    flux, dapr = reader_over(serving(fixture("extensions_failing"))).extensions(SUB, AKS)
    assert (flux.name, flux.extension_type, flux.provisioning_state) == ("flux", "microsoft.flux", "Creating")
    assert flux.current_version is None and flux.version is None and flux.auto_upgrade_minor_version is True
    assert flux.last_modified_at == datetime(2024, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)  # 7 digits on the wire
    assert flux.messages == ()
    assert dapr.provisioning_state == "Failed" and not dapr.succeeded
    assert dapr.messages == (
        "InstallationFailed: Helm install of release dapr timed out waiting for the condition",
        "ExtensionOperationFailed: Error: {failed to install chart from path [] for release [dapr]: "
        "err [context deadline exceeded]} occurred while doing the operation : {Installing the extension} on the config",
    )


def test_timestamps_without_an_offset_are_utc():
    """The SDKs hand back naive datetimes for them; preflight subtracts them from an aware now."""
    configurations = fixture("flux_configurations_failing")
    configurations["value"][0]["properties"]["statusUpdatedAt"] = "2025-02-03T09:15:41"
    [apps, _] = reader_over(serving(configurations)).flux_configurations(SUB, AKS)
    assert apps.status_updated_at == datetime(2025, 2, 3, 9, 15, 41, tzinfo=UTC)
    arc = fixture("connected_cluster_offline")
    arc["properties"]["lastConnectivityTime"] = "2024-05-01T10:00:00"
    cluster = reader_over(serving(arc)).connected_cluster(SUB, "rg-edge", "edge-store-001")
    assert cluster.last_connectivity_time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_provider_not_registered():
    state = reader_over(serving(fixture("provider_not_registered"))).provider(SUB, "Microsoft.KubernetesConfiguration")
    assert (state.namespace, state.registration_state, state.registered) == (
        "Microsoft.KubernetesConfiguration",
        "NotRegistered",
        False,
    )


def test_offline_arc_cluster():
    cluster = reader_over(serving(fixture("connected_cluster_offline"))).connected_cluster(
        SUB, "rg-edge", "edge-store-001"
    )
    assert cluster.connectivity_status == "Offline" and not cluster.connected
    assert cluster.last_connectivity_time == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert cluster.provisioning_state == "Succeeded" and cluster.agent_state == "Succeeded"
    assert cluster.agent_errors == ()  # agentErrors: null
    assert cluster.kubernetes_version == "1.29.4+k3s1"


def test_service_principal_cluster_has_no_identity_type():
    cluster = reader_over(serving(fixture("managed_cluster_service_principal"))).managed_cluster(
        SUB, "rg-legacy", "aks-legacy"
    )
    assert cluster.identity_type is None and cluster.succeeded
    assert (cluster.kubernetes_version, cluster.current_kubernetes_version) == ("1.29", "1.29.9")
    assert (cluster.oidc_issuer_enabled, cluster.workload_identity_enabled) == (False, False)


def test_managed_identity_cluster_with_workload_identity():
    body = fixture("managed_cluster_workload_identity")
    cluster = reader_over(serving(body)).managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu")
    assert cluster.identity_type == "UserAssigned"
    assert (cluster.oidc_issuer_enabled, cluster.workload_identity_enabled) == (True, True)
    assert (cluster.kubernetes_version, cluster.current_kubernetes_version) == ("1.31", "1.31.7")
    body["identity"] = {"type": "None"}  # ARM's way of saying "no managed identity"
    assert reader_over(serving(body)).managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu").identity_type is None


def test_flux_v1_source_control_configurations():
    transport = serving(fixture("source_control_configurations_flux_v1"))
    names = reader_over(transport).source_control_configurations(SUB, ClusterRef.arc("edge-store-001", "rg-edge"))
    path = only_path(transport)
    assert path == (
        f"/subscriptions/{SUB}/resourceGroups/rg-edge/providers/Microsoft.Kubernetes/connectedClusters/edge-store-001"
        "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations"
    )
    assert names == ["cluster-config"]


def test_list_follows_next_link():
    apps, infra = fixture("flux_configurations_failing")["value"]
    # Flux configurations are read at 2025-04-01: the SDK follows a page link at its own api-version.
    next_link = f"https://management.azure.com/subscriptions/{SUB}/page2?api-version=2025-04-01&$skipToken=abc"
    transport = answering((200, {"value": [apps], "nextLink": next_link}, {}), (200, {"value": [infra]}, {}))
    configurations = reader_over(transport).flux_configurations(SUB, AKS)
    assert [c.name for c in configurations] == ["apps", "infra"]
    assert [r.url for r in transport.requests][1] == next_link


# --------------------------------------------------------------------------------------------- faults

AUTHORIZATION_FAILED = {
    "error": {
        "code": "AuthorizationFailed",
        "message": "The client 'alice@contoso.com' with object id '0a1b2c3d-0000-4000-8000-000000000001' does not have "
        "authorization to perform action 'Microsoft.ContainerService/managedClusters/read' over scope "
        f"'/subscriptions/{SUB}/resourceGroups/rg-fleet-dev/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu' "
        "or the scope is invalid. If access was recently granted, please refresh your credentials.",
    }
}
CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-fleet-dev/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu"
)
READS = {  # how to read, what the message says was read, and the role it says is missing on which scope
    "managed cluster": (
        lambda r: r.managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu"),
        f"cannot read {CLUSTER_ID}",
        f"Reader role on {CLUSTER_ID};",
    ),
    "extensions": (
        lambda r: r.extensions(SUB, AKS),
        f"cannot read {CLUSTER_ID}/providers/Microsoft.KubernetesConfiguration/extensions",
        f"Reader role on {CLUSTER_ID};",
    ),
    "provider": (
        lambda r: r.provider(SUB, "Microsoft.Kubernetes"),
        f"cannot read /subscriptions/{SUB}/providers/Microsoft.Kubernetes",
        f"Reader role on /subscriptions/{SUB};",
    ),
    "register": (
        lambda r: r.register_provider(SUB, "Microsoft.Kubernetes", 60, poll=0),
        f"cannot register /subscriptions/{SUB}/providers/Microsoft.Kubernetes",
        f"Contributor role on /subscriptions/{SUB};",
    ),
}


def test_throttled_read_waits_as_told_then_succeeds():
    body = fixture("managed_cluster_workload_identity")
    transport = answering(
        (429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}}, {"Retry-After": "2"}),
        (200, body, {}),
    )
    cluster = reader_over(transport).managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu")
    assert cluster.succeeded
    assert transport.slept == [2.0] and len(transport.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_fail_in_one_line(status):
    transport = answering(
        (status, {"error": {"code": "InternalServerError", "message": "Encountered internal server error."}}, {})
    )
    with pytest.raises(AzureError) as caught:
        reader_over(transport, retry_total=4).managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu")
    assert len(transport.requests) == 5  # retry_total, not azure-core's default of 3 status retries
    # azure-core retries once at once, then backs off exponentially (0.8 s · 2ⁿ by default)
    assert len(transport.slept) == 3 and 0 < transport.slept[0] < transport.slept[1] < transport.slept[2]
    assert one_line(caught.value) == (
        f"cannot read {CLUSTER_ID}: {status} InternalServerError still after 4 retries: Azure is throttling or failing; "
        "run again in a few minutes"
    )
    assert not isinstance(caught.value, AccessDenied)


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_forbidden_names_identity_scope_and_role(read):
    call, what, role_on_scope = read
    transport = answering((403, AUTHORIZATION_FAILED, {}))
    credential = JwtCredential(upn="alice@contoso.com", oid="0a1b2c3d-0000-4000-8000-000000000001")
    with pytest.raises(AccessDenied) as caught:
        call(reader_over(transport, credential))
    message = one_line(caught.value)
    assert message.startswith(f"{what}: 403 AuthorizationFailed: ")
    assert f"alice@contoso.com (object id 0a1b2c3d-0000-4000-8000-000000000001) lacks the {role_on_scope}" in message
    assert len(transport.requests) == 1  # a 403 is not retried


def test_unauthorized_token_names_the_application_and_the_role():
    body = {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}
    credential = JwtCredential(appid="04b07795-8ddb-461a-bbee-02f9e1bf7b46")
    with pytest.raises(AccessDenied) as caught:
        reader_over(answering((401, body, {})), credential).extensions(SUB, AKS)
    message = one_line(caught.value)
    assert "401 InvalidAuthenticationToken" in message
    assert "application 04b07795-8ddb-461a-bbee-02f9e1bf7b46" in message
    assert f"Reader role on {CLUSTER_ID}" in message


def test_identity_of_an_opaque_token_is_the_signed_in_identity():
    with pytest.raises(AccessDenied) as caught:
        reader_over(answering((403, AUTHORIZATION_FAILED, {}))).provider(SUB, "Microsoft.Kubernetes")
    assert "the signed-in identity lacks the Reader role on " in one_line(caught.value)
    assert "fake-token" not in str(caught.value)


def test_credential_failure_is_one_line():
    class NoCredential(FakeCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token.\nAttempted credentials: ..."
            )

        get_token_info = get_token

    transport = serving({})
    with pytest.raises(AzureError) as caught:
        reader_over(transport, NoCredential()).provider(SUB, "Microsoft.Kubernetes")
    assert one_line(caught.value).startswith(
        f"cannot read /subscriptions/{SUB}/providers/Microsoft.Kubernetes: no Azure token "
        "(DefaultAzureCredential failed to retrieve a token.); sign in with `az login`"
    )
    assert transport.requests == []


@pytest.mark.parametrize(
    ("failure", "expect"),
    [
        (
            ServiceRequestError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"),
            "cannot connect to Azure",
        ),
        (
            ServiceResponseError("('Connection aborted.', RemoteDisconnected())"),
            "the connection broke before Azure answered",
        ),
        (ServiceResponseTimeoutError("Read timed out. (read timeout=60)"), "no answer within 60s (tried 5 times)"),
    ],
    ids=["connection reset", "dropped response", "read timeout"],
)
def test_network_failures_are_retried_then_fail_in_one_line(failure, expect):
    transport = answering(failure)
    with pytest.raises(AzureError) as caught:
        reader_over(transport, retry_total=4).extensions(SUB, AKS)
    assert expect in one_line(caught.value)
    assert one_line(caught.value).startswith(
        f"cannot read {CLUSTER_ID}/providers/Microsoft.KubernetesConfiguration/extensions: "
    )
    assert len(transport.requests) == 5


def test_attempts_time_out_at_the_configured_seconds():
    """Without a test transport, the SDK builds requests' transport with the reader's connect and read timeouts."""
    from azure.mgmt.containerservice import ContainerServiceClient

    reader = ArmReader(FakeCredential(), timeout=12.5)
    config = reader._arm(ContainerServiceClient, SUB)._client._pipeline._transport.connection_config
    assert (config.timeout, config.read_timeout) == (12.5, 12.5)


NOT_FOUND = {
    "error": {"code": "ResourceNotFound", "message": "The Resource 'x' under resource group 'rg' was not found."}
}


def test_missing_clusters_are_none():
    reader = reader_over(answering((404, NOT_FOUND, {})))
    assert reader.managed_cluster(SUB, "rg-fleet-dev", "aks-dev-weu") is None
    assert reader.connected_cluster(SUB, "rg-edge", "edge-store-001") is None


def test_a_missing_subscription_is_no_missing_cluster():
    """404 SubscriptionNotFound says nothing of the cluster: it fails as not found, never reads as absent."""
    body = {"error": {"code": "SubscriptionNotFound", "message": f"The subscription '{SUB}' could not be found."}}
    for read in (ArmReader.managed_cluster, ArmReader.connected_cluster):
        with pytest.raises(AzureError) as caught:
            read(reader_over(answering((404, body, {}))), SUB, "rg-fleet-dev", "aks-dev-weu")
        assert "404 SubscriptionNotFound: not found; check the names in the stack and its subscription" in one_line(
            caught.value
        )


def test_other_missing_things_fail_as_not_found():
    with pytest.raises(AzureError) as caught:
        reader_over(answering((404, NOT_FOUND, {}))).flux_configurations(SUB, AKS)
    assert one_line(caught.value) == (
        f"cannot read {CLUSTER_ID}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations: "
        "404 ResourceNotFound: not found; check the names in the stack and its subscription"
    )


def test_other_client_errors_carry_azures_first_line():
    body = {
        "error": {"code": "InvalidApiVersionParameter", "message": "The api-version '2099-01-01' is invalid.\nMore."}
    }
    with pytest.raises(AzureError) as caught:
        reader_over(answering((400, body, {}))).provider(SUB, "Microsoft.Kubernetes")
    assert one_line(caught.value).endswith(": 400 InvalidApiVersionParameter: The api-version '2099-01-01' is invalid.")


# --------------------------------------------------------------------------------------------- provider registration


def registration(*states: str) -> RecordingTransport:
    """GETs answer the given states in turn (the last repeats); POST .../register answers Registering."""
    body = fixture("provider_not_registered")
    remaining = list(states)

    def respond(request):
        state = "Registering" if request.method == "POST" else remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return 200, {**body, "registrationState": state}, {}

    return RecordingTransport(respond)


def test_register_provider_polls_until_registered():
    transport = registration("NotRegistered", "Registering", "Registered")
    state = reader_over(transport).register_provider(SUB, "Microsoft.KubernetesConfiguration", 60, poll=0)
    assert state.registered and state.namespace == "Microsoft.KubernetesConfiguration"
    assert [r.method for r in transport.requests] == ["GET", "POST", "GET", "GET"]
    assert (
        urlsplit(transport.requests[1].url).path
        == f"/subscriptions/{SUB}/providers/Microsoft.KubernetesConfiguration/register"
    )


def test_register_provider_timeout_is_one_line():
    with pytest.raises(AzureError) as caught:
        reader_over(registration("NotRegistered", "Registering")).register_provider(
            SUB, "Microsoft.KubernetesConfiguration", 0, poll=0
        )
    assert one_line(caught.value) == (
        f"cannot register /subscriptions/{SUB}/providers/Microsoft.KubernetesConfiguration: "
        f"Microsoft.KubernetesConfiguration is still Registering after 0s on subscription {SUB}; registration can take "
        "a while: run again later (`az provider show --namespace Microsoft.KubernetesConfiguration --query "
        "registrationState` shows progress)"
    )


# --------------------------------------------------------------------------------------------- clients and concurrency


def test_clients_are_built_once_per_subscription_and_vault():
    body = fixture("managed_cluster_workload_identity")
    transport = serving(body)
    reader = reader_over(transport)
    for subscription_id in (SUB, SUB, OTHER_SUB):
        reader.managed_cluster(subscription_id, "rg-fleet-dev", "aks-dev-weu")
    assert len(reader._clients) == 2
    secret = example(fixture_file(*GET_SECRET))
    reader = reader_over(vault(lambda request: (200, secret, {})))
    reader.secret_metadata(KeyVaultRef("myvault", "a"))
    reader.secret_metadata(KeyVaultRef("https://myvault.vault.azure.net", "b"))
    assert len(reader._clients) == 1


class InFlightTransport(ScriptedTransport):
    """Counts the requests in flight per subscription; requests of `held` subscriptions wait for `release`."""

    def __init__(self, body: Any, held: frozenset[str] = frozenset(), pause: float = 0.05):
        super().__init__(lambda request: (200, body, {}))
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.release = threading.Event()
        self._held, self._pause, self._lock = held, pause, threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        subscription_id = urlsplit(request.url).path.split("/")[2]
        with self._lock:
            self.in_flight[subscription_id] = self.in_flight.get(subscription_id, 0) + 1
            self.most[subscription_id] = max(self.most.get(subscription_id, 0), self.in_flight[subscription_id])
        try:
            if subscription_id in self._held:
                assert self.release.wait(10), "held request never released"
            else:
                time.sleep(self._pause)
            return super().send(request, **kwargs)
        finally:
            with self._lock:
                self.in_flight[subscription_id] -= 1


def test_concurrency_per_subscription_is_bounded():
    transport = InFlightTransport(fixture("managed_cluster_workload_identity"))
    reader = reader_over(transport, max_concurrency_per_subscription=2)
    with ThreadPoolExecutor(max_workers=8) as pool:
        clusters = list(pool.map(lambda i: reader.managed_cluster(SUB, "rg-fleet-dev", f"aks-{i}"), range(8)))
    assert all(cluster.succeeded for cluster in clusters) and len(transport.requests) == 8
    assert transport.most == {SUB: 2}


def test_subscriptions_do_not_wait_for_each_other():
    transport = InFlightTransport(fixture("managed_cluster_workload_identity"), held=frozenset({SUB}))
    reader = reader_over(transport, max_concurrency_per_subscription=2)

    def read(subscription_id: str) -> Any:
        return reader.managed_cluster(subscription_id, "rg-fleet-dev", "aks-dev-weu")

    with ThreadPoolExecutor(max_workers=4) as pool:
        try:
            held = [pool.submit(read, SUB) for _ in range(3)]
            deadline = time.monotonic() + 5
            while transport.in_flight.get(SUB, 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert transport.in_flight[SUB] == 2  # both slots of SUB taken: the third read waits for one
            assert pool.submit(read, OTHER_SUB).result(timeout=5).succeeded  # and OTHER_SUB's read does not
            assert transport.most[SUB] == 2
        finally:
            transport.release.set()
        assert all(future.result(timeout=10).succeeded for future in held)
    assert len(transport.requests) == 4


# --------------------------------------------------------------------------------------------- secrets stay secret


def canary_secret() -> dict[str, Any]:
    body = copy.deepcopy(example(fixture_file(*GET_SECRET)))
    body["value"] = CANARY
    return body


class BodyReadingTransport(ScriptedTransport):
    """Reads each body in before the pipeline sees it, as requests' transport does for a call that does not stream
    (only then could azure-core's network trace log a body)."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        response.read()
        return response


def test_secret_value_is_dropped(caplog):
    caplog.set_level(logging.DEBUG, logger="azure")
    # logging_enable would have azure-core log response bodies: the reader turns it off whatever it is given.
    transport = BodyReadingTransport(vault(lambda request: (200, canary_secret(), {})).respond)
    reader = reader_over(transport, logging_enable=True)
    metadata = reader.secret_metadata(KeyVaultRef("myvault", "mysecretname"))
    assert metadata.version == "4387e9f3d6e14c459867679a90fd0f79"
    assert CANARY not in repr(metadata) and CANARY not in str(metadata)
    assert CANARY not in json.dumps(vars(metadata), default=str)
    assert caplog.records and CANARY not in caplog.text


def test_forbidden_secret_names_the_vault_and_role_and_never_the_value():
    forbidden = {
        "error": {
            "code": "Forbidden",
            "message": f"Caller is not authorized to perform action on resource. (value seen: {CANARY})",
            "innererror": {"code": "ForbiddenByRbac"},
        }
    }
    credential = JwtCredential(upn="alice@contoso.com")
    with pytest.raises(AccessDenied) as caught:
        reader_over(vault(lambda request: (403, forbidden, {})), credential).secret_metadata(
            KeyVaultRef("kv-test", "github-pat")
        )
    message = one_line(caught.value)
    assert CANARY not in message and CANARY not in repr(caught.value)
    assert message == (
        "cannot read keyvault:kv-test/github-pat: 403 Forbidden: alice@contoso.com lacks the Key Vault Secrets User "
        "role on https://kv-test.vault.azure.net/; ask an owner of that scope to assign it"
    )


@pytest.mark.parametrize("status, exists", [(204, True), (404, False)])
def test_resource_group_existence_is_a_head_request(status, exists):
    transport = answering((status, None, {}))
    assert reader_over(transport).resource_group_exists(SUB, "rg-fleet-dev") is exists
    [request] = transport.requests
    assert request.method == "HEAD"
    assert urlsplit(request.url).path == f"/subscriptions/{SUB}/resourcegroups/rg-fleet-dev"


def test_signed_in_identity_names_the_user_or_fails_once_in_one_line():
    reader = reader_over(serving({}), JwtCredential(upn="alice@contoso.com", oid="0000-1111"))
    assert reader.signed_in_identity() == "alice@contoso.com (object id 0000-1111)"

    class NoToken(FakeCredential):
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nAttempted: ...")

        get_token_info = get_token

    with pytest.raises(AzureError) as caught:
        reader_over(serving({}), NoToken()).signed_in_identity()
    assert one_line(caught.value).startswith("no Azure token (DefaultAzureCredential failed to retrieve a token.)")
