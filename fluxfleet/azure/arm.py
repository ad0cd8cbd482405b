"""`ArmReader`: the Azure SDK implementation of `status.AzureReader`.

One cloud (`cluster.cloud`: its ARM endpoint and token audience, and its sign-in authority, from modules/clouds.py);
one credential; one SDK client per (client class, subscription) and one `SecretClient` per vault, built on first use
and reused; `for_cloud` gives the reader of another cloud with the same settings. Every pipeline retries 429 and
5xx with azure-core's `RetryPolicy` (which honours `Retry-After`), bounds each attempt with a connection and read
timeout, and holds a per-subscription semaphore during each attempt, so a fleet-wide run stays under ARM's
per-subscription throttling. SDK models never leave this module, and every failure
leaves it as a one-line `AzureError` that names what was read and what to do.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import exceptions as sdk_errors
from azure.core.pipeline.policies import HTTPPolicy
from azure.keyvault.secrets import SecretClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.hybridkubernetes import ConnectedKubernetesClient
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.fluxconfigurations import (
    KubernetesConfigurationFluxConfigurationsMgmtClient as FluxConfigurationsClient,
)
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient

from fluxfleet.azure.access import SIGN_IN
from fluxfleet.azure.status import (
    AccessDenied,
    AgentError,
    AzureError,
    ConnectedClusterStatus,
    ExtensionStatus,
    FeatureState,
    FluxConfigurationStatus,
    FluxObjectStatus,
    ManagedClusterStatus,
    PoolStatus,
    ProviderState,
    SecretMetadata,
    UpgradeProfile,
)
from fluxfleet.redact import mask_secrets
from modules.clouds import DEFAULT_CLOUD, Cloud, cloud as cloud_named
from modules.cluster_ref import ClusterRef
from modules.providers import POLL_SECONDS, register_provider
from modules.spec import KeyVaultRef

READER = "Reader"
CONTRIBUTOR = "Contributor"  # grants Microsoft.*/register/action on the subscription
SECRETS_USER = "Key Vault Secrets User"
UNKNOWN = "Unknown"  # a state the API left out
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # what azure-core's RetryPolicy retries
_SUBSCRIPTION_IN_URL = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
DETAIL_MAX = 200  # characters of an SDK's or Azure's own words quoted in an error line


class _MalformedAnswer(ValueError):
    """An answer that does not fit the API: no `value` list, a page link that repeats."""


@dataclass(frozen=True)
class _Call:
    """What a request was for, so that its failure can say what was read and which role would allow it."""

    verb: str  # read | register
    target: str  # an ARM resource id, or keyvault:<vault>/<secret>
    scope: str  # where the role has to be assigned
    role: str

    @property
    def failed(self) -> str:
        return f"cannot {self.verb} {self.target}"


class _SubscriptionSlots:
    """One bounded semaphore per subscription, shared by all pipelines of one reader."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"max_concurrency_per_subscription must be at least 1, not {limit}")
        self._limit = limit
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def hold(self, url: str) -> AbstractContextManager[Any]:
        """Holds a slot of the URL's subscription while entered (Key Vault URLs have none to hold)."""
        match = _SUBSCRIPTION_IN_URL.search(url)
        if match is None:
            return nullcontext()
        subscription_id = match.group(1).lower()
        with self._lock:
            semaphore = self._semaphores.setdefault(subscription_id, threading.BoundedSemaphore(self._limit))
        return semaphore


class _SubscriptionConcurrencyPolicy(HTTPPolicy):
    """Holds a subscription slot during each attempt (a per-retry policy: backoff sleeps hold no slot).

    A pipeline sets its policies' `next`, so each client gets its own instance over the shared slots."""

    def __init__(self, slots: _SubscriptionSlots):
        super().__init__()
        self._slots = slots

    def send(self, request: Any) -> Any:
        with self._slots.hold(request.http_request.url):
            return self.next.send(request)


class ArmReader:
    """Reads one Azure cloud through the Azure SDKs with one credential (`DefaultAzureCredential` signing in at the
    cloud's authority, unless given one).

    `client_options` go to every SDK client as azure-core pipeline options (tests pass `transport=`)."""

    def __init__(
        self,
        credential: Any = None,
        *,
        cloud: str = DEFAULT_CLOUD,
        max_concurrency_per_subscription: int = 8,
        retry_total: int = 6,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: float = 60,
        timeout: float = 60,
        **client_options: Any,
    ):
        self.cloud = cloud
        self._cloud = cloud_named(cloud)
        self._given_credential = credential
        self._credential = credential
        self.client_options = dict(client_options)  # as given: a Resource Graph reader beside this one takes them too
        self._settings = {
            "max_concurrency_per_subscription": max_concurrency_per_subscription,
            "retry_total": retry_total,
            "retry_backoff_factor": retry_backoff_factor,
            "retry_backoff_max": retry_backoff_max,
            "timeout": timeout,
        }
        self._siblings: dict[str, ArmReader] = {}
        self._slots = _SubscriptionSlots(max_concurrency_per_subscription)
        self._retry_total = retry_total
        self._timeout = timeout
        self._options = {
            **client_options,
            # RetryPolicy stops at the smallest of its counters: all of them follow retry_total.
            "retry_total": retry_total,
            "retry_connect": retry_total,
            "retry_read": retry_total,
            "retry_status": retry_total,
            "retry_backoff_factor": retry_backoff_factor,
            "retry_backoff_max": retry_backoff_max,
            "connection_timeout": timeout,
            "read_timeout": timeout,
            "logging_enable": False,  # would log response bodies, and a secret's value is one
        }
        self._clients: dict[tuple[Any, str], Any] = {}
        self._lock = threading.RLock()

    @property
    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                self._credential = self._cloud.default_credential()
            return self._credential

    def for_cloud(self, cloud: str) -> ArmReader:
        """The reader of `cloud` with this one's settings and client options, built once: itself for its own cloud.
        It shares a credential this reader was given (the caller chose it); else it signs in at its own cloud."""
        if cloud == self.cloud:
            return self
        with self._lock:
            if cloud not in self._siblings:
                self._siblings[cloud] = type(self)(
                    self._given_credential, cloud=cloud, **self._settings, **self.client_options
                )
            return self._siblings[cloud]

    # ------------------------------------------------------------------ subscription

    def provider(self, subscription_id: str, namespace: str) -> ProviderState:
        call = _Call("read", _provider_id(subscription_id, namespace), _subscription(subscription_id), READER)
        with self._failures(call):
            provider = self._arm(ResourceManagementClient, subscription_id).providers.get(namespace)
            return ProviderState(namespace, _text(provider.registration_state) or "NotRegistered")

    def register_provider(
        self, subscription_id: str, namespace: str, timeout: float, *, poll: float = POLL_SECONDS
    ) -> ProviderState:
        """Register, then poll every `poll` seconds until Registered or `timeout` seconds (then AzureError)."""
        call = _Call("register", _provider_id(subscription_id, namespace), _subscription(subscription_id), CONTRIBUTOR)
        with self._failures(call):
            try:
                state = register_provider(
                    subscription_id,
                    namespace,
                    self.credential,
                    timeout=timeout,
                    poll=poll,
                    cloud=self.cloud,
                    **self._pipeline_options(),
                )
            except TimeoutError as error:
                raise AzureError(
                    f"{call.failed}: {error}; registration can take a while: run again later "
                    f"(`az provider show --namespace {namespace} --query registrationState` shows progress)"
                ) from None
        return ProviderState(namespace, state)

    def feature(self, subscription_id: str, feature: str) -> FeatureState:
        namespace, name = feature.split("/", 1)
        target = f"{_subscription(subscription_id)}/providers/Microsoft.Features/providers/{namespace}/features/{name}"
        with self._failures(_Call("read", target, _subscription(subscription_id), READER)):
            result = self._arm(FeatureClient, subscription_id).features.get(namespace, name)
            state = result.properties.state if result.properties else None
            return FeatureState(feature, _text(state) or "NotRegistered")

    def resource_group_exists(self, subscription_id: str, name: str) -> bool:
        target = f"{_subscription(subscription_id)}/resourceGroups/{name}"
        with self._failures(_Call("read", target, _subscription(subscription_id), READER)):
            return bool(self._arm(ResourceManagementClient, subscription_id).resource_groups.check_existence(name))

    # ------------------------------------------------------------------ clusters

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus | None:
        cluster_id = ClusterRef.aks(name, resource_group).resource_id(subscription_id)
        with self._failures(_Call("read", cluster_id, cluster_id, READER)):
            try:
                cluster = self._arm(ContainerServiceClient, subscription_id).managed_clusters.get(resource_group, name)
            except sdk_errors.ResourceNotFoundError as error:
                _absent(error)
                return None
            return managed_cluster_status(cluster, name)

    def upgrade_profile(self, subscription_id: str, resource_group: str, name: str) -> UpgradeProfile | None:
        cluster_id = ClusterRef.aks(name, resource_group).resource_id(subscription_id)
        profile_id = f"{cluster_id}/upgradeProfiles/default"
        with self._failures(_Call("read", profile_id, cluster_id, READER)):
            try:
                profile = self._arm(ContainerServiceClient, subscription_id).managed_clusters.get_upgrade_profile(
                    resource_group, name
                )
            except sdk_errors.ResourceNotFoundError as error:
                _absent(error)
                return None
            return upgrade_profile_of(profile)

    def connected_cluster(self, subscription_id: str, resource_group: str, name: str) -> ConnectedClusterStatus | None:
        cluster_id = ClusterRef.arc(name, resource_group).resource_id(subscription_id)
        with self._failures(_Call("read", cluster_id, cluster_id, READER)):
            try:
                cluster = self._arm(ConnectedKubernetesClient, subscription_id).connected_cluster.get(
                    resource_group, name
                )
            except sdk_errors.ResourceNotFoundError as error:
                _absent(error)
                return None
            return connected_cluster_status(cluster, name)

    # ------------------------------------------------------------------ on a cluster: one list call each

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        with self._failures(_cluster_list_call(subscription_id, cluster, "extensions")):
            operations = self._arm(SourceControlConfigurationClient, subscription_id).extensions
            return [extension_status(extension) for extension in _listed(operations, *_cluster_path(cluster))]

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[FluxConfigurationStatus]:
        """At API 2025-04-01 (azure-mgmt-kubernetesconfiguration-fluxconfigurations): OCI sources and git providers
        are seen. Its list call reads a page without `value` as empty, so each page is checked as it arrives."""
        with self._failures(_cluster_list_call(subscription_id, cluster, "fluxConfigurations")):
            operations = self._arm(FluxConfigurationsClient, subscription_id).flux_configurations
            return [
                flux_configuration_status(configuration)
                for configuration in _listed(operations, *_cluster_path(cluster), raw_response_hook=_page_checked)
            ]

    def source_control_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[str]:
        with self._failures(_cluster_list_call(subscription_id, cluster, "sourceControlConfigurations")):
            operations = self._arm(SourceControlConfigurationClient, subscription_id).source_control_configurations
            return [
                configuration.name
                for configuration in _listed(operations, *_cluster_path(cluster))
                if configuration.name
            ]

    # ------------------------------------------------------------------ Key Vault

    def secret_metadata(self, ref: KeyVaultRef) -> SecretMetadata:
        with self._failures(_Call("read", str(ref), ref.vault_url, SECRETS_USER)):
            # Only the properties are kept: the secret, and with it the value, is never bound to a name.
            properties = self._vault(ref.vault_url).get_secret(ref.secret, ref.version).properties
            return SecretMetadata(
                vault_url=ref.vault_url,
                name=ref.secret,
                version=properties.version or "",
                enabled=bool(properties.enabled),
                updated=_utc(properties.updated_on),
                expires=_utc(properties.expires_on),
            )

    # ------------------------------------------------------------------ clients

    def _pipeline_options(self) -> dict[str, Any]:
        return {**self._options, "per_retry_policies": [_SubscriptionConcurrencyPolicy(self._slots)]}

    def _cached(self, key: tuple[Any, str], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = build()
            return self._clients[key]

    def _arm(self, client_class: Any, subscription_id: str) -> Any:
        return self._cached(
            (client_class, subscription_id),
            # the cloud's ARM endpoint (base_url) and audience (credential_scopes), as azure-mgmt-core has them
            lambda: client_class(
                self.credential, subscription_id, **self._cloud.client_settings(), **self._pipeline_options()
            ),
        )

    def _vault(self, vault_url: str) -> SecretClient:
        return self._cached(
            (SecretClient, vault_url), lambda: SecretClient(vault_url, self.credential, **self._pipeline_options())
        )

    # ------------------------------------------------------------------ failures

    @contextmanager
    def _failures(self, call: _Call) -> Iterator[None]:
        """Turns every SDK and transport failure into a one-line AzureError about `call`."""
        failed = call.failed
        try:
            yield
        except sdk_errors.HttpResponseError as error:  # also ClientAuthenticationError, ResourceNotFoundError
            raise self._http_failure(call, error) from None
        except sdk_errors.AzureError as error:
            raise transport_failure(failed, error, self._timeout, self._retry_total + 1) from None
        # A 200 whose body breaks the API's schema (no `value`, a null item, a string for an object) fails in the
        # SDK's deserializer or in the conversion to a status, both inside this block: that read failed, not the run.
        except (sdk_errors.DeserializationError, TypeError, AttributeError, ValueError, KeyError) as error:
            raise _malformed(call, error) from None

    def _http_failure(self, call: _Call, error: sdk_errors.HttpResponseError) -> AzureError:
        failed = call.failed
        status = error.status_code
        if status is None:  # the credential failed: no request reached Azure
            return AzureError(f"{failed}: no Azure token ({first_line(error)}); {SIGN_IN}")
        if 200 <= status < 300:  # azure-core's DecodeError: a success whose body is not JSON
            return _malformed(call, error)
        answer = f"{status} {error_code(error)}"
        if status == 401:
            return AccessDenied(
                f"{failed}: {answer}: Azure did not accept the token of {self._identity()}; sign in again "
                f"(`az login`, to the subscription's tenant) as an identity with the {call.role} role on {call.scope}"
            )
        if status == 403:
            return AccessDenied(
                f"{failed}: {answer}: {self._identity()} lacks the {call.role} role on {call.scope}; "
                "ask an owner of that scope to assign it"
            )
        if status == 404:
            return AzureError(f"{failed}: {answer}: not found; check the names in the stack and its subscription")
        if status in RETRIED_STATUSES:
            return AzureError(
                f"{failed}: {answer} still after {self._retry_total} retries: Azure is throttling or failing; "
                "run again in a few minutes"
            )
        server_message = error.error.message if error.error and error.error.message else error
        return AzureError(f"{failed}: {answer}: {first_line(server_message)}")

    def signed_in_identity(self) -> str:
        """Who the credential signs in as; AzureError, once and in one line, when it can get no token at all."""
        try:
            token = self.credential.get_token(*self._cloud.credential_scopes).token
        except sdk_errors.AzureError as error:  # ClientAuthenticationError, CredentialUnavailableError
            raise AzureError(f"no Azure token ({first_line(error)}); {SIGN_IN}") from None
        return describe_identity(token)

    def _identity(self) -> str:
        return identity_of(self.credential, self._cloud)


def identity_of(credential: Any, cloud: Cloud) -> str:
    """Who `credential` signs in to `cloud` as, for an access-denied message (never the token itself)."""
    try:
        return describe_identity(credential.get_token(*cloud.credential_scopes).token)
    except sdk_errors.AzureError:
        return "the signed-in identity"


def describe_identity(token: str) -> str:
    """The identity a token names, from its claims (a user's name, an application, an object id)."""
    try:
        claims = _jwt_claims(token)
    except ValueError:
        return "the signed-in identity"
    appid, oid = claims.get("appid"), claims.get("oid")
    name = claims.get("upn") or claims.get("unique_name") or (f"application {appid}" if appid else None)
    if name:
        return f"{name} (object id {oid})" if oid else name
    return f"object id {oid}" if oid else "the signed-in identity"


# --------------------------------------------------------------------------------------------- SDK model → status
# Public: fleet_graph maps Resource Graph rows (the same ARM resource shape) through these, so both readers agree.


def managed_cluster_status(cluster: Any, requested_name: str) -> ManagedClusterStatus:
    # Properties are read flattened (cluster.provisioning_state): both msrest and TypeSpec-generated models offer
    # that, and it is None rather than an AttributeError when Azure leaves `properties` out.
    identity_type = _text(cluster.identity.type) if cluster.identity else None
    workload_identity = cluster.security_profile.workload_identity if cluster.security_profile else None
    return ManagedClusterStatus(
        name=cluster.name or requested_name,
        provisioning_state=_text(cluster.provisioning_state) or UNKNOWN,
        identity_type=None if identity_type in (None, "None") else identity_type,  # "None": no managed identity
        kubernetes_version=cluster.kubernetes_version,
        current_kubernetes_version=cluster.current_kubernetes_version,
        oidc_issuer_enabled=bool(cluster.oidc_issuer_profile and cluster.oidc_issuer_profile.enabled),
        workload_identity_enabled=bool(workload_identity and workload_identity.enabled),
        oidc_issuer_url=cluster.oidc_issuer_profile.issuer_url if cluster.oidc_issuer_profile else None,
        pools=tuple(
            PoolStatus(pool.name or "", _text(pool.provisioning_state) or UNKNOWN, pool.current_orchestrator_version)
            for pool in cluster.agent_pool_profiles or ()
        ),
    )


def upgrade_profile_of(profile: Any) -> UpgradeProfile:
    """`controlPlaneProfile` of a managed cluster's upgrade profile (read flattened, as the cluster is)."""
    control_plane = profile.control_plane_profile
    upgrades = [u for u in (control_plane.upgrades or []) if u.kubernetes_version] if control_plane else []
    return UpgradeProfile(
        current=control_plane.kubernetes_version if control_plane else None,
        upgrades=tuple(u.kubernetes_version for u in upgrades),
        preview=tuple(u.kubernetes_version for u in upgrades if u.is_preview),
    )


def connected_cluster_status(cluster: Any, requested_name: str) -> ConnectedClusterStatus:
    agent = cluster.arc_agent_profile
    issuer = cluster.oidc_issuer_profile
    workload_identity = cluster.security_profile.workload_identity if cluster.security_profile else None
    return ConnectedClusterStatus(
        name=cluster.name or requested_name,
        provisioning_state=_text(cluster.provisioning_state) or UNKNOWN,
        connectivity_status=_text(cluster.connectivity_status) or UNKNOWN,
        last_connectivity_time=_utc(cluster.last_connectivity_time),
        kubernetes_version=cluster.kubernetes_version,
        agent_state=_text(agent.agent_state) if agent else None,
        agent_errors=tuple(
            AgentError(_said(error.message) or "", _text(error.severity), error.component, _utc(error.time))
            for error in (agent.agent_errors if agent else None) or ()
        ),
        agent_version=cluster.agent_version,
        oidc_issuer_enabled=bool(issuer and issuer.enabled),
        oidc_issuer_url=issuer.issuer_url if issuer else None,
        workload_identity_enabled=bool(workload_identity and workload_identity.enabled),
    )


def extension_status(extension: Any) -> ExtensionStatus:
    messages = [_coded(status.code, status.message) for status in extension.statuses or ()]
    if extension.error_info:
        messages.append(_coded(extension.error_info.code, extension.error_info.message))
    return ExtensionStatus(
        name=extension.name or "",
        extension_type=extension.extension_type or "",
        provisioning_state=_text(extension.provisioning_state) or UNKNOWN,
        version=extension.version,
        current_version=extension.current_version,
        release_train=extension.release_train,
        auto_upgrade_minor_version=extension.auto_upgrade_minor_version,
        last_modified_at=_utc(extension.system_data.last_modified_at) if extension.system_data else None,
        messages=tuple(message for message in messages if message),
    )


def flux_configuration_status(configuration: Any) -> FluxConfigurationStatus:
    git = configuration.git_repository
    return FluxConfigurationStatus(
        name=configuration.name or "",
        namespace=configuration.namespace,
        scope=_text(configuration.scope),
        source_kind=_text(configuration.source_kind),
        suspend=bool(configuration.suspend),
        provisioning_state=_text(configuration.provisioning_state) or UNKNOWN,
        compliance_state=_text(configuration.compliance_state) or UNKNOWN,
        error_message=_said(configuration.error_message) or None,  # the API says "" for no error
        source_synced_commit_id=configuration.source_synced_commit_id or None,
        source_updated_at=_utc(configuration.source_updated_at),
        status_updated_at=_utc(configuration.status_updated_at),
        objects=tuple(_flux_object_status(status) for status in configuration.statuses or ()),
        # The 2025-04-01 model has gitRepository.provider; the 2023-05-01 one (Resource Graph rows) does not.
        source_provider=_text(getattr(configuration.git_repository, "provider", None)) if git else None,
    )


def _flux_object_status(status: Any) -> FluxObjectStatus:
    ready = next((c for c in status.status_conditions or () if (c.type or "").lower() == "ready"), None)
    return FluxObjectStatus(
        kind=status.kind or "",
        name=status.name or "",
        namespace=status.namespace,
        compliance_state=_text(status.compliance_state) or UNKNOWN,
        message=_said(ready.message) if ready else None,
        ready_since=_utc(ready.last_transition_time) if ready else None,
    )


# --------------------------------------------------------------------------------------------- small helpers


def _text(value: Any) -> str | None:
    """An SDK enum member as its wire string (`str()` of one gives `ProvisioningState.ACCEPTED`)."""
    return getattr(value, "value", value) or None


def _utc(moment: datetime | None) -> datetime | None:
    """Timestamps are compared with now: a naive one is taken as UTC, as ARM means it."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _coded(code: str | None, message: str | None) -> str:
    return _said(": ".join(part for part in (code, message) if part)) or ""


def _said(message: str | None) -> str | None:
    """A message from Azure or the cluster as fluxfleet passes it on: credentials it quotes masked."""
    return mask_secrets(message) if message else None


def transport_failure(failed: str, error: sdk_errors.AzureError, timeout: float, tries: int) -> AzureError:
    """A failure that is no HTTP answer (a timeout, a broken connection, the SDK's own) as one line that says what
    to do: the Resource Graph reader words its failures as this reader does."""
    if isinstance(error, sdk_errors.ServiceRequestTimeoutError | sdk_errors.ServiceResponseTimeoutError):
        return AzureError(
            f"{failed}: no answer within {timeout:g}s (tried {tries} times); "
            "check the network (proxy, firewall), then run again"
        )
    if isinstance(error, sdk_errors.ServiceRequestError):
        return AzureError(
            f"{failed}: cannot connect to Azure ({first_line(error)}); check the network, proxy and DNS, then run again"
        )
    if isinstance(error, sdk_errors.ServiceResponseError):
        return AzureError(f"{failed}: the connection broke before Azure answered ({first_line(error)}); run again")
    return AzureError(f"{failed}: {type(error).__name__}: {first_line(error)}")


def first_line(error: Any) -> str:
    """The first line of an error or of Azure's message, credentials masked and length bounded: it is quoted in
    reports and journals."""
    text = str(error).strip()
    line = mask_secrets(text.splitlines()[0]) if text else type(error).__name__
    return line if len(line) <= DETAIL_MAX else line[: DETAIL_MAX - 1] + "…"


def error_code(error: sdk_errors.HttpResponseError) -> str:
    return first_line((error.error.code if error.error else None) or error.reason or "error")


def _absent(error: sdk_errors.ResourceNotFoundError) -> None:
    """Returns when a 404 says the resource (or its resource group) does not exist; re-raises it when it says the
    subscription does not: nothing is then known of the resource (a wrong or cancelled subscription, another
    tenant), and `inventory --prune` must not take it for gone."""
    if error.error is not None and (error.error.code or "").lower() == "subscriptionnotfound":
        raise error


def _malformed(call: _Call, error: Exception) -> AzureError:
    detail = str(error) if isinstance(error, _MalformedAnswer) else f"{type(error).__name__}: {first_line(error)}"
    return AzureError(
        f"{call.failed}: Azure's answer does not fit the API ({detail}); run again, and if it persists, "
        "`az rest` on the same URL shows what Azure sends"
    )


def _listed(operations: Any, *path: str, **options: Any) -> Iterator[Any]:
    """Every item of a paged list call, each page checked: a `value` that is no list, or a page link seen before
    (which would have the SDK fetch pages forever), is a malformed answer."""
    pages = operations.list(*path, cls=_value_list, **options).by_page()
    seen: set[str] = set()
    for page in pages:
        yield from page
        link = pages.continuation_token
        if link in seen:
            raise _MalformedAnswer(f"the page link {mask_secrets(str(link))[:DETAIL_MAX]} repeats")
        if link is not None:
            seen.add(link)


def _page_checked(response: Any) -> None:
    """azure-core's `raw_response_hook` on each page of a list call: the page itself must hold a `value` list (a
    TypeSpec client's list call would read a page without one as empty)."""
    http = response.http_response
    if not 200 <= http.status_code < 300:
        return  # the SDK raises for it
    try:
        http.read()  # the hook sees the response before the pipeline has read its body
        page = http.json()
    except ValueError:
        raise _MalformedAnswer("the page is not JSON") from None
    _value_list(page.get("value") if isinstance(page, dict) else None)


def _value_list(items: Any) -> list[Any]:
    """The SDK's `cls` hook of a list call: it is handed the page's `value`."""
    if not isinstance(items, list):
        raise _MalformedAnswer("no `value` list" if items is None else f"`value` is a {type(items).__name__}")
    if any(item is None for item in items):
        raise _MalformedAnswer("a null item in `value`")
    return items


def _jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only to name the identity in a message. ValueError if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not an object")
    return claims


def _subscription(subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id}"


def _provider_id(subscription_id: str, namespace: str) -> str:
    return f"{_subscription(subscription_id)}/providers/{namespace}"


def _cluster_path(cluster: ClusterRef) -> tuple[str, str, str, str]:
    """The path parameters of the kubernetesconfiguration operations, in their order."""
    return cluster.resource_group, cluster.rp, cluster.resource_type, str(cluster.name)


def _cluster_list_call(subscription_id: str, cluster: ClusterRef, collection: str) -> _Call:
    cluster_id = cluster.resource_id(subscription_id)
    return _Call("read", f"{cluster_id}/providers/Microsoft.KubernetesConfiguration/{collection}", cluster_id, READER)
