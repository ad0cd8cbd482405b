"""The fluxfleet policy rules: plain functions over (resource type, wire-format properties).

One source of truth, used twice: by the CrossGuard pack in this directory (`pulumi preview --policy-pack policies`)
and by `fluxfleet plan`, which evaluates them offline on the resources the program registered under mocks.
Properties are the camelCase inputs azure-native sends (`gitRepository.repositoryRef.branch`,
`kustomizations.apps.dependsOn`). Where a check is already an input rule of the stack spec, the rule calls the
spec's helper rather than restating it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modules.spec import (
    API_DEFAULT_INTERVAL,
    AZURE_DEVOPS_HOST,
    PolicyLevel,
    dependency_problems,
    dns_label_problem,
    flux_object_name_problems,
    git_url_problem,
    oci_url_problem,
)
from modules.spec.credentials import credential_kind  # one list of what a credential looks like, the spec's
from modules.spec.maintenance import AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE
from modules.flux_extension_versions import OLDEST_SUPPORTED
from modules.kubernetes_versions import AS_OF, NEWEST, OLDEST, TABLE_FILE, supported_window

Level = PolicyLevel

# The oldest Kubernetes minor the microsoft.flux extension supports: preflight checks running clusters (Arc ones
# too) against it; for a pinned AKS version, aks-supported-version's window starts above it.
FLUX_MIN_KUBERNETES = (1, 20)
FLUX_EXTENSION_MIN_VERSION = OLDEST_SUPPORTED  # the oldest supported microsoft.flux minor (flux_extension_versions)
MIN_SYNC_INTERVAL = 60  # seconds; shorter polls hammer the git host and ARM for little gain
PRODUCTION = ("production", "prod")

FLUX_CONFIGURATION = "kubernetesconfiguration:FluxConfiguration"
FLUX_SOURCES = ("gitRepository", "bucket", "azureBlob", "ociRepository")
EXTENSION = "kubernetesconfiguration:Extension"
MANAGED_CLUSTER = "containerservice:ManagedCluster"
MAINTENANCE_CONFIGURATION = "containerservice:MaintenanceConfiguration"

# Properties ARM never returns and azure-native always stores encrypted (x-ms-secret in the API).
WRITE_ONLY_SECRETS = {
    FLUX_CONFIGURATION: (
        "configurationProtectedSettings",
        "azureBlob.accountKey",
        "azureBlob.sasToken",
        "azureBlob.servicePrincipal.clientSecret",
        "azureBlob.servicePrincipal.clientCertificate",
        "azureBlob.servicePrincipal.clientCertificatePassword",
        "ociRepository.tlsConfig.clientCertificate",
        "ociRepository.tlsConfig.privateKey",
        "ociRepository.tlsConfig.caCertificate",
    ),
    EXTENSION: ("configurationProtectedSettings",),
}


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    # Input paths that hold Pulumi secrets. None when the caller cannot tell: CrossGuard hands policies the
    # values with their secret markers removed, so there only the always-encrypted properties count as secret.
    secrets: frozenset[str] | None = None
    depends_on: frozenset[str] = frozenset()  # URNs

    @property
    def kind(self) -> str:
        """`kubernetesconfiguration:FluxConfiguration`, whichever API version module the type names, and for
        fluxfleet's own dynamic resources (`pulumi-python:dynamic/kubernetesconfiguration:FluxConfiguration`, the
        2025-04-01 configuration) the module they name: the rules read both alike, their inputs being ARM's."""
        _, module, name = (self.type.split(":") + ["", ""])[:3]
        parts = module.split("/")
        return f"{parts[1] if parts[0] == 'dynamic' and len(parts) > 1 else parts[0]}:{name}"

    def is_secret(self, path: str) -> bool | None:
        if any(_within(path, known) for known in WRITE_ONLY_SECRETS.get(self.kind, ())):
            return True
        if self.secrets is None:
            return None
        return any(_within(path, secret) for secret in self.secrets)


@dataclass(frozen=True)
class Finding:
    path: str  # property path inside the resource; "" for the resource as a whole
    message: str  # what is wrong and what to do


@dataclass(frozen=True)
class StackFinding:
    resource: Resource
    path: str
    message: str


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    description: str
    applies_to: str | None  # the resource kind of a resource rule; None for a stack rule
    check: Callable[..., Iterable[Any]]

    @property
    def stack_rule(self) -> bool:
        return self.applies_to is None


@dataclass(frozen=True)
class Violation:
    policy: str
    level: Level
    resource: str  # the resource's name
    type: str
    urn: str
    path: str
    message: str

    @property
    def where(self) -> str:
        """The resource and, when the violation is about one property, its path."""
        return f"{self.resource} {self.path}" if self.path else self.resource

    def __str__(self) -> str:
        return f"[{self.policy}] {self.where}: {self.message}"


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


def _get(props: Mapping[str, Any], path: str) -> Any:
    value: Any = props
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _seconds(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else API_DEFAULT_INTERVAL


def minor_version(text: Any) -> tuple[int, ...] | None:
    """(1, 31) of "1.31.2" or "v1.31"; None when the text is no version."""
    match = re.match(r"^v?(\d+)\.(\d+)", str(text or ""))
    return (int(match[1]), int(match[2])) if match else None


def _is_known(value: Any) -> bool:
    """False for values a preview cannot know yet (CrossGuard: None; plan: "[unknown]")."""
    return value is not None and value != "[unknown]"


# --------------------------------------------------------------------------------------------- credentials

_SECRET_KEY_NAME = re.compile(
    r"(?i)(password|passwd|secret|token|api[-_.]?key|access[-_.]?key|private[-_.]?key|credential|connection[-_.]?string"
    r"|\bsas\b)"
)


def _url_credentials(url: str) -> str | None:
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    if "://" in url and ":" in authority.split("@", 1)[0] and "@" in authority:
        return "a user and password inside the URL"
    if kind := credential_kind(url):
        return kind + " inside the URL"
    return None


# --------------------------------------------------------------------------------------------- Flux configurations


def flux_source_url_secure(resource: Resource) -> Iterator[Finding]:
    git_url = _get(resource.props, "gitRepository.url")
    if _is_known(git_url) and (problem := git_url_problem(str(git_url))):
        yield Finding("gitRepository.url", problem)
    oci_url = _get(resource.props, "ociRepository.url")
    if _is_known(oci_url) and (problem := oci_url_problem(str(oci_url))):
        yield Finding("ociRepository.url", problem)
    for source in ("bucket", "azureBlob"):
        url = _get(resource.props, f"{source}.url")
        if _is_known(url) and (problem := _url_credentials(str(url))):
            yield Finding(f"{source}.url", f"{problem}: move it to the source's secret fields, from Key Vault")


def flux_bucket_tls(resource: Resource) -> Iterator[Finding]:
    if resource.props.get("sourceKind") == "Bucket" and _get(resource.props, "bucket.insecure") is not False:
        yield Finding("bucket.insecure", "set insecure: false and an https:// endpoint (the API's default is insecure)")


_PROTECTED_ONLY = {"httpsKey", "sshPrivateKey", "bucketSecretKey", "secretKey", "password", "githubAppPrivateKey"}


def flux_credentials_protected(resource: Resource) -> Iterator[Finding]:
    for path, _ in _leaves(resource.props):
        key = re.split(r"[.\[]", path)[-1]
        if key in _PROTECTED_ONLY and not _within(path, "configurationProtectedSettings"):
            yield Finding(path, f"{key} only in configurationProtectedSettings, as a Pulumi secret from Key Vault")
    if resource.secrets is None:  # CrossGuard: these properties are encrypted in state whatever was passed
        return
    for path in WRITE_ONLY_SECRETS[FLUX_CONFIGURATION]:
        if _is_known(_get(resource.props, path)) and not any(_within(path, s) for s in resource.secrets):
            yield Finding(
                path, "not a Pulumi secret: read it from Key Vault or set it with `pulumi config set --secret`"
            )


def flux_kustomization_graph(resource: Resource) -> Iterator[Finding]:
    kustomizations = resource.props.get("kustomizations")
    if not isinstance(kustomizations, Mapping):
        return
    graph = {name: list((k or {}).get("dependsOn") or []) for name, k in kustomizations.items()}
    for where, problem in dependency_problems(graph):
        yield Finding(_path(("kustomizations", *where)), problem)


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def flux_object_names(resource: Resource) -> Iterator[Finding]:
    name = resource.props.get("fluxConfigurationName")
    if _is_known(name) and (problem := dns_label_problem(str(name))):
        yield Finding("fluxConfigurationName", f"configuration name {problem}")
    namespace = resource.props.get("namespace")
    if _is_known(namespace) and (problem := dns_label_problem(str(namespace))):
        yield Finding("namespace", f"namespace {problem}")
    for kustomization in resource.props.get("kustomizations") or {}:
        for problem in flux_object_name_problems(str(name or resource.name), kustomization):
            yield Finding(f"kustomizations.{kustomization}", problem)


def flux_prune(resource: Resource) -> Iterator[Finding]:
    for name, kustomization in (resource.props.get("kustomizations") or {}).items():
        if not (kustomization or {}).get("prune"):
            yield Finding(
                f"kustomizations.{name}.prune",
                "set prune: true so that what is removed from git is removed from the cluster",
            )


def flux_sync_interval(resource: Resource) -> Iterator[Finding]:
    sources = [s for s in FLUX_SOURCES if isinstance(resource.props.get(s), Mapping)]
    kustomizations = resource.props.get("kustomizations") or {}
    objects = [(s, resource.props[s]) for s in sources] + [
        (f"kustomizations.{n}", k or {}) for n, k in kustomizations.items()
    ]
    for path, definition in objects:
        interval = _seconds(definition.get("syncIntervalInSeconds"))
        timeout = _seconds(definition.get("timeoutInSeconds"))
        if interval < MIN_SYNC_INTERVAL:
            yield Finding(
                f"{path}.syncIntervalInSeconds", f"{interval}s is under {MIN_SYNC_INTERVAL}s: sync less often"
            )
        if timeout > interval:
            yield Finding(
                f"{path}.timeoutInSeconds", f"timeout {timeout}s is longer than the {interval}s interval: shorten it"
            )


def flux_oci_verified(resource: Resource) -> Iterator[Finding]:
    """An OCI artifact is applied only when its signature is verified, and fetched over TLS."""
    oci = resource.props.get("ociRepository")
    if not isinstance(oci, Mapping):
        return
    if oci.get("insecure") is True:
        yield Finding("ociRepository.insecure", "plain HTTP to the registry: set insecure: false (the default)")
    verify = oci.get("verify")
    if not isinstance(verify, Mapping) or not _is_known(verify.get("provider")):
        yield Finding(
            "ociRepository.verify",
            "an unverified artifact: add verify with cosign (keys or matchOidcIdentity) or notation, so that only "
            "artifacts your pipeline signed are applied",
        )


# Long-lived credentials a source can do without, and what to use instead.
GITHUB_HOSTS = ("github.com", "www.github.com")
_IDENTITY_INSTEAD = {
    "azure-devops": "provider: Azure (the Flux extension's workload identity: no credential to store or rotate)",
    "github": "provider: GitHub with a GitHub App (installation tokens that expire within the hour, per repository)",
}


def _long_lived_keys(props: Mapping[str, Any]) -> set[str]:
    """The long-lived credentials a configuration's protected settings hold: their keys when the values are plain
    (CrossGuard), else what the body says goes with them (`plan` sees protected settings as one secret): a user for
    an https key, an SSH URL for a deploy key (Flux makes one if none is given), an access key for a bucket's secret."""
    protected = props.get("configurationProtectedSettings")
    keys = {str(key) for key in protected} if isinstance(protected, Mapping) else set()
    git = props.get("gitRepository") if isinstance(props.get("gitRepository"), Mapping) else {}
    if _is_known(git.get("httpsUser")):
        keys.add("httpsKey")
    if str(git.get("url") or "").startswith(("ssh://", "git@")):
        keys.add("sshPrivateKey")
    if _is_known(_get(props, "bucket.accessKey")):
        keys.add("bucketSecretKey")
    return keys


def flux_source_identity(resource: Resource) -> Iterator[Finding]:
    """Advisory: a source authenticated by a long-lived secret (a PAT, an SSH key, a storage or bucket key) where an
    identity would do."""
    props = resource.props
    keys = _long_lived_keys(props)
    url = str(_get(props, "gitRepository.url") or "")
    host = re.sub(r"^(https://|ssh://)", "", url).split("/", 1)[0].split("@")[-1].split(":", 1)[0].lower()
    host_kind = "azure-devops" if AZURE_DEVOPS_HOST.fullmatch(host) or host == "ssh.dev.azure.com" else None
    host_kind = "github" if host in GITHUB_HOSTS else host_kind
    for key in sorted(keys & {"httpsKey", "sshPrivateKey"}):
        if host_kind is not None:
            yield Finding(
                f"configurationProtectedSettings.{key}",
                f"a long-lived {'token' if key == 'httpsKey' else 'deploy key'} for {host}: use "
                f"{_IDENTITY_INSTEAD[host_kind]}",
            )
    if "bucketSecretKey" in keys:
        yield Finding(
            "configurationProtectedSettings.bucketSecretKey",
            "a bucket secret key that never expires: keep the artifacts in Azure Storage and use azureBlob with "
            "managedIdentity, or an oci source with useWorkloadIdentity",
        )
    for key in ("accountKey", "sasToken"):
        if _is_known(_get(props, f"azureBlob.{key}")):
            yield Finding(f"azureBlob.{key}", f"a storage {key}: use managedIdentity instead (no key to leak)")


# --------------------------------------------------------------------------------------------- the Flux extension


def _is_flux_extension(resource: Resource) -> bool:
    return resource.kind == EXTENSION and str(resource.props.get("extensionType", "")).lower() == "microsoft.flux"


def flux_extension_upgrades(resource: Resource) -> Iterator[Finding]:
    if not _is_flux_extension(resource):
        return
    props = resource.props
    if props.get("autoUpgradeMinorVersion", True) is not False:
        train = props.get("releaseTrain") or "Stable"
        if str(train).lower() != "stable":
            yield Finding("releaseTrain", f"release train {train!r}: production clusters follow Stable")
        return
    version = minor_version(props.get("version"))
    if version is None:
        yield Finding("version", "auto-upgrade is off and no version is pinned: pin one, or turn auto-upgrade on")
    elif version < FLUX_EXTENSION_MIN_VERSION:
        oldest = ".".join(map(str, FLUX_EXTENSION_MIN_VERSION))
        yield Finding("version", f"{props.get('version')} is older than {oldest}, the support window: upgrade")


def flux_extension_settings_plain(resource: Resource) -> Iterator[Finding]:
    if resource.kind != EXTENSION:
        return
    for key, value in (resource.props.get("configurationSettings") or {}).items():
        if _SECRET_KEY_NAME.search(str(key)):
            yield Finding(f"configurationSettings.{key}", "a secret-looking setting: move it to protectedSettings")
        elif kind := credential_kind(value):
            yield Finding(f"configurationSettings.{key}", f"holds {kind}: move it to protectedSettings")


# --------------------------------------------------------------------------------------------- AKS


def aks_managed_identity(resource: Resource) -> Iterator[Finding]:
    identity = str(_get(resource.props, "identity.type") or "")
    if identity not in ("SystemAssigned", "UserAssigned"):
        yield Finding("identity.type", "use a SystemAssigned or UserAssigned managed identity (Flux needs one)")
    client_id = _get(resource.props, "servicePrincipalProfile.clientId")
    if _is_known(client_id) and str(client_id).lower() != "msi":
        yield Finding("servicePrincipalProfile", "a service principal: remove it and use the managed identity")


def aks_rbac(resource: Resource) -> Iterator[Finding]:
    if resource.props.get("enableRBAC") is not True:
        yield Finding("enableRBAC", "turn Kubernetes RBAC on")


def aks_entra_rbac(resource: Resource) -> Iterator[Finding]:
    if (
        _get(resource.props, "aadProfile.managed") is not True
        or _get(resource.props, "aadProfile.enableAzureRBAC") is not True
    ):
        yield Finding("aadProfile", "use Microsoft Entra integration (managed: true) with Azure RBAC (enableAzureRBAC)")


def aks_local_accounts_disabled(resource: Resource) -> Iterator[Finding]:
    if resource.props.get("disableLocalAccounts") is not True:
        yield Finding("disableLocalAccounts", "disable local accounts so every access goes through Entra ID")


def aks_workload_identity(resource: Resource) -> Iterator[Finding]:
    if _get(resource.props, "oidcIssuerProfile.enabled") is not True:
        yield Finding("oidcIssuerProfile.enabled", "turn the OIDC issuer on")
    if _get(resource.props, "securityProfile.workloadIdentity.enabled") is not True:
        yield Finding("securityProfile.workloadIdentity.enabled", "turn workload identity on")


def aks_keyvault_secrets_provider(resource: Resource) -> Iterator[Finding]:
    addons = resource.props.get("addonProfiles") or {}
    addon = next((v for k, v in addons.items() if k.lower() == "azurekeyvaultsecretsprovider"), None) or {}
    if addon.get("enabled") is not True:
        yield Finding("addonProfiles.azureKeyvaultSecretsProvider", "turn the Key Vault secrets provider add-on on")
    elif str((addon.get("config") or {}).get("enableSecretRotation", "")).lower() != "true":
        yield Finding(
            "addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation",
            "turn secret rotation on so rotated Key Vault secrets reach the pods",
        )


def aks_supported_version(resource: Resource) -> Iterator[Finding]:
    """A pinned version inside AKS's supported window (modules/kubernetes_versions.py), which starts above the Flux
    extension's floor; an unpinned cluster gets AKS's default, which is supported."""
    text = resource.props.get("kubernetesVersion")
    if not _is_known(text) or text == "":
        return
    version = minor_version(text)
    window = f"AKS supports {supported_window()} (table of {AS_OF.isoformat()})"
    if version is None:
        yield Finding("kubernetesVersion", f"{text!r} is no Kubernetes version: {window}")
    elif version < OLDEST:
        yield Finding(
            "kubernetesVersion", f"{text!r} is out of support: {window}: raise fluxfleet:cluster.kubernetesVersion"
        )
    elif version > NEWEST:
        yield Finding(
            "kubernetesVersion",
            f"{text!r} is not supported yet: {window}: lower fluxfleet:cluster.kubernetesVersion, or update "
            f"{TABLE_FILE} if AKS supports it now",
        )


def aks_auto_upgrade(resource: Resource) -> Iterator[Finding]:
    channel = _get(resource.props, "autoUpgradeProfile.upgradeChannel")
    if not channel or str(channel).lower() == "none":
        yield Finding("autoUpgradeProfile.upgradeChannel", "set an upgrade channel (patch keeps the minor you chose)")


def aks_api_server_access(resource: Resource) -> Iterator[Finding]:
    access = resource.props.get("apiServerAccessProfile") or {}
    if access.get("enablePrivateCluster") is not True and not access.get("authorizedIPRanges"):
        yield Finding("apiServerAccessProfile", "make the cluster private or set authorized IP ranges")


def aks_network_policy(resource: Resource) -> Iterator[Finding]:
    policy = _get(resource.props, "networkProfile.networkPolicy")
    if not policy or str(policy).lower() == "none":
        yield Finding("networkProfile.networkPolicy", "set a network policy engine (azure, calico or cilium)")


# --------------------------------------------------------------------------------------------- stack rules


def flux_extension_present(resources: Sequence[Resource], stack_tags: Mapping[str, str]) -> Iterator[StackFinding]:
    extensions: dict[tuple[str, ...], list[Resource]] = {}
    for extension in (r for r in resources if _is_flux_extension(r)):
        extensions.setdefault(_cluster_of(extension), []).append(extension)
    for configuration in (r for r in resources if r.kind == FLUX_CONFIGURATION):
        found = extensions.get(_cluster_of(configuration), [])
        if not found:
            yield StackFinding(configuration, "", "no microsoft.flux extension for this cluster in the stack: add one")
        elif not any(extension.urn in configuration.depends_on for extension in found):
            yield StackFinding(configuration, "", "does not depend on the microsoft.flux extension: add depends_on")


def flux_workload_identity_ready(
    resources: Sequence[Resource], stack_tags: Mapping[str, str]
) -> Iterator[StackFinding]:
    """A source that authenticates as the Flux extension's workload identity (git provider Azure, an OCI source with
    useWorkloadIdentity) needs it on in the extension, and on AKS the cluster's OIDC issuer and workload identity."""
    extensions = {_cluster_of(r): r for r in resources if _is_flux_extension(r)}
    clusters = {
        (str(r.props.get("resourceGroupName", "")).lower(), str(r.props.get("resourceName", "")).lower()): r
        for r in resources
        if r.kind == MANAGED_CLUSTER
    }
    for configuration in (r for r in resources if r.kind == FLUX_CONFIGURATION):
        props = configuration.props
        if _get(props, "gitRepository.provider") == "Azure":
            path, what = "gitRepository.provider", "git provider Azure"
        elif _get(props, "ociRepository.useWorkloadIdentity") is True:
            path, what = "ociRepository.useWorkloadIdentity", "useWorkloadIdentity"
        else:
            continue
        extension = extensions.get(_cluster_of(configuration))
        settings = (extension.props.get("configurationSettings") or {}) if extension else {}
        enabled = str(settings.get("workloadIdentity.enable", "")).lower() == "true"
        if extension is not None and not (enabled and _is_known(settings.get("workloadIdentity.azureClientId"))):
            yield StackFinding(
                configuration,
                path,
                f"{what} authenticates as the Flux extension's workload identity: set the extension's "
                "workloadIdentity.enable: true and workloadIdentity.azureClientId",
            )
        group, rp, _, name = _cluster_of(configuration)
        cluster = clusters.get((group, name)) if rp == "microsoft.containerservice" else None
        if cluster is not None and not (
            _get(cluster.props, "oidcIssuerProfile.enabled") is True
            and _get(cluster.props, "securityProfile.workloadIdentity.enabled") is True
        ):
            yield StackFinding(
                configuration, path, f"{what} needs the AKS cluster's OIDC issuer and workload identity on"
            )


def _cluster_of(resource: Resource) -> tuple[str, ...]:
    keys = ("resourceGroupName", "clusterRp", "clusterResourceName", "clusterName")
    return tuple(str(resource.props.get(key, "")).lower() for key in keys)


def flux_production_ref_pinned(resources: Sequence[Resource], stack_tags: Mapping[str, str]) -> Iterator[StackFinding]:
    if not _is_production(resources, stack_tags):
        return
    for configuration in (r for r in resources if r.kind == FLUX_CONFIGURATION):
        ref = _get(configuration.props, "gitRepository.repositoryRef") or {}
        if configuration.props.get("sourceKind", "GitRepository") == "GitRepository" and not any(
            ref.get(key) for key in ("tag", "semver", "commit")
        ):
            yield StackFinding(
                configuration,
                "gitRepository.repositoryRef",
                "a production stack tracks a moving branch: pin a tag, a semver range or a commit",
            )


def _is_production(resources: Sequence[Resource], stack_tags: Mapping[str, str]) -> bool:
    """A stack is production when its Pulumi stack tags or its cluster's tags say environment: production."""
    tag_sets = [stack_tags, *(r.props.get("tags") or {} for r in resources if r.kind == MANAGED_CLUSTER)]
    return any(
        str(key).lower() in ("environment", "env") and str(value).lower() in PRODUCTION
        for tags in tag_sets
        for key, value in tags.items()
    )


def aks_maintenance_window(resources: Sequence[Resource], stack_tags: Mapping[str, str]) -> Iterator[StackFinding]:
    """A production AKS cluster's own upgrades have a window: the maintenance configuration of each channel on which
    AKS starts upgrades (the node OS channel unset is AKS's default, NodeImage)."""
    if not _is_production(resources, stack_tags):
        return
    configured = {str(r.props.get("configName")) for r in resources if r.kind == MAINTENANCE_CONFIGURATION}
    for cluster in (r for r in resources if r.kind == MANAGED_CLUSTER):
        channel = str(_get(cluster.props, "autoUpgradeProfile.upgradeChannel") or "none")
        node_os = str(_get(cluster.props, "autoUpgradeProfile.nodeOSUpgradeChannel") or "NodeImage")
        untimed = [
            *([f"channel {channel}"] if channel.lower() != "none" and AUTO_UPGRADE_SCHEDULE not in configured else []),
            *(
                [f"node OS channel {node_os}"]
                if node_os in ("NodeImage", "SecurityPatch") and NODE_OS_UPGRADE_SCHEDULE not in configured
                else []
            ),
        ]
        if untimed:
            yield StackFinding(
                cluster,
                "autoUpgradeProfile",
                f"AKS starts the upgrades of its {' and '.join(untimed)} at any hour: set cluster.upgrade.windows",
            )


def stack_no_plaintext_secrets(resources: Sequence[Resource], stack_tags: Mapping[str, str]) -> Iterator[StackFinding]:
    for resource in resources:
        for path, value in _leaves(resource.props):
            if resource.is_secret(path):
                continue
            if kind := credential_kind(value):
                yield StackFinding(
                    resource, path, f"looks like {kind} in plain text: read it from Key Vault as a Pulumi secret"
                )


# --------------------------------------------------------------------------------------------- the catalogue

RULES: tuple[Rule, ...] = (
    Rule(
        "flux-source-url-secure",
        "mandatory",
        "Git URLs use https://, ssh:// or git@; no credentials in any source URL.",
        FLUX_CONFIGURATION,
        flux_source_url_secure,
    ),
    Rule(
        "flux-bucket-tls",
        "mandatory",
        "A Bucket source sets insecure: false (the API's default is true).",
        FLUX_CONFIGURATION,
        flux_bucket_tls,
    ),
    Rule(
        "flux-credentials-protected",
        "mandatory",
        "Credentials only in protected settings or secret fields, as Pulumi secrets.",
        FLUX_CONFIGURATION,
        flux_credentials_protected,
    ),
    Rule(
        "flux-kustomization-graph",
        "mandatory",
        "dependsOn targets exist in the same configuration; no self-dependency, no cycle.",
        FLUX_CONFIGURATION,
        flux_kustomization_graph,
    ),
    Rule(
        "flux-object-names",
        "mandatory",
        "Configuration and kustomization names DNS-1123, <configuration>-<kustomization> at most 63 characters,"
        " namespace a DNS-1123 label.",
        FLUX_CONFIGURATION,
        flux_object_names,
    ),
    Rule(
        "flux-extension-present",
        "mandatory",
        "Every cluster with a Flux configuration has a microsoft.flux extension in the stack, and every"
        " configuration depends on it.",
        None,
        flux_extension_present,
    ),
    Rule(
        "flux-extension-upgrades",
        "advisory",
        "The Flux extension auto-upgrades minor versions on Stable, or pins a version within the support window.",
        EXTENSION,
        flux_extension_upgrades,
    ),
    Rule(
        "flux-extension-settings-plain",
        "mandatory",
        "No secret-looking key or value in the extension's plain configurationSettings.",
        EXTENSION,
        flux_extension_settings_plain,
    ),
    Rule(
        "flux-oci-verified",
        "mandatory",
        "An OCI source verifies its artifacts' signatures (cosign or notation) and is not insecure (plain HTTP).",
        FLUX_CONFIGURATION,
        flux_oci_verified,
    ),
    Rule(
        "flux-source-identity",
        "advisory",
        "No long-lived source credential (httpsKey, sshPrivateKey, bucket secretKey, storage key) where an identity"
        " would do: provider Azure for Azure DevOps, a GitHub App for GitHub, managedIdentity for Azure Blob.",
        FLUX_CONFIGURATION,
        flux_source_identity,
    ),
    Rule(
        "flux-workload-identity-ready",
        "mandatory",
        "A source that authenticates as the Flux extension's workload identity has it on in the extension, and on"
        " AKS the cluster's OIDC issuer and workload identity.",
        None,
        flux_workload_identity_ready,
    ),
    Rule("flux-prune", "advisory", "Kustomizations prune what git no longer declares.", FLUX_CONFIGURATION, flux_prune),
    Rule(
        "flux-sync-interval",
        "advisory",
        "Source and kustomization intervals at least 60 s; timeout not longer than the interval.",
        FLUX_CONFIGURATION,
        flux_sync_interval,
    ),
    Rule(
        "flux-production-ref-pinned",
        "advisory",
        "Production stacks track a tag, semver range or commit, not a moving branch.",
        None,
        flux_production_ref_pinned,
    ),
    Rule(
        "aks-managed-identity",
        "mandatory",
        "AKS uses a SystemAssigned or UserAssigned identity, no service principal.",
        MANAGED_CLUSTER,
        aks_managed_identity,
    ),
    Rule("aks-rbac", "mandatory", "Kubernetes RBAC on.", MANAGED_CLUSTER, aks_rbac),
    Rule("aks-entra-rbac", "advisory", "Microsoft Entra integration with Azure RBAC.", MANAGED_CLUSTER, aks_entra_rbac),
    Rule(
        "aks-local-accounts-disabled",
        "advisory",
        "Local accounts disabled.",
        MANAGED_CLUSTER,
        aks_local_accounts_disabled,
    ),
    Rule(
        "aks-workload-identity",
        "advisory",
        "OIDC issuer and workload identity on.",
        MANAGED_CLUSTER,
        aks_workload_identity,
    ),
    Rule(
        "aks-keyvault-secrets-provider",
        "advisory",
        "The Key Vault secrets provider add-on on, with rotation.",
        MANAGED_CLUSTER,
        aks_keyvault_secrets_provider,
    ),
    Rule(
        "aks-supported-version",
        "mandatory",
        "A pinned Kubernetes version inside the window AKS supports (modules/kubernetes_versions.py).",
        MANAGED_CLUSTER,
        aks_supported_version,
    ),
    Rule("aks-auto-upgrade", "advisory", "An automatic upgrade channel set.", MANAGED_CLUSTER, aks_auto_upgrade),
    Rule(
        "aks-api-server-access",
        "advisory",
        "A private cluster or authorized IP ranges for the API server.",
        MANAGED_CLUSTER,
        aks_api_server_access,
    ),
    Rule("aks-network-policy", "advisory", "A network policy engine set.", MANAGED_CLUSTER, aks_network_policy),
    Rule(
        "aks-maintenance-window",
        "advisory",
        "A production AKS cluster's own upgrades (its upgrade and node OS channels) start inside a maintenance window.",
        None,
        aks_maintenance_window,
    ),
    Rule(
        "stack-no-plaintext-secrets",
        "mandatory",
        "No credential-looking input anywhere in the stack unless it is a Pulumi secret.",
        None,
        stack_no_plaintext_secrets,
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


def resource_violations(rule: Rule, resource: Resource, level: Level) -> list[Violation]:
    if rule.stack_rule or resource.kind != rule.applies_to:
        return []
    return [_violation(rule, level, resource, f.path, f.message) for f in rule.check(resource)]


def stack_violations(
    rule: Rule, resources: Sequence[Resource], level: Level, stack_tags: Mapping[str, str] | None = None
) -> list[Violation]:
    return [_violation(rule, level, f.resource, f.path, f.message) for f in rule.check(resources, stack_tags or {})]


def _violation(rule: Rule, level: Level, resource: Resource, path: str, message: str) -> Violation:
    return Violation(rule.id, level, resource.name, resource.type, resource.urn, path, message)


def evaluate(
    resources: Sequence[Resource],
    levels: Mapping[str, Level] | None = None,
    stack_tags: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every rule over a stack's resources, at its configured level (disabled rules skipped)."""
    found: list[Violation] = []
    for rule in RULES:
        level = (levels or {}).get(rule.id, rule.level)
        if level == "disabled":
            continue
        if rule.stack_rule:
            found += stack_violations(rule, resources, level, stack_tags)
        else:
            for resource in resources:
                found += resource_violations(rule, resource, level)
    return found
