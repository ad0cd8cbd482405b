"""What the Azure layer hands the rest of fluxfleet: small typed status objects, never SDK models.

`AzureReader` is the narrow interface `preflight` (and later `rollout` and `drift`) read Azure through; `arm.ArmReader`
implements it with the Azure SDKs, and tests swap in fakes. Every failure is an `AzureError` with one line that says
what went wrong and what to do, never a traceback and never a secret value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from modules.cluster_ref import ClusterRef
from modules.spec import KeyVaultRef
from modules.spec.cluster import is_version


class AzureError(Exception):
    """An Azure read that failed: `str(error)` is one line naming the resource and the remedy."""


class AccessDenied(AzureError):
    """401/403: the message names the identity, the scope and the role that is missing."""


def _same(a: str | None, b: str) -> bool:
    return (a or "").lower() == b.lower()  # Azure's state strings vary in case ("registered", "Registered")


@dataclass(frozen=True)
class ProviderState:
    namespace: str
    registration_state: str  # NotRegistered | Registering | Registered | Unregistering

    @property
    def registered(self) -> bool:
        return _same(self.registration_state, "Registered")


@dataclass(frozen=True)
class FeatureState:
    name: str  # Namespace/FeatureName
    state: str  # NotRegistered | Pending | Registering | Registered | ...; any case

    @property
    def registered(self) -> bool:
        return _same(self.state, "Registered")


@dataclass(frozen=True)
class ManagedClusterStatus:
    name: str
    provisioning_state: str
    identity_type: str | None  # SystemAssigned | UserAssigned; None: a service principal cluster
    kubernetes_version: str | None  # what was asked for (may be a minor such as 1.31)
    current_kubernetes_version: str | None  # what runs
    oidc_issuer_enabled: bool
    workload_identity_enabled: bool
    oidc_issuer_url: str | None = None  # the issuer a federated credential for the cluster's workloads names
    pools: tuple[PoolStatus, ...] = ()  # agentPoolProfiles, as an ARM read of the cluster lists them

    @property
    def succeeded(self) -> bool:
        return _same(self.provisioning_state, "Succeeded")


@dataclass(frozen=True)
class PoolStatus:
    name: str
    provisioning_state: str  # Succeeded | Upgrading | Failed | ...
    current_version: str | None = None  # currentOrchestratorVersion


@dataclass(frozen=True)
class UpgradeProfile:
    """What AKS offers one cluster (`managedClusters/upgradeProfiles/default`): the control plane's version and the
    versions it can be upgraded to, in its region, now."""

    current: str | None  # controlPlaneProfile.kubernetesVersion
    upgrades: tuple[str, ...]  # controlPlaneProfile.upgrades[].kubernetesVersion, as listed
    preview: tuple[str, ...] = ()  # of them, those marked isPreview

    def offers(self, version: str) -> bool:
        """Whether `version` (1.36: any patch of it; 1.36.2: that one) is the current version or an upgrade."""
        return any(is_version(offered, version) for offered in (self.current, *self.upgrades))


@dataclass(frozen=True)
class AgentError:
    message: str
    severity: str | None
    component: str | None
    time: datetime | None


@dataclass(frozen=True)
class ConnectedClusterStatus:
    name: str
    provisioning_state: str  # Arc answers Accepted while connecting, not Creating
    connectivity_status: str  # Connecting | Connected | Offline | Expired | AgentNotInstalled
    last_connectivity_time: datetime | None
    kubernetes_version: str | None
    agent_state: str | None  # arcAgentProfile.agentState: Succeeded | Failed | ...
    agent_errors: tuple[AgentError, ...]
    agent_version: str | None = None  # the Arc agents' version (agentVersion)
    oidc_issuer_enabled: bool = False  # oidcIssuerProfile: workload identity federation on Arc
    oidc_issuer_url: str | None = None
    workload_identity_enabled: bool = False  # securityProfile.workloadIdentity

    @property
    def connected(self) -> bool:
        return _same(self.connectivity_status, "Connected")


@dataclass(frozen=True)
class ExtensionStatus:
    name: str
    extension_type: str  # e.g. microsoft.flux (compare case-insensitively)
    provisioning_state: str  # Succeeded | Failed | Canceled | Creating | Updating | Deleting
    version: str | None  # pinned version, None with auto-upgrade
    current_version: str | None  # what is installed
    release_train: str | None
    auto_upgrade_minor_version: bool | None
    last_modified_at: datetime | None  # systemData.lastModifiedAt: how long a Creating has lasted
    messages: tuple[str, ...]  # statuses[].message and errorInfo, for Failed

    @property
    def succeeded(self) -> bool:
        return _same(self.provisioning_state, "Succeeded")


_MESSAGE_REVISION = re.compile(r"\brevision:?\s+'?([^\s']+)", re.IGNORECASE)


def _revision(text: str | None) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    ref, separator, digest = text.rpartition("@") if "@" in text else text.rpartition("/")
    digest = digest.split(":", 1)[-1]  # sha1:abc, sha256:abc
    return (ref or None) if separator else None, digest or None


@dataclass(frozen=True)
class FluxObjectStatus:
    """One Flux object on the cluster (GitRepository, Kustomization, HelmRelease...) as the configuration reports it."""

    kind: str
    name: str
    namespace: str | None
    compliance_state: str  # Compliant | Non-Compliant | Pending | Suspended | Unknown
    message: str | None  # the Ready condition's message when the API gives it (the list call often does not)
    ready_since: datetime | None = None  # the Ready condition's lastTransitionTime: when its message last changed

    @property
    def revision(self) -> str | None:
        """The revision the Ready message names: what a source stored ("stored artifact for revision
        'main@sha1:...'", "Fetched revision: master/...") or a Kustomization applied ("Applied revision: ...")."""
        match = _MESSAGE_REVISION.search(self.message or "")
        return match.group(1) if match else None


def same_revision(a: str, b: str) -> bool:
    """Whether two revisions name one commit, whatever their format (`main/<sha>`, `main@sha1:<sha>`, a short sha)."""
    first, second = _revision(a)[1] or "", _revision(b)[1] or ""
    return bool(first and second) and (first.startswith(second) or second.startswith(first))


@dataclass(frozen=True)
class FluxConfigurationStatus:
    name: str
    namespace: str | None
    scope: str | None
    source_kind: str | None
    suspend: bool
    provisioning_state: str
    compliance_state: str  # Compliant | Non-Compliant | Pending | Suspended | Unknown
    error_message: str | None  # None when the API says "" or nothing
    source_synced_commit_id: str | None  # as the API says it: "main/<sha>" for git, a bare sha for buckets
    source_updated_at: datetime | None
    status_updated_at: datetime | None
    objects: tuple[FluxObjectStatus, ...]
    # gitRepository.provider (Azure, GitHub, Generic) where the read carries it: ARM's at API 2025-04-01 does,
    # Resource Graph's rows do not (None: not said).
    source_provider: str | None = None

    @property
    def synced_sha(self) -> str | None:
        """The commit (or artifact digest) alone, from either revision format Flux has used: `main/0ba6f0d...`
        (what the Azure examples show), `main@sha1:0ba6f0d...` (Flux 2.x), or a bare digest."""
        return _revision(self.source_synced_commit_id)[1]

    @property
    def synced_ref(self) -> str | None:
        """The branch or tag part of `sourceSyncedCommitId` (`main` of `main/0ba6f0d...`), if any."""
        return _revision(self.source_synced_commit_id)[0]

    @property
    def compliant(self) -> bool:
        return _same(self.compliance_state, "Compliant")

    @property
    def source_object(self) -> FluxObjectStatus | None:
        """The configuration's source on the cluster (a GitRepository, OCIRepository, Bucket...: Azure names it as the
        configuration), else the first source reported."""
        sources = [item for item in self.objects if item.kind in SOURCE_KINDS]
        return next((item for item in sources if item.name == self.name), sources[0] if sources else None)


SOURCE_KINDS = ("GitRepository", "OCIRepository", "Bucket", "AzureBlob")  # the source kinds of the 2025-04-01 API


@dataclass(frozen=True)
class SecretMetadata:
    """What preflight and drift may know about a Key Vault secret: never its value."""

    vault_url: str
    name: str
    version: str  # the version a read without a version gets: the current one
    enabled: bool
    updated: datetime | None
    expires: datetime | None


class AzureReader(Protocol):
    """Every Azure read the command line makes. Not-found clusters are None; everything else fails as AzureError."""

    def signed_in_identity(self) -> str:
        """Who the credential signs in as (a user, an application); AzureError when it can get no token."""
        ...

    def provider(self, subscription_id: str, namespace: str) -> ProviderState: ...

    def register_provider(self, subscription_id: str, namespace: str, timeout: float) -> ProviderState:
        """Register, then poll until Registered or `timeout` seconds (AzureError on timeout)."""
        ...

    def feature(self, subscription_id: str, feature: str) -> FeatureState: ...

    def resource_group_exists(self, subscription_id: str, name: str) -> bool: ...

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus | None: ...

    def connected_cluster(
        self, subscription_id: str, resource_group: str, name: str
    ) -> ConnectedClusterStatus | None: ...

    def upgrade_profile(self, subscription_id: str, resource_group: str, name: str) -> UpgradeProfile | None:
        """The AKS cluster's upgrade profile; None when the cluster is not found."""
        ...

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        """All extensions of the cluster, one list call."""
        ...

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[FluxConfigurationStatus]:
        """All Flux configurations of the cluster, one list call."""
        ...

    def source_control_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[str]:
        """Names of Flux v1 `sourceControlConfigurations` on the cluster (they cannot coexist with Flux v2)."""
        ...

    def secret_metadata(self, ref: KeyVaultRef) -> SecretMetadata:
        """Reads the secret as the program will (so the identity's access is proven) and keeps only metadata."""
        ...
