"""The stack spec: everything fluxfleet reads from a stack's `fluxfleet:` config, typed and validated.

This module is the only place that validates input. Two readers produce the same `StackSpec`:
`spec_from_pulumi_config()` inside `pulumi up`, and `load_stack_file()` for the offline `plan`.
Shape and field formats are checked by pydantic; rules that span fields (the kustomization graph,
source credentials against the URL scheme, kind-specific cluster keys) by `_semantic_issues`.
Every problem becomes a `SpecIssue` naming the stack file and the config key path; all problems of
a file are reported together in one `SpecError`.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import graphlib
import ipaddress
import os
import re
import reprlib
import stat
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "fluxfleet"
REQUIRED_PROVIDERS = ("Microsoft.Kubernetes", "Microsoft.ContainerService", "Microsoft.KubernetesConfiguration")
API_DEFAULT_INTERVAL = 600  # seconds: the sync interval and timeout the Flux configuration API applies by default
FLUX_OBJECT_NAME_MAX = 63  # a Kubernetes object name; Flux names kustomizations `<configuration>-<kustomization>`


# --------------------------------------------------------------------------------------------- errors


# Characters that can move a terminal's cursor, clear it, start a new (forged) log line or reorder what is shown
# (C0 and C1 controls, DEL, Unicode line separators and bidirectional overrides), and lone surrogates (a file name
# that is not UTF-8, as os.listdir gives it), which cannot be printed at all.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNPRINTABLE_IN_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
SHOWN_MAX = 60  # characters of a value quoted in a message


def printable(text: str, *, lines: bool = False) -> str:
    """`text` safe to print: every control character escaped (`\\x1b`); with `lines`, newlines and tabs kept."""
    pattern = _UNPRINTABLE_IN_LINES if lines else _UNPRINTABLE
    return pattern.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class _Shown(reprlib.Repr):
    """A bounded repr for messages: long strings cut with their length, containers a few items deep, control
    characters escaped, and a Pulumi secure value never shown, not even its ciphertext."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 4, 4, 4, 4
        self.maxother = SHOWN_MAX

    def repr_str(self, value: str, level: int) -> str:
        if len(value) <= SHOWN_MAX:
            return repr(value)
        return f"{value[: SHOWN_MAX - 1]!r}… ({len(value):,} characters)"

    def repr_dict(self, value: dict, level: int) -> str:
        if is_pulumi_secure(value):
            return "a Pulumi secret (not shown)"
        return super().repr_dict(value, level)

    def repr_int(self, value: int, level: int) -> str:
        return str(value) if value.bit_length() < 200 else f"an integer of {value.bit_length():,} bits"


def is_pulumi_secure(value: Any) -> bool:
    """`{secure: ...}`: a value `pulumi config set --secret` wrote, encrypted."""
    return isinstance(value, Mapping) and len(value) == 1 and "secure" in value


def shown(value: Any) -> str:
    """A value as a message may quote it: bounded in length, escaped, and never a secret."""
    return printable(_Shown().repr(value))


def bounded(text: str, limit: int) -> str:
    """`text` escaped (see printable) and cut to about `limit` characters, saying how long it was."""
    escaped = printable(text[: limit + 1])
    if len(text) <= limit and len(escaped) <= limit:
        return escaped
    return f"{escaped[: limit - 1]}… ({len(text):,} characters)"


def listed(names: Iterable[str], most: int = 10) -> str:
    """'a, b, c' for a message: each name bounded, at most `most` of them, then how many in all."""
    names = list(names)
    text = ", ".join(bounded(str(name), 40) for name in names[:most])
    return text + (f", … ({len(names):,} in all)" if len(names) > most else "")


KEY_PART_MAX = 80  # characters of one key of a key path
ISSUE_PART_MAX = 500  # characters of each part of an error line: file, key path, message
MAX_ISSUES = 1000  # errors reported for one file; the rest are counted in one more line


@dataclass(frozen=True)
class SpecIssue:
    file: str
    path: str
    message: str

    def __str__(self) -> str:  # one line of bounded length, whatever the input was
        return ": ".join(bounded(part, ISSUE_PART_MAX) for part in (self.file, self.path, self.message))


@dataclass(frozen=True)
class _Omitted(SpecIssue):
    """The issues of a file past the first MAX_ISSUES: "... and N more"."""

    count: int = 0


class SpecError(Exception):
    """Invalid stack input. `issues` holds every problem found in one file: at most MAX_ISSUES of a file, then one
    "... and N more" (counts carried over when a SpecError's issues are raised again in another)."""

    def __init__(self, issues: Sequence[SpecIssue]):
        self.issues: list[SpecIssue] = []
        kept: dict[str, int] = {}
        omitted: dict[str, int] = {}
        for issue in issues:
            if isinstance(issue, _Omitted) or kept.get(issue.file, 0) >= MAX_ISSUES:
                omitted[issue.file] = omitted.get(issue.file, 0) + (issue.count if isinstance(issue, _Omitted) else 1)
            else:
                kept[issue.file] = kept.get(issue.file, 0) + 1
                self.issues.append(issue)
        self.issues += [_Omitted(file, "-", f"... and {count:,} more", count) for file, count in omitted.items()]
        super().__init__("\n".join(str(issue) for issue in self.issues))


def key_path(loc: Sequence[Any], namespace: str = NAMESPACE) -> str:
    """('flux', 'configurations', 'demo', 'dependsOn', 0) -> 'fluxfleet:flux.configurations.demo.dependsOn[0]';
    with no namespace (a file of fluxfleet's own, such as fleet.yaml): 'stages[1].stacks[0]'.
    Each key is escaped and cut (a key is whatever the file holds: 5 MB, or a terminal escape)."""
    text = bounded(namespace, KEY_PART_MAX)
    for index, part in enumerate(loc):
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif index == 0:
            text += (":" if namespace else "") + bounded(str(part), KEY_PART_MAX)
        else:
            text += "." + bounded(str(part), KEY_PART_MAX)
    return text


def key_path_parts(path: str) -> list[str | int]:
    """The inverse of key_path: 'fluxfleet:flux.configurations.demo.dependsOn[0]' -> ['fluxfleet:flux', ..., 0]."""
    parts: list[str | int] = []
    for token in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        parts.append(int(token[0]) if token[0] else token[1])
    return parts


# --------------------------------------------------------------------------------------------- secrets


@dataclass(frozen=True)
class KeyVaultRef:
    """A secret kept in Azure Key Vault; only the reference is ever in config."""

    vault: str  # a vault name, or its URI
    secret: str
    version: str | None = None

    @property
    def vault_url(self) -> str:
        if self.vault.startswith("https://"):
            return self.vault.rstrip("/") + "/"
        return f"https://{self.vault}.vault.azure.net/"

    def __str__(self) -> str:
        return f"keyvault:{self.vault}/{self.secret}" + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class ConfigSecret:
    """A Pulumi secret config value. `value` is None when it is still encrypted (offline plan)."""

    value: str | None = None

    def __repr__(self) -> str:  # the value never reaches a repr, a log line or an error
        return "ConfigSecret(encrypted)" if self.value is None else "ConfigSecret([secret])"

    __str__ = __repr__


SecretSource = KeyVaultRef | ConfigSecret

_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_VAULT_URI = re.compile(r"^https://[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\.vault\.[a-z0-9.]+/?$")
_KV_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_KV_VERSION = re.compile(r"^[0-9a-f]{32}$")


def key_vault_ref(vault: Any, secret: Any, version: Any = None) -> KeyVaultRef:
    """A Key Vault reference with valid parts, or ValueError naming the part that is not (never its value)."""
    if not isinstance(vault, str) or not (_VAULT_NAME.fullmatch(vault) or _VAULT_URI.fullmatch(vault)):
        raise ValueError("keyVault must be a Key Vault name (3-24 letters, digits, hyphens) or its https URI")
    if not isinstance(secret, str) or not _KV_SECRET_NAME.fullmatch(secret):
        raise ValueError("secret must be a Key Vault secret name (1-127 letters, digits, hyphens)")
    if version is not None and (not isinstance(version, str) or not _KV_VERSION.fullmatch(version)):
        raise ValueError("version must be a Key Vault secret version (32 hex characters)")
    return KeyVaultRef(vault, secret, version)


def key_vault_ref_from_text(text: str) -> KeyVaultRef:
    """`VAULT/SECRET[@VERSION]` (VAULT a name or its https URI), as command-line options take a reference."""
    vault, _, secret = text.rpartition("/")
    secret, _, version = secret.partition("@")
    return key_vault_ref(vault, secret, version or None)


def _parse_secret_source(value: Any, info: ValidationInfo) -> SecretSource:
    # Messages here never include the value: it may be the secret itself.
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"secure"}:
            return ConfigSecret(None)  # `pulumi config set --secret`, as stored (encrypted) in the stack file
        unknown = keys - {"keyVault", "secret", "version"}
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in a Key Vault reference "
                "(allowed: keyVault, secret, version)"
            )
        return key_vault_ref(value.get("keyVault"), value.get("secret"), value.get("version"))
    if isinstance(value, str):
        if (info.context or {}).get("plain_strings_are_secret"):
            return ConfigSecret(value)
        raise ValueError(
            "plaintext secret: use a Key Vault reference {keyVault: NAME, secret: NAME} "
            "or `pulumi config set --secret --path` for this key"
        )
    raise ValueError("must be a Key Vault reference {keyVault: NAME, secret: NAME, version?} or a Pulumi secret")


SecretField = Annotated[SecretSource, PlainValidator(_parse_secret_source)]


# --------------------------------------------------------------------------------------------- scalar formats

# Durations: digits bounded by the regex (int() never sees thousands of them), values by DURATION_MAX.
_GO_DURATION = re.compile(r"(?:(\d{1,20})h)?(?:(\d{1,20})m)?(?:(\d{1,20})s)?")
_ISO_DURATION = re.compile(r"P(?:(\d{1,20})D)?(?:T(?:(\d{1,20})H)?(?:(\d{1,20})M)?(?:(\d{1,20})S)?)?")
DURATION_MAX = 30 * 24 * 3600  # 30 days (720h): longer is a mistake, and overflows timers
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LOCATION = re.compile(r"[a-z0-9]{1,90}")


def parse_duration(value: Any) -> int:
    """A Go duration of whole hours, minutes and seconds (`30s`, `10m`, `1h30m`) or positive integer seconds,
    at most 30 days."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30s, 10m or 1h30m, or a number of seconds")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value and (match := _GO_DURATION.fullmatch(value)):
        hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(
            f"{shown(value)} is not a duration: use whole h, m and s units such as 30s, 10m or 1h30m, "
            "or a number of seconds"
        )
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    if seconds > DURATION_MAX:
        raise ValueError(f"{shown(value)} is longer than 30 days (720h), the longest duration fluxfleet takes")
    return seconds


def _iso_duration(value: Any) -> str:
    match = None
    if isinstance(value, str) and value not in ("P", "PT") and not value.endswith("T"):
        match = _ISO_DURATION.fullmatch(value)
    if not match:
        raise ValueError(f"{shown(value)} is not an ISO-8601 duration such as PT30M, PT1H or P1D")
    days, hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
    if days * 86400 + hours * 3600 + minutes * 60 + secs > DURATION_MAX:
        raise ValueError(f"{shown(value)} is longer than 30 days (P30D), the longest duration fluxfleet takes")
    return value


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        return (
            f"{shown(value)} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return None


def _dns_label(value: str) -> str:
    if problem := dns_label_problem(value):
        raise ValueError(problem)
    return value


def location_problem(value: Any) -> str | None:
    """What is wrong with an Azure region name (`cluster.location`, `azure-native:location`), if anything."""
    if not isinstance(value, str) or not _LOCATION.fullmatch(value):
        return f"{shown(value)} is not an Azure region name such as westeurope"
    return None


def _location(value: str) -> str:
    if problem := location_problem(value):
        raise ValueError(problem)
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IP range such as 203.0.113.0/24") from None


def _guid(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a GUID")
    return value


def _pattern(regex: str, what: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


def _one_line(value: str) -> str:
    if found := _UNPRINTABLE.search(value):
        raise ValueError(
            f"contains {printable(found.group())}: no control characters, line breaks or bidirectional overrides here"
        )
    return value


def _lines(value: str) -> str:
    if found := _UNPRINTABLE_IN_LINES.search(value):
        raise ValueError(f"contains {printable(found.group())}: only printable text, newlines and tabs here")
    return value


LINE_MAX = 2048  # characters of a one-line field (a URL, a path, a ref, a tag): generous, but bounded
TEXT_MAX = 65536  # characters of a multi-line field (a CA certificate, known_hosts)


def _setting_value(value: Any) -> str:
    # Extension settings are strings on the wire; YAML booleans and numbers are written as Helm expects them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if len(value) > TEXT_MAX:
            raise ValueError(f"has {len(value):,} characters (at most {TEXT_MAX:,})")
        return _lines(value)
    raise ValueError("must be a string, number or boolean")


Duration = Annotated[int, PlainValidator(parse_duration)]
IsoDuration = Annotated[str, PlainValidator(_iso_duration)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Location = Annotated[str, AfterValidator(_location)]
Guid = Annotated[str, AfterValidator(_guid)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SettingValue = Annotated[str, PlainValidator(_setting_value)]
# Every free-form string of the spec is one of these: `Line` one line of printable text (a URL, a ref, a path, a
# glob), `Text` printable lines (a certificate); both bounded. `MaybeEmpty...` may also be "".
Line = Annotated[str, StringConstraints(min_length=1, max_length=LINE_MAX), AfterValidator(_one_line)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX), AfterValidator(_lines)]
MaybeEmptyLine = Annotated[str, StringConstraints(max_length=LINE_MAX), AfterValidator(_one_line)]
MaybeEmptyText = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_lines)]


# --------------------------------------------------------------------------------------------- models


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=True)


class NodePool(_Spec):
    name: Annotated[str, _pattern(r"[a-z][a-z0-9]{0,11}", "an AKS node pool name (a-z then a-z0-9, 1-12 characters)")]
    vm_size: Line
    count: Annotated[int, Field(ge=0, le=1000)] | None = None
    min_count: Annotated[int, Field(ge=0, le=1000)] | None = None
    max_count: Annotated[int, Field(ge=1, le=1000)] | None = None
    mode: Literal["System", "User"] = "User"
    zones: list[Literal["1", "2", "3"]] | None = None

    @property
    def autoscaled(self) -> bool:
        return self.min_count is not None


class ClusterSpec(_Spec):
    kind: Literal["aks", "arc"]
    name: Annotated[
        str,
        _pattern(r"[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?", "a cluster name (1-63 letters, digits, '-', '_')"),
    ]
    resource_group: Annotated[
        str, _pattern(r"[-\w.()]{0,89}[-\w()]", "a resource group name (1-90 characters, not ending in '.')")
    ]
    location: Location | None = None
    subscription_id: Guid | None = None
    # AKS only:
    kubernetes_version: Annotated[str, _pattern(r"\d+\.\d+(\.\d+)?", "a Kubernetes version such as 1.31")] | None = None
    node_pools: list[NodePool] | None = None
    dns_prefix: (
        Annotated[
            str, _pattern(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,52}[a-zA-Z0-9])?", "a DNS prefix (1-54 letters, digits, '-')")
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


class ExtensionSpec(_Spec):
    release_train: Literal["Stable", "Preview"] = "Stable"
    auto_upgrade_minor_version: bool = True
    version: Annotated[str, _pattern(r"\d+\.\d+\.\d+", "an extension version such as 1.15.1")] | None = None
    settings: dict[Line, SettingValue] = {}
    protected_settings: dict[Line, SecretField] = {}


class _Reconciled(_Spec):
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


class GitSource(_Reconciled):
    url: Line
    branch: Line | None = None
    tag: Line | None = None
    semver: Line | None = None
    commit: Annotated[str, _pattern(r"[0-9a-f]{7,40}", "a commit SHA (7-40 hex characters)")] | None = None
    https_user: Line | None = None
    https_key: SecretField | None = None
    ssh_private_key: SecretField | None = None
    ssh_known_hosts: Text | None = None
    https_ca_cert: Text | None = Field(default=None, alias="httpsCACert")
    provider: Literal["Generic", "Azure", "GitHub"] | None = None

    @property
    def is_ssh(self) -> bool:
        return self.url.startswith(("ssh://", "git@"))


class BucketSource(_Reconciled):
    url: Line
    bucket_name: Line
    access_key: Line | None = None
    secret_key: SecretField | None = None
    insecure: bool = False  # the API's default is true; fluxfleet's is TLS


class ManagedIdentity(_Spec):
    client_id: Guid


class AzureBlobSource(_Reconciled):
    url: Line
    container_name: Line
    account_key: SecretField | None = None
    sas_token: SecretField | None = None
    managed_identity: ManagedIdentity | None = None


class SubstituteFrom(_Spec):
    kind: Literal["ConfigMap", "Secret"]
    name: Annotated[str, _pattern(_DNS_SUBDOMAIN.pattern, "a Kubernetes object name")]
    optional: bool = False


class PostBuild(_Spec):
    substitute: dict[Annotated[str, _pattern(r"[_a-zA-Z][_a-zA-Z0-9]*", "a variable name")], MaybeEmptyText] = {}
    substitute_from: list[SubstituteFrom] = []


class KustomizationSpec(_Reconciled):
    path: Line | None = None
    depends_on: list[Line] = []
    prune: bool | None = None
    force: bool | None = None
    wait: bool | None = None
    retry_interval: Duration | None = None
    post_build: PostBuild | None = None


class ConfigurationSpec(_Spec):
    namespace: DnsLabel = "flux-system"
    scope: Literal["cluster", "namespace"] = "cluster"
    suspend: bool = False
    wait_for_reconciliation: bool | None = None
    reconciliation_wait_duration: IsoDuration | None = None
    git: GitSource | None = None
    bucket: BucketSource | None = None
    azure_blob: AzureBlobSource | None = None
    kustomizations: dict[str, KustomizationSpec]

    @property
    def source_kind(self) -> Literal["GitRepository", "Bucket", "AzureBlob"]:
        return "GitRepository" if self.git else "Bucket" if self.bucket else "AzureBlob"

    def kustomization_order(self) -> list[str]:
        """Kustomization names, each after the ones it depends on (validated acyclic)."""
        sorter = graphlib.TopologicalSorter({name: k.depends_on for name, k in sorted(self.kustomizations.items())})
        return list(sorter.static_order())


class FluxSpec(_Spec):
    extension: ExtensionSpec = ExtensionSpec()
    configurations: dict[str, ConfigurationSpec] = {}


ProviderNamespace = Annotated[
    str,
    _pattern(r"[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+", "a resource provider namespace such as Microsoft.Kubernetes"),
]
FeatureName = Annotated[
    str, _pattern(r"[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+/[A-Za-z0-9][A-Za-z0-9._-]*", "Namespace/FeatureName")
]


class StackSpec(_Spec):
    cluster: ClusterSpec
    providers: list[ProviderNamespace] = list(REQUIRED_PROVIDERS)
    features: list[FeatureName] = []
    flux: FluxSpec = FluxSpec()


@dataclass(frozen=True)
class Stack:
    """A validated stack: its name, the file it came from, and its spec."""

    name: str
    file: str
    spec: StackSpec


# --------------------------------------------------------------------------------------------- cross-field rules

Loc = tuple[str | int, ...]


def _semantic_issues(spec: StackSpec) -> Iterator[tuple[Loc, str]]:
    yield from _cluster_issues(spec.cluster)
    yield from _list_issues(("providers",), spec.providers)
    missing = [p for p in REQUIRED_PROVIDERS if p not in spec.providers]
    if missing:
        yield ("providers",), f"Flux on Azure needs {', '.join(missing)} registered too"
    yield from _list_issues(("features",), spec.features)
    extension = spec.flux.extension
    if extension.version and extension.auto_upgrade_minor_version:
        yield ("flux", "extension", "version"), "a pinned version needs autoUpgradeMinorVersion: false"
    for name, configuration in spec.flux.configurations.items():
        yield from _configuration_issues(("flux", "configurations", name), name, configuration)


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


def _configuration_issues(loc: Loc, name: str, configuration: ConfigurationSpec) -> Iterator[tuple[Loc, str]]:
    if problem := dns_label_problem(name):
        yield loc, f"configuration name {problem}"
    sources = [key for key in ("git", "bucket", "azure_blob") if getattr(configuration, key) is not None]
    if len(sources) != 1:
        found = ", ".join(to_camel(s) for s in sources) or "none"
        yield loc, f"set exactly one source: git, bucket or azureBlob (found: {found})"
    if configuration.reconciliation_wait_duration and not configuration.wait_for_reconciliation:
        yield (*loc, "reconciliationWaitDuration"), "only with waitForReconciliation: true"
    if configuration.git:
        yield from _git_issues((*loc, "git"), configuration.git)
    if configuration.bucket:
        yield from _bucket_issues((*loc, "bucket"), configuration.bucket)
    if configuration.azure_blob:
        yield from _blob_issues((*loc, "azureBlob"), configuration.azure_blob)
    for key in sources:
        if problem := getattr(configuration, key).timeout_issue():
            yield (*loc, to_camel(key), "timeout"), problem
    yield from _kustomization_issues((*loc, "kustomizations"), name, configuration.kustomizations)


def _git_issues(loc: Loc, git: GitSource) -> Iterator[tuple[Loc, str]]:
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
            missing = "httpsKey" if git.https_key is None else "httpsUser"
            yield (*loc, missing), "httpsUser and httpsKey go together"
    if git.provider not in (None, "Generic"):
        # pulumi-azure-native sends fluxConfigurations API 2023-05-01, which has no `provider`.
        yield (
            (*loc, "provider"),
            f"provider {shown(git.provider)} needs a newer Flux configuration API than fluxfleet sends",
        )


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


def _bucket_issues(loc: Loc, bucket: BucketSource) -> Iterator[tuple[Loc, str]]:
    if bucket.url.startswith("http://"):
        if not bucket.insecure:
            yield (*loc, "url"), "an http:// endpoint needs insecure: true; prefer https://"
    elif not bucket.url.startswith("https://"):
        yield (*loc, "url"), "the URL must start with https://"
    if "@" in bucket.url.split("://", 1)[-1].split("/", 1)[0]:
        yield (*loc, "url"), "credentials inside the URL: use accessKey and secretKey"
    if (bucket.access_key is None) != (bucket.secret_key is None):
        yield (*loc, "secretKey" if bucket.secret_key is None else "accessKey"), "accessKey and secretKey go together"


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


def key_vault_refs(spec: StackSpec) -> list[tuple[str, KeyVaultRef]]:
    """Every Key Vault reference of a stack with its config key path, in the order of the spec."""
    found: list[tuple[str, KeyVaultRef]] = []

    def walk(value: Any, loc: Loc) -> None:
        if isinstance(value, KeyVaultRef):
            found.append((key_path(loc), value))
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


def repository_key(url: str) -> str:
    """One name for a repository however it is addressed: `https://github.com/o/r`, `ssh://git@github.com/o/r.git`
    and `git@github.com:o/r` are all `github.com/o/r`."""
    text = re.sub(r"^(https://|ssh://)", "", url.strip())
    if re.match(r"^[^/@:]+@[^/:]+:", text):  # scp-like git@host:path
        text = text.replace(":", "/", 1)
    text = text.split("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    return text.removesuffix("/").removesuffix(".git").lower()


def kustomization_path_issues(stack: Stack, checkouts: Mapping[str, Path]) -> list[SpecIssue]:
    """Kustomization paths that are not directories of a local checkout of their git source.

    `checkouts` maps repository URLs (any form) to directories; configurations whose repository has no
    checkout are not checked. The checkout should be at the ref the stack tracks."""
    roots = {repository_key(url): Path(directory) for url, directory in checkouts.items()}
    issues = []
    for name, configuration in stack.spec.flux.configurations.items():
        root = roots.get(repository_key(configuration.git.url)) if configuration.git else None
        if root is None:
            continue
        for kustomization_name, kustomization in configuration.kustomizations.items():
            relative = kustomization.path or "./"
            if not _is_dir(root / relative):
                loc = ("flux", "configurations", name, "kustomizations", kustomization_name, "path")
                message = f"{shown(relative)} is not a directory of the source (checked in {root})"
                issues.append(SpecIssue(stack.file, key_path(loc), message))
    return issues


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system, ...
        return False


# --------------------------------------------------------------------------------------------- parsing


def parse_spec(
    raw: Mapping[str, Any],
    *,
    file: str,
    default_location: Any = None,
    plain_strings_are_secret: bool = False,
) -> StackSpec:
    """Validate the `fluxfleet:` config of one stack (keys without the namespace) into a `StackSpec`.

    `default_location` is `azure-native:location`, checked as `cluster.location` is.
    `plain_strings_are_secret` is true only when Pulumi says the `fluxfleet:flux` key is a secret, i.e. the
    engine decrypted a `pulumi config set --secret` value into it.
    """
    check_expansion(raw, file, key_path)
    issues = []
    if default_location is not None and (problem := location_problem(default_location)):
        issues.append(SpecIssue(file, "azure-native:location", problem))  # raised below, with the rest
    try:
        spec = StackSpec.model_validate(
            dict(raw), context={"plain_strings_are_secret": plain_strings_are_secret}, by_alias=True
        )
    except ValidationError as error:
        raise SpecError([*issues, *_pydantic_issues(file, error)]) from None
    if spec.cluster.location is None and default_location and spec.cluster.is_aks:
        spec = spec.model_copy(update={"cluster": spec.cluster.model_copy(update={"location": default_location})})
    issues += [SpecIssue(file, key_path(loc), message) for loc, message in _semantic_issues(spec)]
    if issues:
        raise SpecError(issues)
    return spec


def _pydantic_issues(
    file: str, error: ValidationError, root: type[BaseModel] | None = None, namespace: str = NAMESPACE
) -> list[SpecIssue]:
    return [_issue_from_pydantic(file, e, root, namespace) for e in error.errors(include_url=False)]


def _issue_from_pydantic(
    file: str, error: Mapping[str, Any], root: type[BaseModel] | None = None, namespace: str = NAMESPACE
) -> SpecIssue:
    loc: Loc = tuple(part for part in error["loc"] if not _is_validator_tag(part))
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], root or StackSpec)
        key = str(loc[-1])
        guess = difflib.get_close_matches(key, allowed, n=1) if len(key) <= KEY_PART_MAX else []
        message = "unknown key" + (f" (did you mean {guess[0]!r}?)" if guess else f" (allowed: {', '.join(allowed)})")
    elif kind == "missing":
        message = "required key is missing"
    elif is_pulumi_secure(error.get("input")):  # before anything that would quote the value, even its ciphertext
        message = "is a Pulumi secret, but this key is not a secret field: set it without --secret"
    elif kind == "literal_error":
        message = f"{message} (got {shown(error.get('input'))})"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return SpecIssue(file, key_path(loc, namespace), message)


def _is_validator_tag(part: Any) -> bool:
    return part == "[key]"  # pydantic's marker for an error in a map key rather than its value


def _allowed_keys(loc: Loc, root: type[BaseModel]) -> list[str]:
    """The config keys allowed at a location, for 'did you mean' on typos."""
    model: Any = root
    for part in loc:
        fields = {field.alias: field for field in _fields(model)}
        # a field descends into its type; a list index or a map key (a configuration name) into the items'
        model = _unwrap(fields[part].annotation) if part in fields else _value_type(model)
    return sorted(field.alias for field in _fields(model))


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


# --------------------------------------------------------------------------------------------- readers


# The config keys of the azure-native provider (pulumi-azure-native 3.x, config/vars.py): the only `azure-native:`
# keys a stack may set.
AZURE_NATIVE_KEYS = (
    "auxiliaryTenantIds",
    "clientCertificatePassword",
    "clientCertificatePath",
    "clientId",
    "clientSecret",
    "disableInstanceDiscovery",
    "disablePulumiPartnerId",
    "environment",
    "location",
    "metadataHost",
    "msiEndpoint",
    "oidcRequestToken",
    "oidcRequestUrl",
    "oidcToken",
    "oidcTokenFilePath",
    "partnerId",
    "subscriptionId",
    "tenantId",
    "useDefaultAzureCredential",
    "useMsi",
    "useOidc",
)
_CHECKED_NAMESPACES = (NAMESPACE, "azure-native")


def split_config(file: str, config: Mapping[Any, Any]) -> tuple[dict[str, Any], list[SpecIssue]]:
    """A stack's config keys: the `fluxfleet:` ones by name (a bare key is the project's, fluxfleet's), and what is
    wrong with the keys: a namespace that is a typo of fluxfleet or azure-native, an azure-native key the provider
    does not have, a key written both bare and with its namespace. Other namespaces (pulumi:, a user's) are allowed."""
    raw: dict[str, Any] = {}
    written: dict[str, str] = {}  # name -> the key as written
    issues = []
    for key, value in config.items():
        if not isinstance(key, str):
            issues.append(SpecIssue(file, shown(key), "a config key is a string such as fluxfleet:cluster"))
            continue
        where = bounded(key, KEY_PART_MAX)
        namespace, colon, name = key.partition(":")  # Pulumi's `namespace:name`: the first colon
        if not colon:
            namespace, name = NAMESPACE, key
        if namespace == NAMESPACE:
            if name in written:
                message = f"the same key as {shown(written[name])} (a bare key is in the project namespace, fluxfleet)"
                issues.append(SpecIssue(file, where, message + ": keep one"))
                continue
            written[name], raw[name] = key, value
        elif namespace == "azure-native":
            if name not in AZURE_NATIVE_KEYS:
                guess = _close(name, AZURE_NATIVE_KEYS)
                hint = f" (did you mean 'azure-native:{guess}'?)" if guess else ""
                issues.append(SpecIssue(file, where, "not a config key of the azure-native provider" + hint))
        elif guess := _close(namespace, _CHECKED_NAMESPACES, cutoff=0.8):
            issues.append(SpecIssue(file, where, f"unknown namespace {shown(namespace)} (did you mean {guess!r}?)"))
    return raw, issues


def _close(word: str, known: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The known word `word` is likely a typo of: the same but for case, else the closest (difflib)."""
    if len(word) > KEY_PART_MAX:
        return None
    folded = {item.lower(): item for item in known}
    guess = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=cutoff)
    return folded[guess[0]] if guess else None


def spec_from_pulumi_config() -> Stack:
    """The spec of the running Pulumi stack, from `pulumi.Config`. Every config key the engine passed is checked as
    a stack file's are (see split_config); a `fluxfleet:` key the spec does not know is an error."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    config = pulumi.Config(NAMESPACE)
    file = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}  # every key the stack sets
    names, issues = split_config(file, dict.fromkeys(keys))
    raw: dict[str, Any] = {}
    for name in [*StackSpec.model_fields, *(name for name in names if name not in StackSpec.model_fields)]:
        try:  # an unknown key is read as the string it is, for pydantic to name it
            value = config.get_object(name) if name in StackSpec.model_fields else config.get(name)
        except pulumi.ConfigTypeError:
            raise SpecError([SpecIssue(file, key_path((name,)), "must be a structured (YAML or JSON) value")]) from None
        except (RecursionError, ValueError):  # json.loads: nested too deep, or an integer too long for int()
            message = "cannot be read: nested too deeply or a number too long"
            raise SpecError([SpecIssue(file, key_path((name,)), message)]) from None
        if value is not None:
            raw[name] = value
    try:
        spec = parse_spec(
            raw,
            file=file,
            default_location=pulumi.Config("azure-native").get("location"),
            plain_strings_are_secret=pulumi.runtime.is_config_secret(f"{NAMESPACE}:flux"),
        )
    except SpecError as error:
        raise SpecError([*issues, *error.issues]) from None
    if issues:
        raise SpecError(issues)
    return Stack(pulumi.get_stack(), file, spec)


STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # a Pulumi stack name
STACK_NAME_RULE = "letters, digits, '-', '_' and '.', at most 100 characters"
STACK_FILE = re.compile(rf"^Pulumi\.(?P<stack>{STACK_NAME.pattern})\.ya?ml\Z")


def report_name(path: Path) -> str:
    """The name a report gives a stack file, even an invalid one: `dev` for Pulumi.dev.yaml, else the file name."""
    match = STACK_FILE.match(path.name)
    return match["stack"] if match else path.name


def stack_name(path: Path) -> str:
    match = STACK_FILE.match(path.name)
    if not match:
        message = f"a stack file is named Pulumi.<stack>.yaml, <stack> being {STACK_NAME_RULE}"
        raise SpecError([SpecIssue(str(path), "-", message)])
    return match["stack"]


_LOOKS_LIKE_A_STACK_FILE = re.compile(r"Pulumi\.(.+)\.ya?ml", re.DOTALL)


def stack_files(stacks_dir: Path, names: Sequence[str] = ()) -> list[Path]:
    """The stack files of a command: the named stacks, or every `Pulumi.<stack>.yaml` (or `.yml`) in the directory.
    A SpecError lists every problem: a name that is no stack name (or a file name that is not UTF-8), a stack with
    both a .yaml and a .yml file."""
    issues: list[SpecIssue] = []
    if names:
        for name in names:
            if not STACK_NAME.fullmatch(name):
                issues.append(SpecIssue(str(stacks_dir), shown(name), f"not a stack name ({STACK_NAME_RULE})"))
        found = {name: _stack_file_of(stacks_dir, name) for name in names if STACK_NAME.fullmatch(name)}
    else:
        try:
            entries = sorted(os.listdir(stacks_dir))
        except OSError as error:
            raise SpecError([SpecIssue(str(stacks_dir), "-", f"cannot read: {error.strerror}")]) from None
        found = {}
        for entry in entries:
            if not _LOOKS_LIKE_A_STACK_FILE.fullmatch(entry):
                continue
            # os.listdir hands a name that is not UTF-8 over with surrogates, which cannot be printed: escape it
            shown_name = printable(os.fsencode(entry).decode("utf-8", "backslashreplace"))
            if shown_name != entry:
                problem = "the file name is not UTF-8 text, or holds control characters: rename the file"
            elif not (match := STACK_FILE.match(entry)):
                problem = f"not a stack file name: Pulumi.<stack>.yaml, <stack> being {STACK_NAME_RULE}"
            else:
                found.setdefault(match["stack"], stacks_dir / entry)
                continue
            issues.append(SpecIssue(str(stacks_dir / shown_name), "-", problem))
    for name in found:
        if all(os.path.lexists(stacks_dir / f"Pulumi.{name}.{suffix}") for suffix in ("yaml", "yml")):
            message = f"stack {name} has two files, Pulumi.{name}.yaml and Pulumi.{name}.yml: keep one"
            issues.append(SpecIssue(str(stacks_dir / f"Pulumi.{name}.yml"), "-", message))
    if issues:
        raise SpecError(issues)
    return list(found.values())


def _stack_file_of(stacks_dir: Path, name: str) -> Path:
    """A named stack's file: Pulumi.NAME.yaml, else Pulumi.NAME.yml if only that exists."""
    yaml, yml = stacks_dir / f"Pulumi.{name}.yaml", stacks_dir / f"Pulumi.{name}.yml"
    return yml if os.path.lexists(yml) and not os.path.lexists(yaml) else yaml


FILE_MAX_BYTES = 16 * 1024 * 1024  # 16 MiB: far beyond any stack file, little enough to read at once


def read_text(path: Path, file: str) -> str:
    """A user's file as text: the one way fluxfleet reads one. Nothing makes it hang or read without end: it opens
    without blocking (a FIFO), refuses anything but a regular file (a device, a directory) and a file over 16 MiB,
    and says in one line why it cannot read (a symlink loop: ELOOP)."""

    def refused(message: str) -> SpecError:
        return SpecError([SpecIssue(file, "-", message)])

    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # what was opened, not what the name was a moment ago
                raise refused("not a regular file")
            with os.fdopen(descriptor, "rb", closefd=False) as stream:
                data = stream.read(FILE_MAX_BYTES + 1)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise refused(f"cannot read: {error.strerror or error}") from None
    if len(data) > FILE_MAX_BYTES:
        raise refused(f"larger than {FILE_MAX_BYTES // 2**20} MiB, the most fluxfleet reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refused(f"not UTF-8 text (byte {error.start})") from None


YAML_MAX_VALUES = 100_000  # values of one document, an alias counted each time it is used: far beyond any stack
YAML_MAX_NODES = 20_000  # values written in one file: far beyond any stack, and parsed (in Python) in seconds
YAML_MAX_DEPTH = 64  # levels of nesting
INT_MAX_DIGITS = 4300  # int() refuses longer decimal strings (sys.get_int_max_str_digits)
_DECIMAL = re.compile(r"[-+]?[0-9_]+")


class _TooBig(Exception):
    """A document refused while it is parsed: at which line, and why."""

    def __init__(self, line: int, why: str):
        super().__init__(why)
        self.line, self.why = line, why


@functools.cache
def _bounded_parser(base: type) -> type:
    """ruamel's parser `base`, refusing as it parses (so before the composer, which recurses, and before any alias is
    expanded) a document of more than YAML_MAX_NODES nodes or nested deeper than YAML_MAX_DEPTH, and an integer
    too long for int()."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, NodeEvent, ScalarEvent

    class BoundedParser(base):  # type: ignore[misc, valid-type]
        nodes = depth = 0

        def get_event(self) -> Any:
            event = super().get_event()
            if isinstance(event, CollectionEndEvent):
                self.depth -= 1
            elif isinstance(event, NodeEvent):
                self.nodes += 1
                self.depth += isinstance(event, CollectionStartEvent)
                line = event.start_mark.line + 1
                if self.nodes > YAML_MAX_NODES:
                    raise _TooBig(line, f"more than {YAML_MAX_NODES:,} values")
                if self.depth > YAML_MAX_DEPTH:
                    raise _TooBig(line, f"nested deeper than {YAML_MAX_DEPTH} levels")
                plain = isinstance(event, ScalarEvent) and event.style is None
                if plain and len(event.value) > INT_MAX_DIGITS and _DECIMAL.fullmatch(event.value):
                    raise _TooBig(line, f"a number of more than {INT_MAX_DIGITS:,} digits")
            return event

    return BoundedParser


def _yaml(typ: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ=typ, pure=True)
    yaml.Parser = _bounded_parser(yaml.Parser)
    return yaml


def read_yaml(path: Path, file: str, where: Callable[[Loc], str] | None = None) -> Any:
    """A YAML (or JSON) document, or a SpecError saying in one line why it cannot be read. Hostile input ends
    fast: see read_text, _bounded_parser and check_expansion (`where` names its key paths; default: as fleet.yaml)."""
    from ruamel.yaml.error import YAMLError

    text = read_text(path, file)
    try:
        document = _yaml("safe").load(text)
    except _TooBig as error:
        raise SpecError([SpecIssue(file, f"line {error.line}", f"not read: {error.why}")]) from None
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["?"])[0]
        problem = problem.split(" with value ")[0]  # a duplicate key: not its values, which may be long or secret
        line = f"line {mark.line + 1}" if mark else "-"
        raise SpecError([SpecIssue(file, line, f"not valid YAML: {bounded(problem, 200)}")]) from None
    except (ValueError, TypeError, RecursionError) as error:  # from a constructor: a date out of range, a list key
        problem = (str(error).splitlines() or [type(error).__name__])[0]
        raise SpecError([SpecIssue(file, "-", f"not valid YAML: {bounded(problem, 200)}")]) from None
    check_expansion(document, file, where or (lambda loc: key_path(loc, "")))
    return document


def check_expansion(document: Any, file: str, where: Callable[[Loc], str]) -> None:
    """Refuse a document that expands (through YAML aliases: a "billion laughs") to more than YAML_MAX_VALUES values
    or nests deeper than YAML_MAX_DEPTH (a recursive alias `&a [*a]` too), at the key path where the limit is hit.
    The loader shares what an alias names, so loading was fast; this walk is iterative and counts a value each time
    it is reached, so it ends after at most YAML_MAX_VALUES of them."""
    count = 1
    pending: list[tuple[Any, Any, int]] = [(document, None, 0)]  # (value, (parent's trail, key), depth)
    while pending:
        value, trail, depth = pending.pop()
        if not isinstance(value, (Mapping, list)) or not value:
            continue
        count += len(value)
        if depth >= YAML_MAX_DEPTH or count > YAML_MAX_VALUES:
            loc: list[Any] = []
            while trail:
                trail, key = trail
                loc.append(key)
            why = f"nested deeper than {YAML_MAX_DEPTH} levels" if depth >= YAML_MAX_DEPTH else ""
            why = why or f"expands to more than {YAML_MAX_VALUES:,} values (YAML aliases?)"
            raise SpecError([SpecIssue(file, where(tuple(reversed(loc))), f"not read: {why}")])
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        pending.extend((item, (trail, key), depth + 1) for key, item in items)


def _stack_file_path(loc: Loc) -> str:
    """A key path of a stack file as errors name config keys: ('config', 'fluxfleet:flux', 'configurations') ->
    'fluxfleet:flux.configurations'."""
    if len(loc) < 2 or loc[0] != "config" or not isinstance(loc[1], str):
        return key_path(loc, "")
    namespace, colon, name = loc[1].partition(":")
    return key_path((name, *loc[2:]), namespace) if colon else key_path(loc[1:])


def load_stack_file(path: Path, display: str | None = None) -> Stack:
    """Read and validate `Pulumi.<stack>.yaml` directly, as `plan` does (no Pulumi CLI, no decryption)."""
    file = display or str(path)
    name = stack_name(path)
    document = read_yaml(path, file, _stack_file_path)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise SpecError([SpecIssue(file, "-", "a stack file is a YAML mapping with a `config:` key")])
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise SpecError([SpecIssue(file, "config", "must be a mapping of config keys")])
    raw, issues = split_config(file, config)
    try:
        spec = parse_spec(raw, file=file, default_location=config.get("azure-native:location"))
    except SpecError as error:
        raise SpecError([*issues, *error.issues]) from None
    if issues:
        raise SpecError(issues)
    return Stack(name, file, spec)


class StackFileLines:
    """Where keys are in one stack file, for annotations: the file is read and parsed once, however many keys are
    looked up. Every answer is None when the file cannot be read or parsed, or has no `config:`."""

    def __init__(self, path: Path):
        from ruamel.yaml.error import YAMLError

        try:
            self.config = _yaml("rt").load(read_text(path, str(path)))["config"]
        except (SpecError, _TooBig, YAMLError, ValueError, TypeError, KeyError, RecursionError):
            self.config = None

    def line(self, keys: Sequence[str | int]) -> int | None:
        """The 1-based line of the deepest of `config:` → `keys` present."""
        node, line = self.config, None
        for key in keys:
            try:
                position = node.lc.key(key) if isinstance(key, str) else node.lc.item(key)
                node = node[key]
            except (AttributeError, KeyError, IndexError, TypeError):
                break
            if not position:  # a node ruamel keeps no positions for (an !!omap, a !!set)
                break
            line = position[0] + 1
        return line


PolicyLevel = Literal["mandatory", "advisory", "disabled"]
POLICY_LEVELS: tuple[str, ...] = typing.get_args(PolicyLevel)


def load_policy_levels(path: Path, known: Sequence[str]) -> dict[str, str]:
    """A policy config file (YAML or JSON), the shape the CrossGuard pack takes: policy id → level, or
    policy id → {enforcementLevel: level}."""
    file = str(path)
    document = read_yaml(path, file)
    if not isinstance(document, dict):
        raise SpecError([SpecIssue(file, "-", "a map of policy id to mandatory, advisory or disabled")])
    levels: dict[str, str] = {}
    issues: list[SpecIssue] = []
    for policy, value in document.items():
        where = bounded(str(policy), KEY_PART_MAX)
        if policy not in known:
            hint = difflib.get_close_matches(str(policy), known, n=1) if len(str(policy)) <= KEY_PART_MAX else []
            issues.append(SpecIssue(file, where, "unknown policy" + (f" (did you mean {hint[0]!r}?)" if hint else "")))
            continue
        if isinstance(value, dict):
            where, value = f"{where}.enforcementLevel", value.get("enforcementLevel")
        if value not in POLICY_LEVELS:
            issues.append(SpecIssue(file, where, f"{shown(value)}: use one of {', '.join(POLICY_LEVELS)}"))
            continue
        levels[policy] = value
    if issues:
        raise SpecError(issues)
    return levels


# --------------------------------------------------------------------------------------------- the fleet rollout

FLEET_FILE = "fleet.yaml"


class StageSpec(_Spec):
    name: DnsLabel
    stacks: Annotated[list[Line], Field(min_length=1)]  # stack names or globs such as prod-*
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    max_failures: Annotated[int, Field(ge=0)] = 0
    after_stage_wait: Duration | None = None  # bake time before the next stage
    approval: bool = False  # stop before this stage until `--approve NAME`


class GateSpec(_Spec):
    flux_compliance: bool = True  # after each stack: every Flux configuration Compliant at the pinned ref
    timeout: Duration = 15 * 60
    poll_interval: Duration = 30


class FleetSpec(_Spec):
    gate: GateSpec = GateSpec()
    # A stack whose update would replace or delete its cluster fails before anything is applied.
    refuse_cluster_replacement: bool = True
    stages: Annotated[list[StageSpec], Field(min_length=1)]


@dataclass(frozen=True)
class Stage:
    """A stage with its globs resolved to stack names, in the order they are listed (globs sorted)."""

    name: str
    stacks: tuple[str, ...]
    max_concurrency: int
    max_failures: int
    after_stage_wait: int  # seconds, 0 for none
    approval: bool


@dataclass(frozen=True)
class Fleet:
    file: str
    gate: GateSpec
    stages: tuple[Stage, ...]
    unstaged: tuple[str, ...]  # stacks in no stage: never rolled out (a warning)
    refuse_cluster_replacement: bool = True

    def stage_of(self, stack: str) -> Stage:
        return next(stage for stage in self.stages if stack in stage.stacks)


def load_fleet(path: Path, known_stacks: Sequence[str], display: str | None = None) -> Fleet:
    """Read and validate `fleet.yaml` against the stacks that exist: every problem of the file in one SpecError."""
    file = display or str(path)
    document = read_yaml(path, file)
    if not isinstance(document, Mapping):
        raise SpecError([SpecIssue(file, "-", "a fleet file is a YAML mapping with `stages:`")])
    try:
        spec = FleetSpec.model_validate(dict(document), by_alias=True)
    except ValidationError as error:
        raise SpecError(_pydantic_issues(file, error, FleetSpec, namespace="")) from None
    issues: list[SpecIssue] = []
    owner: dict[str, str] = {}
    stages = []
    for index, stage in enumerate(spec.stages):
        if any(other.name == stage.name for other in spec.stages[:index]):
            issues.append(
                SpecIssue(file, key_path(("stages", index, "name"), ""), f"duplicate stage {shown(stage.name)}")
            )
        members: list[str] = []
        for position, pattern in enumerate(stage.stacks):
            where = key_path(("stages", index, "stacks", position), "")
            matched = sorted(name for name in known_stacks if fnmatch.fnmatchcase(name, pattern))
            if not matched:
                issues.append(
                    SpecIssue(file, where, f"{shown(pattern)} matches no stack (known: {listed(known_stacks)})")
                )
            for name in matched:
                if name in owner and owner[name] != stage.name:
                    issues.append(
                        SpecIssue(file, where, f"stack {shown(name)} is already in stage {shown(owner[name])}")
                    )
                elif name not in members:
                    owner[name] = stage.name
                    members.append(name)
        stages.append(
            Stage(
                stage.name,
                tuple(members),
                stage.max_concurrency,
                stage.max_failures,
                stage.after_stage_wait or 0,
                stage.approval,
            )
        )
    if issues:
        raise SpecError(issues)
    unstaged = tuple(name for name in known_stacks if name not in owner)
    return Fleet(file, spec.gate, tuple(stages), unstaged, spec.refuse_cluster_replacement)
