"""A stack's spec, read the two ways fluxfleet reads it: from its stack file (`plan` and every offline command) and
from `pulumi.Config` (inside `pulumi up`). Both merge the stack's profiles under its own keys through the same code,
so `pulumi up -s STACK` builds what `fluxfleet plan` shows."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.spec.config import read_config, split_config
from modules.spec.errors import ISSUE_PART_MAX, NAMESPACE, SpecError, SpecIssue, bounded, key_path
from modules.spec.files import read_yaml, report_name, stack_files, stack_name
from modules.spec.origins import Origins
from modules.spec.profiles import PROFILES_KEY, ProfileLibrary, merge, override, profile_names
from modules.spec.flux_config import REF_KEYS
from modules.spec.stack import Stack, StackSpec, parse_spec

# Set by `fluxfleet rollout` for the update that rolls a stack back: the refs it ran before (never written to
# any file; the stage's pin in fleet.yaml is restored separately, once its whole stage is rolled back).
ROLLBACK_REFS_ENV = "FLUXFLEET_ROLLBACK_REFS"
REF_KEY_NAMES = tuple(dict.fromkeys(key for keys in REF_KEYS.values() for key in keys))  # branch, tag, ... digest
# The project's root: profiles are found from here, never from the working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StackConfig:
    """A stack's effective config before validation: its profiles' keys merged under its own, with the file each
    value came from. `issues` are the problems of its keys (namespaces) found on the way."""

    name: str
    file: str
    raw: dict[str, Any]
    origins: Origins
    profiles: tuple[str, ...] = ()  # every profile it uses, in merge order
    default_location: Any = None  # azure-native:location
    issues: list[SpecIssue] = field(default_factory=list)
    environment: Any = None  # azure-native:environment (None: not set)
    provider_subscription: Any = None  # azure-native:subscriptionId (None: not set)

    def spec(self, plain_strings_are_secret: bool = False) -> Stack:
        """The validated stack: a SpecError with every problem of the stack file and of its profiles' values."""
        try:
            spec = parse_spec(
                self.raw,
                file=self.file,
                default_location=self.default_location,
                environment=self.environment,
                provider_subscription=self.provider_subscription,
                plain_strings_are_secret=plain_strings_are_secret,
                origins=self.origins,
            )
        except SpecError as error:
            raise SpecError([*self.issues, *error.issues]) from None
        if self.issues:
            raise SpecError(self.issues)
        return Stack(self.name, self.file, spec, self.profiles, self.origins)

    @property
    def declared(self) -> tuple[str, ...]:
        """The Flux configurations it declares, by name, as written (before validation)."""
        flux = self.raw.get("flux")
        configurations = flux.get("configurations") if isinstance(flux, Mapping) else None
        return tuple(str(name) for name in configurations) if isinstance(configurations, Mapping) else ()


def compose(
    name: str,
    file: str,
    own: Mapping[str, Any],
    library: ProfileLibrary,
    default_location: Any = None,
    *,
    pinned: bool = True,
    rollback: Mapping[str, Mapping[str, str]] | None = None,
    environment: Any = None,
    provider_subscription: Any = None,
) -> StackConfig:
    """The effective config of a stack whose own `fluxfleet:` keys (by name) are `own`: its profiles, then its own
    keys, then (`pinned`) the refs its stage pins in fleet.yaml, then the refs a rollback returns it to."""
    own = dict(own)
    names, issues = profile_names(own.pop(PROFILES_KEY, None), file)
    try:
        chain = library.chain(names, file)
        pins = library.pins_of(name) if pinned else {}
    except SpecError as error:
        raise SpecError([*issues, *error.issues]) from None
    raw, origins = merge([*((profile.file, profile.raw) for profile in chain), (file, own)], root=file)
    configurations = (raw.get("flux") or {}).get("configurations") if isinstance(raw.get("flux"), Mapping) else None
    layer = {}
    for configuration, pin in pins.items():
        declared = configurations.get(configuration) if isinstance(configurations, Mapping) else None
        if not isinstance(declared, Mapping):
            continue  # the stack does not run this configuration
        kind = _ref_source(declared)
        keys = pin.keys_for(kind) if kind else None
        if keys is None:
            what = {"git": "a git source", "oci": "an OCI source"}.get(kind or "", "no git or OCI source")
            message = f"pins {pin}, which stack {name}'s configuration {configuration} cannot take: it has {what}"
            issues.append(SpecIssue(library.fleet_file, key_path(("pins", configuration), ""), message))
            continue
        layer[configuration] = {kind: keys}
    if layer:
        override(raw, origins, library.fleet_file, {"flux": {"configurations": layer}})
    if platform := platform_layer(raw, library.platform_pins_of(name) if pinned else {}):
        override(raw, origins, library.fleet_file, platform)
    layer = {}
    for configuration, ref in (rollback or {}).items():
        declared = configurations.get(configuration) if isinstance(configurations, Mapping) else None
        kind = _ref_source(declared) if isinstance(declared, Mapping) else None
        if kind is None or not set(ref) <= set(REF_KEYS[kind]):
            message = f"rolls back configuration {configuration}, which stack {name} does not run from such a source"
            issues.append(SpecIssue(ROLLBACK_REFS_ENV, key_path((configuration,), ""), message))
            continue
        layer[configuration] = {kind: {**dict.fromkeys(REF_KEYS[kind]), **ref}}
    if layer:
        override(raw, origins, ROLLBACK_REFS_ENV, {"flux": {"configurations": layer}})
    profiles = tuple(p.name for p in chain)
    return StackConfig(name, file, raw, origins, profiles, default_location, issues, environment, provider_subscription)


def platform_layer(raw: Mapping[str, Any], pins: Mapping[str, str]) -> dict[str, Any]:
    """The keys a stage's platform pins set over a stack's merged config: `kubernetes` its AKS cluster's
    kubernetesVersion (an Arc cluster's version is not Azure's to set: skipped, see fleet.arc_skipped),
    `flux-extension` the extension's version (and autoUpgradeMinorVersion off, which a pinned version needs)."""
    from modules.spec.fleet import EXTENSION_PIN, KUBERNETES_PIN

    layer: dict[str, Any] = {}
    cluster = raw.get("cluster")
    if KUBERNETES_PIN in pins and isinstance(cluster, Mapping) and cluster.get("kind") == "aks":
        layer["cluster"] = {"kubernetesVersion": pins[KUBERNETES_PIN]}
    if EXTENSION_PIN in pins:
        extension = {"version": pins[EXTENSION_PIN], "autoUpgradeMinorVersion": False}
        layer["flux"] = {"extension": extension}
    return layer


def _ref_source(declared: Mapping[str, Any]) -> str | None:
    """Which source of a configuration as written (git, oci) a ref is pinned on; None for one without a ref."""
    return next((kind for kind in REF_KEYS if isinstance(declared.get(kind), Mapping)), None)


def read_stack_config(
    path: Path,
    display: str | None = None,
    library: ProfileLibrary | None = None,
    *,
    pinned: bool = True,
    config: Mapping[Any, Any] | None = None,
) -> StackConfig:
    """A stack file's effective config. `library` holds the profiles and the stages' pins (default: those beside the
    stack file); share one across the stacks of a directory, so that each is read once. `config`: the stack file's
    `config:` map, when the caller has read it (read_config; plan's cache keeps it by the file's text)."""
    file = display or str(path)
    name = stack_name(path)
    config = read_config(path, file, "stack file") if config is None else config
    own, issues = split_config(file, config)
    library = library or ProfileLibrary(path.parent, str(Path(file).parent))
    location, environment = config.get("azure-native:location"), config.get("azure-native:environment")
    subscription = config.get("azure-native:subscriptionId")
    stack = compose(
        name, file, own, library, location, pinned=pinned, environment=environment, provider_subscription=subscription
    )
    stack.issues[:0] = issues
    return stack


def load_stack_file(path: Path, display: str | None = None, library: ProfileLibrary | None = None) -> Stack:
    """Read and validate `Pulumi.<stack>.yaml` and its profiles directly, as `plan` does (no Pulumi CLI, no
    decryption)."""
    return read_stack_config(path, display, library).spec()


def load_stacks(paths: Sequence[Path], display: Callable[[Path], str] = str) -> list[Stack]:
    """Every stack of `paths` (files of one directory), each profile read once; one SpecError with every problem of
    every file, and of every stack whose cluster another stack file there names too."""
    if not paths:
        return []
    library = ProfileLibrary(paths[0].parent, display(paths[0].parent))
    stacks, issues = [], []
    shared = shared_clusters(paths, display)
    for path in paths:
        try:
            stacks.append(load_stack_file(path, display(path), library))
        except SpecError as error:
            issues += error.issues
        if report_name(path) in shared:
            issues.append(shared[report_name(path)])
    if issues:
        raise SpecError(issues)
    return stacks


def unpinned_stacks(
    stacks_dir: Path, display: Callable[[Path], str] = str, library: ProfileLibrary | None = None
) -> Callable[[str], StackConfig]:
    """`read(stack)`: a stack of `stacks_dir` as its files write it, without fleet.yaml's pins (what fleet.yaml is
    checked against), each stack and profile read once. A SpecError when its stack file or a profile cannot be
    read."""
    library = library or ProfileLibrary(stacks_dir, display(stacks_dir))
    read: dict[str, StackConfig | SpecError] = {}
    listed: dict[str, Path] = {}  # the directory's stack files, listed once: a fleet of thousands asks for each

    def unpinned(name: str) -> StackConfig:
        if name not in read:
            try:
                if not listed:  # a file of the directory amiss: each stack is looked for alone, as it is named
                    with suppress(SpecError):
                        listed.update((report_name(path), path) for path in stack_files(stacks_dir))
                [path] = [listed[name]] if name in listed else stack_files(stacks_dir, [name])
                read[name] = read_stack_config(path, display(path), library, pinned=False)
            except SpecError as error:
                read[name] = error
        if isinstance(found := read[name], SpecError):
            raise SpecError(found.issues)
        return found

    return unpinned


def cluster_kinds(stacks_dir: Path, display: Callable[[Path], str] = str) -> Callable[[str], Any]:
    """`kind_of(stack)`: the cluster kind (aks, arc) a stack of `stacks_dir` writes, its profiles merged, read on
    demand; a SpecError when its file cannot be read."""
    read = unpinned_stacks(stacks_dir, display)

    def kind_of(name: str) -> Any:
        cluster = read(name).raw.get("cluster")
        return cluster.get("kind") if isinstance(cluster, Mapping) else None

    return kind_of


def stack_profiles(stacks_dir: Path, display: Callable[[Path], str] = str) -> Callable[[str], tuple[str, ...]]:
    """`profiles_of(stack)`: the profiles a stack of `stacks_dir` uses, read on demand, each profile once. A SpecError
    when its stack file or a profile cannot be read."""
    read = unpinned_stacks(stacks_dir, display)
    return lambda name: read(name).profiles


def project_stacks_dir(root: Path | None = None) -> tuple[Path, str]:
    """The directory of the project's stack files (Pulumi.yaml's `stackConfigDir`, else the project's root), and how
    messages name it."""
    root = root or PROJECT_ROOT
    document = read_yaml(root / "Pulumi.yaml", "Pulumi.yaml")
    configured = document.get("stackConfigDir") if isinstance(document, Mapping) else None
    relative = configured if isinstance(configured, str) and configured else "."
    return root / relative, relative


def rollback_refs(text: str | None) -> dict[str, dict[str, str]]:
    """The refs `fluxfleet rollout` returns a stack to (ROLLBACK_REFS_ENV: JSON, configuration -> its ref keys),
    or {} when it is not set. A SpecError when it is not such a mapping."""
    if not text:
        return {}
    try:
        refs = json.loads(text)
    except ValueError:
        refs = None
    if not isinstance(refs, dict):
        raise SpecError([SpecIssue(ROLLBACK_REFS_ENV, "-", "must be a JSON object: configuration -> ref")])
    for configuration, ref in refs.items():
        if (
            not isinstance(ref, dict)
            or not ref
            or not set(ref) <= set(REF_KEY_NAMES)
            or not all(isinstance(value, str) and value for value in ref.values())
        ):
            message = f"must map ref keys ({', '.join(REF_KEY_NAMES)}) to strings"
            raise SpecError([SpecIssue(ROLLBACK_REFS_ENV, key_path((configuration,), ""), message)])
    return refs


def spec_from_pulumi_config() -> Stack:
    """The spec of the running Pulumi stack, from `pulumi.Config`, with the project's profiles merged under it. Every
    config key the engine passed is checked as a stack file's are (see split_config); a `fluxfleet:` key the spec
    does not know is an error."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    config = pulumi.Config(NAMESPACE)
    stacks_dir, display = project_stacks_dir()
    file = str(Path(display) / f"Pulumi.{pulumi.get_stack()}.yaml")
    keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}  # every key the stack sets
    names, issues = split_config(file, dict.fromkeys(keys))
    structured = (*StackSpec.model_fields, PROFILES_KEY)
    own: dict[str, Any] = {}
    for name in [*structured, *(name for name in names if name not in structured)]:
        try:  # an unknown key is read as the string it is, for pydantic to name it
            value = config.get_object(name) if name in structured else config.get(name)
        except pulumi.ConfigTypeError:
            raise SpecError([SpecIssue(file, key_path((name,)), "must be a structured (YAML or JSON) value")]) from None
        except (RecursionError, ValueError):  # json.loads: nested too deep, or an integer too long for int()
            message = "cannot be read: nested too deeply or a number too long"
            raise SpecError([SpecIssue(file, key_path((name,)), message)]) from None
        if value is not None:
            own[name] = value
    library = ProfileLibrary(stacks_dir, display)
    try:
        azure_native = pulumi.Config("azure-native")
        location, environment = azure_native.get("location"), azure_native.get("environment")
        rollback = rollback_refs(os.environ.get(ROLLBACK_REFS_ENV))
        stack = compose(
            pulumi.get_stack(),
            file,
            own,
            library,
            location,
            rollback=rollback,
            environment=environment,
            provider_subscription=azure_native.get("subscriptionId"),
        )
    except SpecError as error:
        raise SpecError([*issues, *error.issues]) from None
    stack.issues[:0] = issues
    return stack.spec(plain_strings_are_secret=pulumi.runtime.is_config_secret(f"{NAMESPACE}:flux"))


def shared_clusters(
    paths: Sequence[Path], display: Callable[[Path], str] = str, known: Mapping[Path, Any] | None = None
) -> dict[str, SpecIssue]:
    """The stacks of `paths` whose cluster another stack file beside them names too (subscription, resource group
    and name; Azure compares them without case; a stack without a subscription is in the default one): two stacks
    would fight over one cluster, whichever of them a command reads. Every stack file of each directory is read, and
    only as far as its cluster's identity (its profiles merged in), so the pair is found when the other stack is not
    named, or not valid otherwise; a file that cannot be read that far is left to its own errors. One issue per stack
    of `paths` concerned, naming the others. `known`: the merged `cluster` value of stack files the caller has
    already read (plan's workers have), which are not read again."""
    wanted = {(path.parent, report_name(path)) for path in paths}
    issues = {}
    for directory in dict.fromkeys(path.parent for path in paths):
        try:
            files = stack_files(directory)
        except SpecError:
            continue  # a name that is no stack name: the command that listed the directory reports it
        library = ProfileLibrary(directory, display(directory))
        by_cluster: dict[tuple[str | None, str, str], list[tuple[str, str, str]]] = {}
        for path in files:
            if known is not None and path in known:
                cluster = known[path]
            else:
                try:
                    cluster = read_stack_config(path, display(path), library, pinned=False).raw.get("cluster")
                except SpecError:
                    continue
            identity = _cluster_identity(cluster)
            if identity is not None:
                key, shown_as = identity
                by_cluster.setdefault(key, []).append((stack_name(path), display(path), shown_as))
        for stacks in by_cluster.values():
            for name, file, shown_as in stacks if len(stacks) > 1 else ():
                if (directory, name) in wanted:
                    others = ", ".join(other for other, _, _ in stacks if other != name)
                    message = f"the same cluster as stack {others} ({shown_as}): two stacks would update one cluster"
                    issues[name] = SpecIssue(file, key_path(("cluster", "name")), f"{message}; keep one")
    return issues


def _cluster_identity(cluster: Any) -> tuple[tuple[str | None, str, str], str] | None:
    """The key a cluster is known by in Azure (subscription, resource group, name: case-insensitive) and how a message
    shows it; None when the stack does not say which cluster (its own errors say so)."""
    if not isinstance(cluster, Mapping):
        return None
    subscription, group, name = (cluster.get(key) for key in ("subscriptionId", "resourceGroup", "name"))
    if not (isinstance(group, str) and isinstance(name, str) and isinstance(subscription, str | None)):
        return None
    key = (subscription.lower() if subscription else None, group.lower(), name.lower())
    return key, bounded(f"{group}/{name}", ISSUE_PART_MAX)
