"""A stack's `fluxfleet:` config as a whole: `StackSpec` (the cluster, resource providers and features, and Flux: the
extension and the configurations), the rules across its parts (the extension's workload identity for the sources
that authenticate as it, Key Vaults of the stack's cloud, plaintext credentials anywhere), and `parse_spec`, which
runs every rule of every part and reports all problems at once. The models of the parts and their rules are in
cluster.py, extension.py, flux_config.py and kustomization.py."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from modules.clouds import CLOUDS, DEFAULT_CLOUD, ENVIRONMENTS
from modules.spec.cluster import ClusterSpec, cluster_issues
from modules.spec.credentials import credential_kind, is_credential_key, is_reference
from modules.spec.errors import (
    KEY_PART_MAX,
    NAMESPACE,
    Loc,
    SpecError,
    SpecIssue,
    is_pulumi_secure,
    key_path,
    shown,
)
from modules.spec.extension import ExtensionSpec, extension_issues, extension_workload_identity
from modules.spec.fields import GUID, SpecModel, location_problem, pattern, secret_value_problem
from modules.spec.files import check_expansion
from modules.spec.findings import Finding, Partner, duplicate_issues
from modules.spec.flux_config import REF_KEYS, ConfigurationSpec, configuration_issues, flux_object_collisions
from modules.spec.origins import Origins
from modules.spec.secrets import PLAINTEXT_SECRET, ConfigSecret, KeyVaultRef, SecretSource
from modules.spec.windows import WindowSpec


REQUIRED_PROVIDERS = ("Microsoft.Kubernetes", "Microsoft.ContainerService", "Microsoft.KubernetesConfiguration")


# --------------------------------------------------------------------------------------------- models


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
    # `fluxfleet:windows`: when a rollout may start this stack's update (and inside its stage's windows too, when
    # the stage has some); none: any time
    windows: list[WindowSpec] = []

    def platform_versions(self) -> dict[str, str]:
        """{kubernetes: "1.35", flux-extension: "1.22.2"}, of those the spec sets (as a stage would pin them)."""
        versions = {"kubernetes": self.cluster.kubernetes_version, "flux-extension": self.flux.extension.version}
        return {name: version for name, version in versions.items() if version is not None}

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


def _semantic_issues(spec: StackSpec) -> Iterator[Finding]:
    yield from cluster_issues(spec.cluster)
    yield from duplicate_issues(("providers",), spec.providers)
    missing = [p for p in REQUIRED_PROVIDERS if p not in spec.providers]
    if missing:
        yield ("providers",), f"Flux on Azure needs {', '.join(missing)} registered too"
    yield from duplicate_issues(("features",), spec.features)
    yield from extension_issues(spec.flux.extension, has_configurations=bool(spec.flux.configurations))
    for name, configuration in spec.flux.configurations.items():
        yield from configuration_issues(("flux", "configurations", name), name, configuration)
    yield from flux_object_collisions(spec.flux.configurations)
    yield from _source_identity_issues(spec)


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
