"""A stack's `fluxfleet:` config: the models, the field formats and the rules that span fields."""

from __future__ import annotations

import difflib
import graphlib
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from modules.spec.credentials import credential_kind, is_credential_key, is_reference
from modules.spec.errors import (
    KEY_PART_MAX,
    NAMESPACE,
    Loc,
    SpecError,
    SpecIssue,
    bounded,
    is_pulumi_secure,
    key_path,
    listed,
    shown,
)
from modules.clouds import CLOUDS, DEFAULT_CLOUD, ENVIRONMENTS, CloudName
from modules.flux_extension_versions import pin_problem as extension_pin_problem
from modules.spec.fields import (
    DNS_SUBDOMAIN,
    GUID,
    LINE_MAX,
    Cidr,
    DnsLabel,
    Duration,
    Guid,
    IsoDuration,
    KnownHosts,
    Line,
    Location,
    MaybeEmptyLine,
    MaybeEmptyText,
    SpecModel,
    Text,
    dns_label_problem,
    location_problem,
    pattern,
    secret_value_problem,
)
from modules.spec.extension import EXTENSION_SETTINGS, ExtensionSpec
from modules.spec.files import check_expansion
from modules.spec.secrets import ConfigSecret, KeyVaultRef, PLAINTEXT_SECRET, SecretField, SecretSource
from modules.spec.origins import Origins


REQUIRED_PROVIDERS = ("Microsoft.Kubernetes", "Microsoft.ContainerService", "Microsoft.KubernetesConfiguration")
API_DEFAULT_INTERVAL = 600  # seconds: the sync interval and timeout the Flux configuration API applies by default
FLUX_API_AZURE_NATIVE = "2023-05-01"  # the fluxConfigurations API pulumi-azure-native 3.x sends
FLUX_API_LATEST = "2025-04-01"  # the one modules/flux_configuration_v2025.py sends (OCI sources, git providers)
FLUX_OBJECT_NAME_MAX = 63  # a Kubernetes object name; Flux names kustomizations `<configuration>-<kustomization>`


# --------------------------------------------------------------------------------------------- models


# Node pools: Kubernetes label and taint syntax (a key is an optional DNS-subdomain prefix of at most 253 characters
# and `/`, then a name of 1-63 letters, digits, '-', '_', '.' that starts and ends with a letter or digit).
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_AKS_LABEL_PREFIX = "kubernetes.azure.com"  # AKS sets these labels itself and refuses them in a pool's nodeLabels
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_SUBNET_ID = re.compile(
    rf"/subscriptions/{GUID.pattern}/resourceGroups/[-\w.()]{{1,90}}/providers/Microsoft\.Network"
    r"/virtualNetworks/[-\w.]{2,64}/subnets/[-\w.]{1,80}",
    re.IGNORECASE | re.ASCII,
)
_MAX_SURGE = re.compile(r"([1-9][0-9]{0,3})(%?)")
WINDOWS_POOL_NAME_MAX = 6  # AKS names a Windows node after its pool, and a Windows computer name is short
LINUX_OS_SKUS = ("Ubuntu", "Ubuntu2204", "AzureLinux", "AzureLinux3")
WINDOWS_OS_SKUS = ("Windows2019", "Windows2022")


def _label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"{shown(key)}: the prefix before '/' is not a DNS subdomain (lower case, at most 253 characters)"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            f"{shown(key)} is not a Kubernetes label key ([prefix/]name, the name 1-63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit)"
        )
    return None


def _node_label_key(key: str) -> str:
    if problem := _label_key_problem(key):
        raise ValueError(problem)
    if key.rpartition("/")[0] == _AKS_LABEL_PREFIX:
        raise ValueError(f"{shown(key)}: the {_AKS_LABEL_PREFIX}/ prefix is reserved for the labels AKS sets")
    return key


def _label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return (
            f"{shown(value)} is not a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit; or empty)"
        )
    return None


def _node_label_value(value: str) -> str:
    if problem := _label_value_problem(value):
        raise ValueError(problem)
    return value


def _node_taint(value: str) -> str:
    key, equals, rest = value.partition("=")
    taint_value, colon, effect = rest.rpartition(":")
    if not equals or not colon:
        raise ValueError(f"{shown(value)} is not a taint: write key=value:Effect (such as dedicated=gpu:NoSchedule)")
    if problem := _label_key_problem(key) or _label_value_problem(taint_value):
        raise ValueError(f"taint {shown(value)}: {problem}")
    if effect not in TAINT_EFFECTS:
        raise ValueError(f"taint {shown(value)}: the effect must be one of {', '.join(TAINT_EFFECTS)}")
    return value


def _subnet_id(value: str) -> str:
    if not _SUBNET_ID.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a subnet resource id (/subscriptions/SUBSCRIPTION/resourceGroups/GROUP/providers/"
            "Microsoft.Network/virtualNetworks/VNET/subnets/SUBNET)"
        )
    return value


def _max_surge(value: Any) -> str:
    """`upgradeSettings.maxSurge` as ARM takes it (a string): a node count (5, "5") or a percentage ("33%")."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _MAX_SURGE.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match[2] and int(match[1]) > 100):
        raise ValueError(f"{shown(value)} is not a surge: a number of nodes (1 or more) or a percentage such as 33%")
    return text


NodeLabelKey = Annotated[str, AfterValidator(_node_label_key)]
NodeLabelValue = Annotated[str, AfterValidator(_node_label_value)]
NodeTaint = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_node_taint)]
SubnetId = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_subnet_id)]
MaxSurge = Annotated[str, PlainValidator(_max_surge)]


class NodePool(SpecModel):
    """One AKS node pool. The first System pool is created with the cluster (AKS needs one at creation) and the
    cluster owns it; every other pool is an AgentPool resource of its own (modules/aks_cluster.py)."""

    name: Annotated[str, pattern(r"[a-z][a-z0-9]{0,11}", "an AKS node pool name (a-z then a-z0-9, 1-12 characters)")]
    vm_size: Line
    count: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_count: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_count: Annotated[int, Field(ge=1, le=1000)] | None = None
    mode: Literal["System", "User"] = "User"
    zones: list[Literal["1", "2", "3"]] | None = None
    os_type: Literal["Linux", "Windows"] = "Linux"
    os_sku: Annotated[Literal[LINUX_OS_SKUS + WINDOWS_OS_SKUS] | None, Field(alias="osSKU")] = None  # type: ignore[valid-type]
    max_pods: Annotated[int, Field(ge=10, le=250)] | None = None
    node_labels: dict[NodeLabelKey, NodeLabelValue] | None = None
    node_taints: list[NodeTaint] | None = None
    vnet_subnet_id: SubnetId | None = None
    max_surge: MaxSurge | None = None  # upgradeSettings.maxSurge

    @property
    def autoscaled(self) -> bool:
        return self.min_count is not None


class ClusterSpec(SpecModel):
    kind: Literal["aks", "arc"]
    name: Annotated[
        str,
        pattern(r"[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?", "a cluster name (1-63 letters, digits, '-', '_')"),
    ]
    resource_group: Annotated[
        str, pattern(r"[-\w.()]{0,89}[-\w()]", "a resource group name (1-90 characters, not ending in '.')")
    ]
    location: Location | None = None
    subscription_id: Guid | None = None
    cloud: CloudName = DEFAULT_CLOUD  # as `az cloud list` names it; azure-native:environment must say the same
    # AKS only:
    kubernetes_version: Annotated[str, pattern(r"\d+\.\d+(\.\d+)?", "a Kubernetes version such as 1.35")] | None = None
    node_pools: list[NodePool] | None = None
    dns_prefix: (
        Annotated[
            str, pattern(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,52}[a-zA-Z0-9])?", "a DNS prefix (1-54 letters, digits, '-')")
        ]
        | None
    ) = None
    aad_admin_group_object_ids: list[Guid] | None = None
    network_plugin: Literal["azure", "kubenet", "none"] | None = None
    network_policy: Literal["azure", "calico", "cilium"] | None = None
    auto_upgrade_channel: Literal["none", "patch", "stable", "rapid", "node-image"] | None = None
    authorized_ip_ranges: list[Cidr] | None = None
    private_cluster: bool | None = None
    tags: dict[Line, MaybeEmptyLine] | None = None
    disable_local_accounts: bool | None = None
    protect: bool = True  # a cluster is never deleted or replaced by accident

    @property
    def is_aks(self) -> bool:
        return self.kind == "aks"


class _Reconciled(SpecModel):
    """A Flux object synced on an interval, with a timeout."""

    sync_interval: Duration | None = None
    timeout: Duration | None = None

    @property
    def effective_timeout(self) -> int | None:
        """The timeout to send: the one set, else a sync interval shorter than the API's default timeout (the
        default would let one attempt run past the next sync)."""
        if self.timeout is None and self.sync_interval is not None and self.sync_interval < API_DEFAULT_INTERVAL:
            return self.sync_interval
        return self.timeout

    def timeout_issue(self) -> str | None:
        interval = self.sync_interval or API_DEFAULT_INTERVAL
        if self.timeout and self.timeout > interval:
            default = "" if self.sync_interval else f" ({API_DEFAULT_INTERVAL}s unless set)"
            return f"timeout is longer than syncInterval{default}"
        return None


GIT_REF_KEYS = ("branch", "tag", "semver", "commit")  # the keys a git source's ref is written with
OCI_REF_KEYS = ("tag", "semver", "digest")  # and an OCI source's
# The sources a ref can be pinned (a stage pin) or returned to (a rollback) on, with the keys of their ref.
REF_KEYS = {"git": GIT_REF_KEYS, "oci": OCI_REF_KEYS}
GitHubAppNumber = Annotated[int, Field(ge=1)]  # a GitHub App's ID, an installation's ID


class GitSource(_Reconciled):
    url: Line
    branch: Line | None = None
    tag: Line | None = None
    semver: Line | None = None
    commit: Annotated[str, pattern(r"[0-9a-f]{7,40}", "a commit SHA (7-40 hex characters)")] | None = None
    https_user: Line | None = None
    https_key: SecretField | None = None
    ssh_private_key: SecretField | None = None
    ssh_known_hosts: KnownHosts | None = None
    https_ca_cert: Text | None = Field(default=None, alias="httpsCACert")
    provider: Literal["Generic", "Azure", "GitHub"] | None = None
    # A GitHub App (provider: GitHub). The 2025-04-01 API has no body fields for it: the program sends the three as
    # protected settings, under the keys Flux's GitHub App secret takes, which are also their names here.
    github_app_id: GitHubAppNumber | None = Field(default=None, alias="githubAppID")
    github_app_installation_id: GitHubAppNumber | None = Field(default=None, alias="githubAppInstallationID")
    github_app_private_key: SecretField | None = Field(default=None, alias="githubAppPrivateKey")

    @property
    def is_ssh(self) -> bool:
        return self.url.startswith(("ssh://", "git@"))

    @property
    def ref_keys(self) -> dict[str, str]:
        """The ref as the keys it is written with (`{"tag": "v1.0.0"}`, `{"commit": ..., "branch": ...}`)."""
        return {key: value for key in GIT_REF_KEYS if (value := getattr(self, key))}

    @property
    def ref(self) -> str | None:
        """What the source tracks, as people say it: `tag v1.0.0`, `commit 0ba6f0d`, `semver >=1.0`, `branch main`."""
        for what in ("commit", "tag", "semver", "branch"):
            if value := getattr(self, what):
                return f"{what} {value}"
        return None


class BucketSource(_Reconciled):
    url: Line
    bucket_name: Line
    access_key: Line | None = None
    secret_key: SecretField | None = None
    insecure: bool = False  # the API's default is true; fluxfleet's is TLS


class ManagedIdentity(SpecModel):
    client_id: Guid


class AzureBlobSource(_Reconciled):
    url: Line
    container_name: Line
    account_key: SecretField | None = None
    sas_token: SecretField | None = None
    managed_identity: ManagedIdentity | None = None


OCI_DIGEST = r"sha256:[0-9a-f]{64}"
# A key of a Kubernetes Secret's data (the verification keys become one): letters, digits, '-', '_' and '.'.
SecretDataKey = Annotated[
    str, pattern(r"[-._a-zA-Z0-9]{1,253}", "a key name (1-253 letters, digits, '-', '_' or '.', such as cosign.pub)")
]


class MatchOidcIdentity(SpecModel):
    """Who may have signed an artifact (cosign keyless): regular expressions over the signing certificate's OIDC
    issuer and subject."""

    issuer: Line
    subject: Line


class OciVerify(SpecModel):
    provider: Literal["cosign", "notation"]
    verification_config: dict[SecretDataKey, SecretField] = {}  # trusted public keys or certificates, by file name
    match_oidc_identity: list[MatchOidcIdentity] = []


class OciTlsConfig(SpecModel):
    client_certificate: SecretField | None = None
    private_key: SecretField | None = None
    ca_certificate: SecretField | None = None


class OciSource(_Reconciled):
    """An OCI artifact (`ociRepository` of the 2025-04-01 API)."""

    url: Line
    tag: Line | None = None
    semver: Line | None = None
    digest: Annotated[str, pattern(OCI_DIGEST, "an artifact digest (sha256: and 64 lower-case hex)")] | None = None
    insecure: bool = False  # plain HTTP to the registry; a policy violation (flux-oci-verified)
    use_workload_identity: bool = False
    service_account_name: Annotated[str, pattern(DNS_SUBDOMAIN.pattern, "a Kubernetes object name")] | None = None
    verify: OciVerify | None = None
    tls_config: OciTlsConfig | None = None

    @property
    def ref_keys(self) -> dict[str, str]:
        """The ref as the keys it is written with (`{"tag": "v1.0.0"}`, `{"digest": "sha256:..."}`)."""
        return {key: value for key in OCI_REF_KEYS if (value := getattr(self, key))}

    @property
    def ref(self) -> str | None:
        """What the source tracks: `digest sha256:...`, `semver >=1.0`, `tag v1.0.0`."""
        for what in ("digest", "semver", "tag"):
            if value := getattr(self, what):
                return f"{what} {value}"
        return None


class SubstituteFrom(SpecModel):
    kind: Literal["ConfigMap", "Secret"]
    name: Annotated[str, pattern(DNS_SUBDOMAIN.pattern, "a Kubernetes object name")]
    optional: bool = False


class PostBuild(SpecModel):
    substitute: dict[Annotated[str, pattern(r"[_a-zA-Z][_a-zA-Z0-9]*", "a variable name")], MaybeEmptyText] = {}
    substitute_from: list[SubstituteFrom] = []


class KustomizationSpec(_Reconciled):
    path: Line | None = None
    depends_on: list[Line] = []
    prune: bool | None = None
    force: bool | None = None
    wait: bool | None = None
    retry_interval: Duration | None = None
    post_build: PostBuild | None = None


class ConfigurationSpec(SpecModel):
    namespace: DnsLabel = "flux-system"
    scope: Literal["cluster", "namespace"] = "cluster"
    suspend: bool = False
    wait_for_reconciliation: bool | None = None
    reconciliation_wait_duration: IsoDuration | None = None
    git: GitSource | None = None
    bucket: BucketSource | None = None
    azure_blob: AzureBlobSource | None = None
    oci: OciSource | None = None
    kustomizations: dict[str, KustomizationSpec]
    # Take over the live Flux configuration of this name on the cluster (one the azure-native resource created) when
    # the configuration moves to the 2025-04-01 resource; without it that resource refuses to (README: Migrating).
    adopt_live_configuration: bool = False

    @property
    def source_kind(self) -> Literal["GitRepository", "Bucket", "AzureBlob", "OCIRepository"]:
        if self.git:
            return "GitRepository"
        return "Bucket" if self.bucket else "AzureBlob" if self.azure_blob else "OCIRepository"

    @property
    def newer_api_needs(self) -> list[str]:
        """What this configuration uses that the Flux configuration API pulumi-azure-native sends (2023-05-01) cannot
        express; empty when it can."""
        needs = ["an oci source"] if self.oci else []
        if self.git and self.git.provider in ("Azure", "GitHub"):
            needs.append(f"git provider {self.git.provider}")
        return needs

    @property
    def flux_api(self) -> str:
        """The Flux configuration API the program declares this configuration at: 2023-05-01 through azure-native's
        resource while that API can express it, else 2025-04-01 through fluxfleet's own."""
        return FLUX_API_LATEST if self.newer_api_needs else FLUX_API_AZURE_NATIVE

    def kustomization_order(self) -> list[str]:
        """Kustomization names, each after the ones it depends on (validated acyclic)."""
        sorter = graphlib.TopologicalSorter({name: k.depends_on for name, k in sorted(self.kustomizations.items())})
        return list(sorter.static_order())


class FluxSpec(SpecModel):
    extension: ExtensionSpec = ExtensionSpec()
    configurations: dict[str, ConfigurationSpec] = {}


ProviderNamespace = Annotated[
    str,
    pattern(r"[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+", "a resource provider namespace such as Microsoft.Kubernetes"),
]
FeatureName = Annotated[
    str, pattern(r"[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+/[A-Za-z0-9][A-Za-z0-9._-]*", "Namespace/FeatureName")
]


class StackSpec(SpecModel):
    cluster: ClusterSpec
    providers: list[ProviderNamespace] = list(REQUIRED_PROVIDERS)
    features: list[FeatureName] = []
    flux: FluxSpec = FluxSpec()

    def source_refs(self) -> dict[str, dict[str, str]]:
        """Each Flux configuration's ref (git or OCI), as its keys: what `pulumi up` exports, and what a rollback
        returns to."""
        refs = {}
        for name, configuration in sorted(self.flux.configurations.items()):
            for kind in REF_KEYS:
                if (source := getattr(configuration, kind)) is not None:
                    refs[name] = source.ref_keys
        return refs

    def with_source_refs(self, refs: Mapping[str, Mapping[str, str]]) -> StackSpec:
        """The spec with these configurations' refs in place of their own (what a rollback applies)."""
        configurations = dict(self.flux.configurations)
        for name, ref in refs.items():
            [(kind, source)] = [(k, s) for k in REF_KEYS if (s := getattr(configurations[name], k)) is not None]
            changed = source.model_copy(update={key: ref.get(key) for key in REF_KEYS[kind]})
            configurations[name] = configurations[name].model_copy(update={kind: changed})
        return self.model_copy(update={"flux": self.flux.model_copy(update={"configurations": configurations})})


@dataclass(frozen=True)
class Stack:
    """A validated stack: its name, its stack file, its spec, the profiles it uses (in merge order) and which file
    wrote each value of its config (`origins`; everything is the stack file's when it uses no profile)."""

    name: str
    file: str
    spec: StackSpec
    profiles: tuple[str, ...] = ()
    origins: Origins | None = None

    def file_of(self, loc: Loc) -> str:
        """The file that wrote the config value at `loc` (keys without the namespace)."""
        return self.origins.file_of(loc) if self.origins else self.file


# --------------------------------------------------------------------------------------------- cross-field rules


@dataclass(frozen=True)
class Partner:
    """A rule's finding that a value set at `present` needs the one it is yielded at, which is missing: the two may be
    written in two files (Origins.missing_partner says which and where the missing one goes)."""

    present: Loc
    rule: str  # "httpsUser and httpsKey go together"


Finding = tuple[Loc, "str | Partner"]  # where a rule found a problem, and what it is


def _semantic_issues(spec: StackSpec) -> Iterator[Finding]:
    yield from _cluster_issues(spec.cluster)
    yield from _list_issues(("providers",), spec.providers)
    missing = [p for p in REQUIRED_PROVIDERS if p not in spec.providers]
    if missing:
        yield ("providers",), f"Flux on Azure needs {', '.join(missing)} registered too"
    yield from _list_issues(("features",), spec.features)
    extension = spec.flux.extension
    if extension.version and extension.auto_upgrade_minor_version:
        yield ("flux", "extension", "version"), "a pinned version needs autoUpgradeMinorVersion: false"
    if extension.version and (problem := extension_pin_problem(extension.version)):
        yield ("flux", "extension", "version"), problem
    yield from _controllers_issues(extension, has_configurations=bool(spec.flux.configurations))
    for name, configuration in spec.flux.configurations.items():
        yield from _configuration_issues(("flux", "configurations", name), name, configuration)
    yield from _flux_object_collisions(spec.flux.configurations)
    yield from _source_identity_issues(spec)


WORKLOAD_IDENTITY_SETTINGS = ("workloadIdentity.enable", "workloadIdentity.azureClientId")


def extension_workload_identity(extension: ExtensionSpec) -> str | None:
    """The client ID of the managed identity the Flux extension's controllers run as (workload identity), or None when
    the extension's settings do not turn it on: typed (controllers.workloadIdentity) or free-form."""
    settings = extension.configuration_settings
    enable, client_id = (settings.get(key) for key in WORKLOAD_IDENTITY_SETTINGS)
    return client_id if str(enable).lower() == "true" and client_id else None


def identity_sources(spec: StackSpec) -> list[tuple[str, Loc]]:
    """The configurations whose source authenticates as the Flux extension's workload identity (git provider Azure, an
    oci source with useWorkloadIdentity), with the key that says so."""
    found = []
    for name, configuration in spec.flux.configurations.items():
        loc: Loc = ("flux", "configurations", name)
        if configuration.git is not None and configuration.git.provider == "Azure":
            found.append((name, (*loc, "git", "provider")))
        elif configuration.oci is not None and configuration.oci.use_workload_identity:
            found.append((name, (*loc, "oci", "useWorkloadIdentity")))
    return found


def _source_identity_issues(spec: StackSpec) -> Iterator[tuple[Loc, str]]:
    """A source that authenticates as the extension's workload identity needs it on. (An AKS cluster's OIDC issuer and
    workload identity the program always turns on; an Arc cluster's, preflight reads.)"""
    if extension_workload_identity(spec.flux.extension) is not None:
        return
    message = (
        "authenticates as the Flux extension's workload identity, which is off: set "
        "flux.extension.controllers.workloadIdentity {enable: true, azureClientId: CLIENT_ID} "
        "(the managed identity with the federated credential `fluxfleet preflight` prints)"
    )
    for _, loc in identity_sources(spec):
        yield loc, message


def _controllers_issues(extension: ExtensionSpec, *, has_configurations: bool) -> Iterator[Finding]:
    """The typed controller settings against the free-form ones and against each other."""
    controllers = extension.controllers
    for setting in EXTENSION_SETTINGS:
        if setting.value_in(controllers) is not None and setting.key in extension.settings:
            elsewhere = key_path(("flux", "extension", "settings", setting.key))
            yield setting.loc, f"{setting.key} is set twice, here and as {elsewhere}: keep this one, remove the other"
    here = ("flux", "extension", "controllers")
    identity = controllers.workload_identity
    if identity.enable and identity.azure_client_id is None:
        needed = "the client ID of the managed identity that holds the federated credentials"
        rule = f"required with enable: true: {needed}"
        yield (*here, "workloadIdentity", "azureClientId"), Partner((*here, "workloadIdentity", "enable"), rule)
    if identity.azure_client_id is not None and not identity.enable:
        yield (*here, "workloadIdentity", "azureClientId"), "the extension reads it only with enable: true"
    kustomize = controllers.kustomize
    if kustomize.enabled is False:
        for field in ("concurrent", "requeue_dependency"):
            if getattr(kustomize, field) is not None:
                yield (*here, "kustomize", to_camel(field)), "the kustomize controller is off (enabled: false)"
    if has_configurations:
        for name, does in (("source", "fetches their sources"), ("kustomize", "applies their kustomizations")):
            if getattr(controllers, name).enabled is False:
                yield (*here, name, "enabled"), f"the Flux configurations need the {name} controller: it {does}"
    if controllers.image_automation.enabled and not controllers.image_reflector.enabled:
        why = "image automation acts on the reflector's image policies"
        yield (*here, "imageAutomation", "enabled"), f"needs imageReflector.enabled: true ({why})"


def _flux_object_collisions(configurations: Mapping[str, ConfigurationSpec]) -> Iterator[tuple[Loc, str]]:
    """Two kustomizations that Flux would create under one name in one namespace (`a-b` + `c` and `a` + `b-c` are
    both `a-b-c`): the second would overwrite the first on the cluster."""
    first: dict[tuple[str, str], tuple[str, str]] = {}
    for name, configuration in configurations.items():
        for kustomization in configuration.kustomizations:
            key = (configuration.namespace, f"{name}-{kustomization}")
            if key in first:
                other = "kustomization {1} of configuration {0}".format(*first[key])
                message = f"Flux names it {key[1]!r} in namespace {key[0]}, as it names {other}: rename one"
                yield ("flux", "configurations", name, "kustomizations", kustomization), message
            else:
                first[key] = (name, kustomization)


def _list_issues(loc: Loc, values: Sequence[str]) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield (*loc, index), f"duplicate {shown(value)}"
        seen.add(value)


_AKS_ONLY = (
    "kubernetes_version",
    "node_pools",
    "dns_prefix",
    "aad_admin_group_object_ids",
    "network_plugin",
    "network_policy",
    "auto_upgrade_channel",
    "authorized_ip_ranges",
    "private_cluster",
    "tags",
    "disable_local_accounts",
)


def _cluster_issues(cluster: ClusterSpec) -> Iterator[tuple[Loc, str]]:
    base: Loc = ("cluster",)
    if not cluster.is_aks:
        for field in _AKS_ONLY:
            if getattr(cluster, field) is not None:
                yield (*base, to_camel(field)), "only for kind 'aks': an Arc cluster is adopted as it is"
        return
    if cluster.location is None:
        yield (*base, "location"), "an AKS cluster needs a location: set it here or in azure-native:location"
    if cluster.network_policy == "cilium" and cluster.network_plugin not in (None, "azure"):
        yield (*base, "networkPolicy"), "cilium needs networkPlugin: azure"
    if cluster.private_cluster and cluster.authorized_ip_ranges:
        yield (*base, "authorizedIpRanges"), "a private cluster has no public API server to restrict: drop one"
    if not cluster.node_pools:
        yield (*base, "nodePools"), "an AKS cluster needs at least one node pool"
        return
    if not any(pool.mode == "System" for pool in cluster.node_pools):
        yield (*base, "nodePools"), "at least one node pool needs mode: System"
    seen: set[str] = set()
    for index, pool in enumerate(cluster.node_pools):
        loc = (*base, "nodePools", index)
        if pool.name in seen:
            yield (*loc, "name"), f"duplicate node pool name {shown(pool.name)}"
        seen.add(pool.name)
        if pool.count is not None and (pool.min_count is not None or pool.max_count is not None):
            yield loc, "set either count or minCount/maxCount (autoscaling), not both"
        elif pool.count is None and (pool.min_count is None or pool.max_count is None):
            yield loc, "set count, or both minCount and maxCount for autoscaling"
        elif pool.autoscaled and pool.min_count > pool.max_count:  # type: ignore[operator]
            yield (*loc, "minCount"), f"minCount {pool.min_count} is greater than maxCount {pool.max_count}"
        if pool.mode == "System" and ((pool.count == 0) or pool.min_count == 0):
            yield loc, "a System node pool needs at least one node"
        yield from _node_pool_os_issues(loc, pool, cluster)
        yield from _list_issues((*loc, "nodeTaints"), pool.node_taints or [])


def _node_pool_os_issues(loc: Loc, pool: NodePool, cluster: ClusterSpec) -> Iterator[tuple[Loc, str]]:
    """Windows pools as AKS takes them: Windows SKUs on Windows pools only, short names, never the System pool."""
    if pool.os_sku in WINDOWS_OS_SKUS and pool.os_type != "Windows":
        yield (*loc, "osSKU"), f"{pool.os_sku} is a Windows SKU: it needs osType: Windows"
    if pool.os_sku in LINUX_OS_SKUS and pool.os_type == "Windows":
        yield (*loc, "osSKU"), f"{pool.os_sku} is a Linux SKU: a Windows pool takes {' or '.join(WINDOWS_OS_SKUS)}"
    if pool.os_type != "Windows":
        return
    if pool.mode == "System":
        yield (*loc, "osType"), "a System node pool runs Linux (AKS runs its system pods there): add a User pool"
    if len(pool.name) > WINDOWS_POOL_NAME_MAX:
        yield (*loc, "name"), f"a Windows node pool name has at most {WINDOWS_POOL_NAME_MAX} characters"
    if cluster.network_plugin not in (None, "azure"):
        yield (*loc, "osType"), f"a Windows node pool needs networkPlugin: azure, not {cluster.network_plugin}"


def _configuration_issues(loc: Loc, name: str, configuration: ConfigurationSpec) -> Iterator[Finding]:
    if problem := dns_label_problem(name):
        yield loc, f"configuration name {problem}"
    sources = [key for key in ("git", "bucket", "azure_blob", "oci") if getattr(configuration, key) is not None]
    if len(sources) != 1:
        found = ", ".join(to_camel(s) for s in sources) or "none"
        yield loc, f"set exactly one source: git, bucket, azureBlob or oci (found: {found})"
    if configuration.reconciliation_wait_duration and not configuration.wait_for_reconciliation:
        yield (*loc, "reconciliationWaitDuration"), "only with waitForReconciliation: true"
    if configuration.adopt_live_configuration and not configuration.newer_api_needs:
        message = (
            f"only for a configuration on the {FLUX_API_LATEST} resource (an oci source, git provider Azure or "
            f"GitHub): this one stays on azure-native's ({FLUX_API_AZURE_NATIVE}), which never takes over a live one"
        )
        yield (*loc, "adoptLiveConfiguration"), message
    if configuration.git:
        yield from _git_issues((*loc, "git"), configuration.git)
    if configuration.bucket:
        yield from _bucket_issues((*loc, "bucket"), configuration.bucket)
    if configuration.azure_blob:
        yield from _blob_issues((*loc, "azureBlob"), configuration.azure_blob)
    if configuration.oci:
        yield from _oci_issues((*loc, "oci"), configuration.oci)
    for key in sources:
        if problem := getattr(configuration, key).timeout_issue():
            yield (*loc, to_camel(key), "timeout"), problem
    yield from _kustomization_issues((*loc, "kustomizations"), name, configuration.kustomizations)


def _git_issues(loc: Loc, git: GitSource) -> Iterator[Finding]:
    url_problem = git_url_problem(git.url)
    if url_problem:
        yield (*loc, "url"), url_problem
    refs = [key for key in ("branch", "tag", "semver", "commit") if getattr(git, key) is not None]
    if git.commit is not None:
        if refs != ["branch", "commit"]:
            yield loc, "a commit is pinned together with its branch and nothing else (branch + commit)"
    elif len(refs) != 1:
        yield loc, f"set exactly one of branch, tag, semver or commit (found: {', '.join(refs) or 'none'})"
    if git.is_ssh:
        for key in ("https_user", "https_key", "https_ca_cert"):
            if getattr(git, key) is not None:
                yield (*loc, "httpsCACert" if key == "https_ca_cert" else to_camel(key)), "only with an https:// URL"
    else:
        for key in ("ssh_private_key", "ssh_known_hosts"):
            if getattr(git, key) is not None:
                yield (*loc, to_camel(key)), "only with an ssh:// or git@ URL"
        if (git.https_user is None) != (git.https_key is None):
            present, missing = ("httpsUser", "httpsKey") if git.https_key is None else ("httpsKey", "httpsUser")
            yield (*loc, missing), Partner((*loc, present), "httpsUser and httpsKey go together")
    yield from _git_provider_issues(loc, git)


# Azure DevOps, the only git host `provider: Azure` authenticates to (workload identity): the 2025-04-01 API's words.
AZURE_DEVOPS_HOST = re.compile(r"(dev\.azure\.com|[a-z0-9-]+\.visualstudio\.com)", re.IGNORECASE)
# A GitHub App's fields and their keys (in the stack file and in the protected settings the program sends).
GITHUB_APP_KEYS = {
    "github_app_id": "githubAppID",
    "github_app_installation_id": "githubAppInstallationID",
    "github_app_private_key": "githubAppPrivateKey",
}


def _git_provider_issues(loc: Loc, git: GitSource) -> Iterator[Finding]:
    """`provider: Azure` authenticates as the Flux extension's workload identity, `provider: GitHub` as a GitHub App:
    neither goes with a key of its own (httpsKey, sshPrivateKey), and the App's keys go with GitHub only."""
    app = {key: getattr(git, key) for key in GITHUB_APP_KEYS}
    app_keys = [GITHUB_APP_KEYS[key] for key, value in app.items() if value is not None]
    if git.provider in ("Azure", "GitHub"):
        if not git.url.startswith("https://"):
            yield (*loc, "url"), f"provider {git.provider} fetches over https://: use the repository's https:// URL"
        for key in ("https_user", "https_key", "ssh_private_key", "ssh_known_hosts"):
            if getattr(git, key) is not None:
                yield (*loc, to_camel(key)), f"provider {git.provider} authenticates without it: remove it"
    if git.provider == "Azure":
        host = git.url.removeprefix("https://").split("/", 1)[0]
        if git.url.startswith("https://") and not AZURE_DEVOPS_HOST.fullmatch(host):
            message = (
                f"provider Azure authenticates to Azure DevOps (dev.azure.com), not {shown(host)}: "
                "use provider GitHub for GitHub, Generic for other hosts"
            )
            yield (*loc, "url"), message
        for key in app_keys:
            yield (*loc, key), "a GitHub App's key: only with provider: GitHub"
    elif git.provider == "GitHub":
        required = "required with provider: GitHub (the GitHub App's ID, installation ID and private key)"
        for key, value in app.items():
            if value is None:
                yield (*loc, GITHUB_APP_KEYS[key]), Partner((*loc, "provider"), required)
    else:
        for key in app_keys:
            yield (*loc, key), "a GitHub App's key: only with provider: GitHub"


def oci_url_problem(url: str) -> str | None:
    """What is wrong with an OCI repository URL, if anything: `oci://REGISTRY/REPOSITORY`, without credentials, a tag
    or a digest (those are keys of their own)."""
    if not url.startswith("oci://"):
        return "the URL must start with oci:// (oci://REGISTRY/REPOSITORY)"
    authority, _, path = url[len("oci://") :].partition("/")
    if "@" in authority:
        return "credentials inside the URL: use useWorkloadIdentity, or serviceAccountName with its image pull secret"
    if not authority or not path.strip("/"):
        return "an oci:// URL needs a registry host and a repository path"
    if "@" in path or ":" in path.rsplit("/", 1)[-1]:
        return "a tag or digest inside the URL: set tag, semver or digest instead"
    return None


COSIGN_KEY_SUFFIX = ".pub"  # Flux's cosign verification takes the keys of its secret that end so
NOTATION_TRUST_POLICY = "trustpolicy.json"  # and notation its trust policy, with certificates (.crt, .pem)
NOTATION_CERT_SUFFIXES = (".crt", ".pem")


def _oci_issues(loc: Loc, oci: OciSource) -> Iterator[Finding]:
    if problem := oci_url_problem(oci.url):
        yield (*loc, "url"), problem
    refs = [key for key in ("tag", "semver", "digest") if getattr(oci, key) is not None]
    if len(refs) != 1:
        yield loc, f"set exactly one of tag, semver or digest (found: {', '.join(refs) or 'none'})"
    if oci.tls_config is not None:
        tls = oci.tls_config
        if oci.insecure:
            yield (*loc, "insecure"), "insecure: true is plain HTTP: it cannot go with tlsConfig"
        if (tls.client_certificate is None) != (tls.private_key is None):
            present, missing = (
                ("clientCertificate", "privateKey") if tls.private_key is None else ("privateKey", "clientCertificate")
            )
            rule = "clientCertificate and privateKey go together"
            yield (*loc, "tlsConfig", missing), Partner((*loc, "tlsConfig", present), rule)
        if tls.client_certificate is None and tls.private_key is None and tls.ca_certificate is None:
            yield (*loc, "tlsConfig"), "set clientCertificate with privateKey, caCertificate, or both"
    if oci.verify is not None:
        yield from _verify_issues((*loc, "verify"), oci.verify)


def _verify_issues(loc: Loc, verify: OciVerify) -> Iterator[tuple[Loc, str]]:
    keys = list(verify.verification_config)
    if verify.provider == "cosign":
        for key in keys:
            if not key.endswith(COSIGN_KEY_SUFFIX):
                yield (*loc, "verificationConfig", key), f"a cosign public key's name ends in {COSIGN_KEY_SUFFIX}"
        if not keys and not verify.match_oidc_identity:
            message = (
                "say whose signatures count: verificationConfig (cosign public keys) or matchOidcIdentity (keyless); "
                "keyless without it accepts any signer"
            )
            yield loc, message
    else:
        if verify.match_oidc_identity:
            yield (*loc, "matchOidcIdentity"), "only with provider: cosign (keyless verification)"
        if NOTATION_TRUST_POLICY not in keys or not any(key.endswith(NOTATION_CERT_SUFFIXES) for key in keys):
            message = f"notation needs {NOTATION_TRUST_POLICY} and at least one certificate (.crt or .pem)"
            yield (*loc, "verificationConfig"), message
    unanchored = "anchor the expression with ^ and $: unanchored, it also matches identities you did not mean"
    for index, identity in enumerate(verify.match_oidc_identity):
        for key in ("issuer", "subject"):
            expression = getattr(identity, key)
            if not (expression.startswith("^") and expression.endswith("$")):
                yield (*loc, "matchOidcIdentity", index, key), unanchored


def git_url_problem(url: str) -> str | None:
    if url.startswith("http://"):
        return "http:// sends the repository and its credentials unencrypted: use https:// or ssh://"
    if url.startswith("https://"):
        authority = url[len("https://") :].split("/", 1)[0]
        if "@" in authority:
            return "credentials inside the URL: put the user in httpsUser and the key in httpsKey"
        if not authority or "/" not in url[len("https://") :]:
            return "an https:// URL needs a host and a repository path"
        return None
    if url.startswith("ssh://"):
        authority = url[len("ssh://") :].split("/", 1)[0]
        if ":" in authority.split("@", 1)[0] and "@" in authority:
            return "a password inside the URL: use sshPrivateKey"
        return None if authority and "/" in url[len("ssh://") :] else "an ssh:// URL needs a host and a repository path"
    if re.fullmatch(r"git@[A-Za-z0-9.-]+:[^\s]+", url):
        return None
    return "the URL must start with https://, ssh:// or git@"


def _bucket_issues(loc: Loc, bucket: BucketSource) -> Iterator[Finding]:
    if bucket.url.startswith("http://"):
        if not bucket.insecure:
            yield (*loc, "url"), "an http:// endpoint needs insecure: true; prefer https://"
    elif not bucket.url.startswith("https://"):
        yield (*loc, "url"), "the URL must start with https://"
    if "@" in bucket.url.split("://", 1)[-1].split("/", 1)[0]:
        yield (*loc, "url"), "credentials inside the URL: use accessKey and secretKey"
    if (bucket.access_key is None) != (bucket.secret_key is None):
        present, missing = ("accessKey", "secretKey") if bucket.secret_key is None else ("secretKey", "accessKey")
        yield (*loc, missing), Partner((*loc, present), "accessKey and secretKey go together")


def _blob_issues(loc: Loc, blob: AzureBlobSource) -> Iterator[tuple[Loc, str]]:
    if not blob.url.startswith("https://"):
        yield (*loc, "url"), "the URL must start with https://"
    elif "?" in blob.url or "@" in blob.url:
        yield (*loc, "url"), "credentials inside the URL: use sasToken or accountKey"
    auth = [key for key in ("account_key", "sas_token", "managed_identity") if getattr(blob, key) is not None]
    if len(auth) > 1:
        yield loc, f"set at most one of accountKey, sasToken, managedIdentity (found: {', '.join(map(to_camel, auth))})"


def _kustomization_issues(
    loc: Loc, configuration: str, kustomizations: Mapping[str, KustomizationSpec]
) -> Iterator[tuple[Loc, str]]:
    if not kustomizations:
        yield loc, "a configuration needs at least one kustomization"
    for name, kustomization in kustomizations.items():
        here = (*loc, name)
        for problem in flux_object_name_problems(configuration, name):
            yield here, problem
        if kustomization.path is not None:
            parts = kustomization.path.split("/")
            if kustomization.path.startswith("/") or ".." in parts:
                yield (*here, "path"), "must be a path inside the source, relative to its root (no leading / or ..)"
        if problem := kustomization.timeout_issue():
            yield (*here, "timeout"), problem
    for where, problem in dependency_problems({name: k.depends_on for name, k in kustomizations.items()}):
        yield (*loc, *where), problem


def flux_object_name_problems(configuration: str, kustomization: str) -> Iterator[str]:
    """What is wrong with a kustomization's name, alone and as the Flux object `<configuration>-<kustomization>`."""
    if problem := dns_label_problem(kustomization):
        yield f"kustomization name {problem}"
    object_name = f"{configuration}-{kustomization}"
    if len(object_name) > FLUX_OBJECT_NAME_MAX:
        yield (
            f"the Flux object name {shown(object_name)} has {len(object_name)} characters "
            f"(at most {FLUX_OBJECT_NAME_MAX}): shorten the configuration or kustomization name"
        )


def dependency_problems(depends_on: Mapping[str, Sequence[str]]) -> Iterator[tuple[Loc, str]]:
    """What is wrong with a kustomization graph (name → dependsOn), at `(name, "dependsOn"[, index])`: unknown
    targets, self-dependencies, duplicates, and a cycle, named."""
    known = listed(sorted(depends_on)) or "none"
    for name, targets in depends_on.items():
        seen: set[str] = set()
        for index, target in enumerate(targets):
            if target == name:
                yield (name, "dependsOn", index), "a kustomization cannot depend on itself"
            elif target not in depends_on:
                yield (name, "dependsOn", index), f"unknown kustomization {shown(target)} (known: {known})"
            elif target in seen:
                yield (name, "dependsOn", index), f"duplicate {shown(target)}"
            seen.add(target)
    graph = {name: [t for t in targets if t in depends_on and t != name] for name, targets in depends_on.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        nodes = list(reversed(cycle.args[1]))  # graphlib lists the cycle against the edge direction
        yield (nodes[0], "dependsOn"), f"dependency cycle: {' -> '.join(bounded(node, 63) for node in nodes)}"


def secret_sources(spec: StackSpec) -> list[tuple[Loc, SecretSource]]:
    """Every secret field of a stack that is set (a Key Vault reference or a Pulumi secret), with its key path, in the
    order of the spec."""
    found: list[tuple[Loc, SecretSource]] = []

    def walk(value: Any, loc: Loc) -> None:
        if isinstance(value, KeyVaultRef | ConfigSecret):
            found.append((loc, value))
        elif isinstance(value, BaseModel):
            for name, field in type(value).model_fields.items():
                walk(getattr(value, name), (*loc, field.alias or name))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*loc, index))

    walk(spec, ())
    return found


# Where a plaintext credential found in a stack file goes instead: by where it was found.
_SECRET_FIELD_REMEDY = (
    "put it in a secret field, as a Key Vault reference {keyVault: VAULT, secret: NAME} "
    "or with `pulumi config set --secret --path`"
)
_SETTINGS_REMEDY = (
    "move it to protectedSettings, as a Key Vault reference {keyVault: VAULT, secret: NAME} "
    "or with `pulumi config set --secret --path`"
)
_SUBSTITUTE_REMEDY = "keep it in a Kubernetes Secret and name that Secret in postBuild.substituteFrom"


def _keyed_entry_remedy(loc: Loc) -> str | None:
    """The remedy for a map entry whose key the user chose and whose value Flux gets in plain text (an extension
    setting, a postBuild substitution), None elsewhere: there a key like `helm-password` says the value is a
    credential, whatever it looks like."""
    if len(loc) == 4 and loc[:3] == ("flux", "extension", "settings"):
        return _SETTINGS_REMEDY
    if len(loc) == 8 and loc[:2] == ("flux", "configurations") and loc[3] == "kustomizations":
        return _SUBSTITUTE_REMEDY if loc[5:7] == ("postBuild", "substitute") else None
    return None


def plaintext_credential(loc: Loc, value: Any) -> str | None:
    """What kind of credential the config value at `loc` (keys without the namespace) is, in plain text outside a
    secret field; None when it is none. A string that looks like one (modules/spec/credentials.py), or an extension
    setting or postBuild substitution whose key names one (`helm-password`, `DB_TOKEN`). Never the value itself."""
    if not isinstance(value, str):
        return None
    keyed = _keyed_entry_remedy(loc) is not None
    named = keyed and is_credential_key(loc[-1]) and bool(value.strip()) and not is_reference(value)
    kind = "its key names one" if named else credential_kind(value)
    return kind if kind and not is_secret_field(loc) else None


def plaintext_credential_issues(raw: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Every plaintext credential of a stack's config (keys without the namespace): its key path and a message that
    says where it goes instead, never the value. A Pulumi secure value is no plaintext."""

    def walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
        if isinstance(value, Mapping) and not is_pulumi_secure(value):
            for key, item in value.items():
                yield from walk(item, (*loc, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, (*loc, index))
        elif kind := plaintext_credential(loc, value):
            remedy = _keyed_entry_remedy(loc) or _SECRET_FIELD_REMEDY
            yield loc, f"looks like a plaintext credential ({kind}): {remedy}"

    return walk(raw, ())


def key_vault_refs(spec: StackSpec) -> list[tuple[str, KeyVaultRef]]:
    """Every Key Vault reference of a stack with its config key path, in the order of the spec."""
    return [(key_path(loc), source) for loc, source in secret_sources(spec) if isinstance(source, KeyVaultRef)]


def repository_key(url: str) -> str:
    """One name for a repository however it is addressed: `https://github.com/o/r`, `ssh://git@github.com/o/r.git`
    and `git@github.com:o/r` are all `github.com/o/r`."""
    text = re.sub(r"^(https://|ssh://)", "", url.strip())
    if re.match(r"^[^/@:]+@[^/:]+:", text):  # scp-like git@host:path
        text = text.replace(":", "/", 1)
    text = text.split("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    return text.removesuffix("/").removesuffix(".git").lower()


# --------------------------------------------------------------------------------------------- parsing


def parse_spec(
    raw: Mapping[str, Any],
    *,
    file: str,
    default_location: Any = None,
    environment: Any = None,
    provider_subscription: Any = None,
    plain_strings_are_secret: bool = False,
    origins: Origins | None = None,
) -> StackSpec:
    """Validate the `fluxfleet:` config of one stack (keys without the namespace) into a `StackSpec`.

    `default_location` is `azure-native:location`, checked as `cluster.location` is. `environment` is
    `azure-native:environment` (None: the stack file does not set it), checked against `cluster.cloud`.
    `provider_subscription` is `azure-native:subscriptionId`: where `pulumi up` puts the cluster when
    `cluster.subscriptionId` does not say, so the spec's subscription when it does not.
    `plain_strings_are_secret` is true only when Pulumi says the `fluxfleet:flux` key is a secret, i.e. the
    engine decrypted a `pulumi config set --secret` value into it: a value of the stack file's own, never of a profile.
    `origins` says which file wrote each value (profiles.merge); each problem names that file. Default: `file`.
    """
    origins = origins or Origins(file)
    check_expansion(raw, file, key_path)
    issues = []
    if default_location is not None and (problem := location_problem(default_location)):
        issues.append(SpecIssue(file, "azure-native:location", problem))  # raised below, with the rest
    cluster = raw.get("cluster")
    cloud = cluster.get("cloud") if isinstance(cluster, Mapping) else None
    context = {
        "plain_strings_are_secret": plain_strings_are_secret,
        "cloud": cloud if isinstance(cloud, str) and cloud in CLOUDS else DEFAULT_CLOUD,  # where vault names are
    }
    waiting: set[Loc] = set()  # where rules wait: around what pydantic refused
    try:
        spec = StackSpec.model_validate(dict(raw), context=context, by_alias=True)
    except ValidationError as error:
        issues += pydantic_issues(origins, error)
        # A shape error hides no rule broken elsewhere, not even beside it: the rules run on what pydantic took.
        taken, refused = _without_refused(raw, {_written_loc(e) for e in error.errors()}, context)
        if taken is None:
            raise SpecError(issues) from None
        spec = taken
        waiting = {_rules_of(part) for part in refused}
    if spec.cluster.location is None and default_location and spec.cluster.is_aks:
        spec = spec.model_copy(update={"cluster": spec.cluster.model_copy(update={"location": default_location})})
    if provider_subscription is not None and spec.cluster.subscription_id is None:
        if isinstance(provider_subscription, str) and GUID.fullmatch(provider_subscription):
            update = {"subscription_id": provider_subscription}
            spec = spec.model_copy(update={"cluster": spec.cluster.model_copy(update=update)})
        else:  # encrypted (`secure:`), or no subscription id: which subscription the cluster is in is unknown
            encrypted = isinstance(provider_subscription, Mapping) and "secure" in provider_subscription
            what = "an encrypted value" if encrypted else shown(provider_subscription)
            message = f"{what} is not a subscription id: set fluxfleet:cluster.subscriptionId, where the cluster is"
            issues.append(SpecIssue(file, "azure-native:subscriptionId", message))

    def checked(loc: Loc) -> bool:
        """Whether a rule's finding at `loc` can be trusted: not about a value that was refused (or one its model's
        defaults stand in for), nor about what holds it."""
        return not any(loc[: len(part)] == part or part[: len(loc)] == loc for part in waiting)

    for loc, finding in _semantic_issues(spec):
        if not checked(loc):
            continue
        if isinstance(finding, Partner):  # the value that needs it may be in a profile: both files named
            where, message = origins.missing_partner(finding.present, loc, finding.rule)
        else:
            where, message = origins.file_of(loc), finding
        issues.append(SpecIssue(where, key_path(loc), message))
    if checked(("cluster",)):
        issues += cloud_issues(spec, environment, file, origins)
    for loc, source in secret_sources(spec):
        if not isinstance(source, ConfigSecret) or source.value is None or not checked(loc):
            continue  # a Key Vault secret is checked as it is read (modules/keyvault.py); an encrypted one is unknown
        if origins.file_of(loc) != file:
            issues.append(SpecIssue(origins.file_of(loc), key_path(loc), PLAINTEXT_SECRET))
        elif problem := secret_value_problem(loc, source.value):
            issues.append(SpecIssue(file, key_path(loc), problem))
    # A credential outside a secret field is invalid input too, wherever it is, also where pydantic refused the part
    # (once a key: a rule that already refused the value, e.g. a URL with a password in it, has said why).
    reported = {issue.path for issue in issues}
    for loc, message in plaintext_credential_issues(raw):
        if key_path(loc) not in reported:
            issues.append(SpecIssue(origins.file_of(loc), key_path(loc), message))
    if issues:
        raise SpecError(issues)
    return spec


def cloud_issues(spec: StackSpec, environment: Any, file: str, origins: Origins) -> list[SpecIssue]:
    """`azure-native:environment` (None: not set) against `cluster.cloud`, and Key Vault URIs of another cloud.

    A cloud other than AzureCloud needs the environment written in the stack file, rather than the program setting
    an explicit provider: every Pulumi command (`pulumi up`, `refresh`, `destroy`, `import`) then reads the same
    cloud from the stack's config, and the resources of existing stacks keep their default provider (moving them to
    an explicit one would be a provider change on every resource)."""
    cloud = CLOUDS[spec.cluster.cloud]
    cloud_key = key_path(("cluster", "cloud"))
    issues = []
    if environment is None and cloud.name != DEFAULT_CLOUD:
        message = (
            f"{cloud.name} needs `azure-native:environment: {cloud.environment}` in {file}: without it azure-native "
            "deploys to the public cloud"
        )
        issues.append(SpecIssue(origins.file_of(("cluster", "cloud")), cloud_key, message))
    elif environment is not None and (not isinstance(environment, str) or environment not in ENVIRONMENTS):
        known = ", ".join(ENVIRONMENTS)
        issues.append(SpecIssue(file, "azure-native:environment", f"{shown(environment)} is not one of {known}"))
    elif environment is not None and ENVIRONMENTS[environment].name != cloud.name:
        message = (
            f"{environment!r} is {ENVIRONMENTS[environment].name}, but {cloud_key} is {cloud.name} "
            f"(in {origins.file_of(('cluster', 'cloud'))}): azure-native would deploy to another cloud than fluxfleet "
            f"reads; set `azure-native:environment: {cloud.environment}`, or change {cloud_key}"
        )
        issues.append(SpecIssue(file, "azure-native:environment", message))
    suffixes = {other.key_vault_dns_suffix: other.name for other in CLOUDS.values()}
    for loc, source in secret_sources(spec):
        host = source.vault_url.split("/")[2] if isinstance(source, KeyVaultRef) else ""
        elsewhere = suffixes.get(host.partition(".")[2])
        if elsewhere is not None and elsewhere != cloud.name:
            message = (
                f"{host} is a Key Vault of {elsewhere}, but {cloud_key} is {cloud.name}: "
                f"name the vault, or give its {cloud.key_vault_dns_suffix} URI"
            )
            issues.append(SpecIssue(origins.file_of(loc), key_path(loc), message))
    return issues


def _part_of(loc: Loc) -> Loc:
    """The part of a spec whose rules a shape error at `loc` stops at least: one configuration, the extension, the
    cluster, or another key of its own."""
    depth = 3 if loc[:2] == ("flux", "configurations") else 2 if loc[:1] == ("flux",) else 1
    return loc[:depth]


def _rules_of(refused: Loc) -> Loc:
    """Where the rules stop for a value pydantic refused: the model or map that holds it (the defaults that stand in
    for it there would mislead a rule; a kustomization refused whole is one that others' dependsOn name), but never
    more than its part (a configuration refused whole stops its own rules, not the other configurations')."""
    return max(refused[:-1], _part_of(refused), key=len)


# In place of a cluster pydantic refused, so that the rest can be checked: an Arc cluster, which no rule looks into.
_STAND_IN_CLUSTER = {"kind": "arc", "name": "refused", "resourceGroup": "refused"}
ROUNDS_MAX = 32  # validations of what is left; each removes more, deeper locations first


def _without_refused(
    raw: Mapping[str, Any], refused: set[Loc], context: Mapping[str, Any]
) -> tuple[StackSpec | None, set[Loc]]:
    """The spec of `raw` without the values pydantic refused, and what was removed. Each refused value is removed;
    where that is not enough (a required key now missing, an item of a list, a value a later check refuses), the map
    that holds it goes too, and so on up (the cluster is stood in for). None when nothing valid is left."""
    removed = set(refused)
    for _ in range(ROUNDS_MAX):
        if () in removed:
            break
        pruned = dict(raw)
        for loc in removed:
            pruned = _without(pruned, loc)
        if ("cluster",) in removed:
            pruned["cluster"] = _STAND_IN_CLUSTER
        try:
            return StackSpec.model_validate(pruned, context=context, by_alias=True), removed
        except ValidationError as error:
            for loc in {_written_loc(e) for e in error.errors()}:
                covering = next((part for part in sorted(removed, key=len) if loc[: len(part)] == part), None)
                removed.add(covering[:-1] if covering is not None else loc)  # an error again where removed: go up
    return None, removed


def _without(value: Mapping[Any, Any], loc: Loc) -> dict[Any, Any]:
    """A copy of `value` without the key at `loc`: only the maps on the way are copied."""
    copy = dict(value)
    if len(loc) == 1:
        copy.pop(loc[0], None)
    elif isinstance(copy.get(loc[0]), Mapping):
        copy[loc[0]] = _without(copy[loc[0]], loc[1:])
    return copy


def pydantic_issues(
    file: str | Origins, error: ValidationError, root: type[BaseModel] | None = None, namespace: str = NAMESPACE
) -> list[SpecIssue]:
    """Each of pydantic's errors as a SpecIssue naming `file` (or the file `Origins` says wrote the value)."""
    origins = file if isinstance(file, Origins) else Origins(file)
    return [_issue_from_pydantic(origins, e, root, namespace) for e in error.errors(include_url=False)]


def _issue_from_pydantic(
    origins: Origins, error: Mapping[str, Any], root: type[BaseModel] | None = None, namespace: str = NAMESPACE
) -> SpecIssue:
    written = _written_loc(error)  # as the file has it
    loc = _key_path_loc(written, root or StackSpec)
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], root or StackSpec)
        key = str(loc[-1])
        guess = difflib.get_close_matches(key, allowed, n=1) if len(key) <= KEY_PART_MAX else []
        message = "unknown key" + (f" (did you mean {guess[0]!r}?)" if guess else f" (allowed: {', '.join(allowed)})")
    elif kind == "missing":
        message = "required key is missing"
    elif kind in _MAPPING_EXPECTED:  # pydantic names the model class: a user wrote no class, but a mapping
        message = "Input should be a valid dictionary"
    elif error["loc"][-1:] == ("[key]",) and kind == "string_type":
        message = "a key must be text: write it in quotes"
    elif is_pulumi_secure(error.get("input")):  # before anything that would quote the value, even its ciphertext
        message = "is a Pulumi secret, but this key is not a secret field: set it without --secret"
    elif kind == "literal_error":
        message = f"{message} (got {shown(error.get('input'))})"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return SpecIssue(origins.file_of(written), key_path(loc, namespace), message)


_MAPPING_EXPECTED = ("model_type", "model_attributes_type", "dataclass_type", "dataclass_exact_type", "is_instance_of")


def _written_loc(error: Mapping[str, Any]) -> Loc:
    """Where in the file an error is: pydantic's `loc` without the `[key]` it ends with for an error in a map key
    rather than its value. A key the user wrote as `[key]` is no such marker (an unknown key's `loc` ends with it)."""
    loc = tuple(error["loc"])
    return loc[:-1] if loc[-1:] == ("[key]",) and error["type"] != "extra_forbidden" else loc


def _key_path_loc(loc: Loc, root: type[BaseModel]) -> Loc:
    """pydantic's `loc` as key_path shows it: a map key that YAML read as a number (a configuration written `1:`)
    made text, so that it is shown as the key it is (`configurations.1`), not as a list index (`configurations[1]`)."""
    parts: list[str | int] = []
    for part in loc:
        if isinstance(part, int) and typing.get_origin(_type_at(tuple(parts), root)) is dict:
            part = str(part)
        parts.append(part)
    return tuple(parts)


def _allowed_keys(loc: Loc, root: type[BaseModel]) -> list[str]:
    """The config keys allowed at a location, for 'did you mean' on typos."""
    return sorted(field.alias for field in _fields(_type_at(loc, root)))


def _type_at(loc: Loc, root: type[BaseModel]) -> Any:
    model: Any = root
    for part in loc:
        fields = {field.alias: field for field in _fields(model)}
        # a field descends into its type; a list index or a map key (a configuration name) into the items'
        model = _unwrap(fields[part].annotation) if part in fields else _value_type(model)
    return model


def is_secret_field(loc: Loc) -> bool:
    """Whether the config key at `loc` (keys without the namespace) is a secret field (httpsKey, a protected
    setting, ...), whatever its value: a value there is never shown, unless it is a Key Vault reference."""
    return _type_at(loc, StackSpec) is KeyVaultRef  # only SecretField has it (SecretSource unwrapped)


def _fields(model: Any) -> list[Any]:
    return list(model.model_fields.values()) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    while (origin := typing.get_origin(annotation)) in (Union, types.UnionType, Annotated):
        args = typing.get_args(annotation)
        annotation = args[0] if origin is Annotated else next(a for a in args if a is not type(None))
    return annotation


def _value_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return _unwrap(typing.get_args(annotation)[-1])
    return annotation
