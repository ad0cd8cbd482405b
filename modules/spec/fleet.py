"""`stacks/fleet.yaml`: the stages a rollout goes through."""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PlainValidator, ValidationError, model_validator

from modules.spec.cluster import minor_of
from modules.spec.errors import SpecError, SpecIssue, bounded, key_path, listed, shown
from modules.spec.files import YAML_MAX_VALUES, YamlTooBig, read_yaml, yaml_round_trip
from modules.spec.profiles import PROFILE_NAME, PROFILE_NAME_RULE
from modules.spec.fields import DnsLabel, Duration, Line, SpecModel, dns_label_problem, pattern
from modules.spec.flux_config import OCI_DIGEST, REF_KEYS
from modules.spec.stack import pydantic_issues
from modules import flux_extension_versions, kubernetes_versions
from modules.spec.windows import WindowSpec


# --------------------------------------------------------------------------------------------- the fleet rollout


ProfileName = Annotated[str, pattern(PROFILE_NAME.pattern, f"a profile name ({PROFILE_NAME_RULE})")]


class PinSpec(SpecModel):
    """The ref a stage pins one Flux configuration's source to, for all its stacks: a tag (git or OCI), a commit with
    the branch it is on (git: the API needs both), or an artifact digest (OCI)."""

    tag: Line | None = None
    commit: Annotated[str, pattern(r"[0-9a-f]{7,40}", "a commit SHA (7-40 hex characters)")] | None = None
    branch: Line | None = None
    digest: Annotated[str, pattern(OCI_DIGEST, "an artifact digest (sha256: and 64 lower-case hex)")] | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> PinSpec:
        if sum(value is not None for value in (self.tag, self.commit, self.digest)) != 1:
            raise ValueError("pin exactly one of tag, commit (git) or digest (OCI)")
        if self.commit and not self.branch:
            raise ValueError("a commit needs the branch it is on: the Flux configuration API takes both")
        if self.branch and not self.commit:
            raise ValueError("a tag or a digest is pinned alone: no branch")
        return self

    @property
    def ref_keys(self) -> dict[str, str]:
        """The pin as the source keys it sets: `{"tag": ...}`, `{"commit": ..., "branch": ...}`, `{"digest": ...}`."""
        if self.commit:
            return {"commit": self.commit, "branch": self.branch or ""}
        return {"tag": self.tag} if self.tag else {"digest": self.digest or ""}

    def keys_for(self, kind: str) -> dict[str, str | None] | None:
        """The pin as the keys of a `kind` source (git, oci) over whatever ref the stack or its profiles wrote (None
        removes one); None when that kind of source cannot take it (a commit on OCI, a digest on git)."""
        if not set(self.ref_keys) <= set(REF_KEYS[kind]):
            return None
        return {**dict.fromkeys(REF_KEYS[kind]), **self.ref_keys}

    def __str__(self) -> str:
        if self.commit:
            return f"commit {self.commit} (branch {self.branch})"
        return f"tag {self.tag}" if self.tag else f"digest {self.digest}"


# The pins of fleet.yaml that name no Flux configuration but the platform's own versions: a scalar each.
KUBERNETES_PIN, EXTENSION_PIN = "kubernetes", "flux-extension"
PLATFORM_PINS = (KUBERNETES_PIN, EXTENSION_PIN)
_KUBERNETES_VERSION = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.\d{1,6})?")


def platform_pin_problem(key: str, value: Any) -> str | None:
    """Why `pins.<key>` (kubernetes, flux-extension) cannot be pinned, or None: a scalar version, a Kubernetes minor
    (1.36) or patch (1.36.2) inside the dated support table, an extension release inside its supported window."""
    if isinstance(value, Mapping):
        return (
            f"{key} pins the platform's own version (a scalar such as {_EXAMPLE[key]}), not a Flux configuration: "
            f"a configuration named {key} cannot be pinned"
        )
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f'write the version in quotes ({key}: "{value}"): unquoted, YAML reads it as a number (1.30 is 1.3)'
    if not isinstance(value, str):
        return f"a version such as {_EXAMPLE[key]}, not {shown(value)}"
    if key == KUBERNETES_PIN:
        match = _KUBERNETES_VERSION.fullmatch(value)
        if match is None:
            return f"{shown(value)} is not a Kubernetes version such as 1.36 or 1.36.2"
        if (int(match[1]), int(match[2])) not in kubernetes_versions.AKS_SUPPORTED_MINORS:
            return (
                f"{value} is not a Kubernetes minor AKS supports ({kubernetes_versions.supported_window()}, "
                f"{kubernetes_versions.TABLE_FILE} as of {kubernetes_versions.AS_OF})"
            )
        return None
    if flux_extension_versions.parse(value) is None:
        return f"{shown(value)} is not an extension version such as 1.23.0"
    return flux_extension_versions.pin_problem(value)


_EXAMPLE = {KUBERNETES_PIN: '"1.36"', EXTENSION_PIN: "1.23.0"}


def _split_platform_pins(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """fleet.yaml without the platform pins of its stages (pydantic reads the rest), and those pins by stage index,
    as written."""
    stages = document.get("stages")
    if not isinstance(stages, list):
        return dict(document), {}
    platform: dict[int, dict[str, Any]] = {}
    rest = []
    for index, stage in enumerate(stages):
        pins = stage.get("pins") if isinstance(stage, Mapping) else None
        if isinstance(pins, Mapping) and any(key in pins for key in PLATFORM_PINS):
            platform[index] = {key: pins[key] for key in PLATFORM_PINS if key in pins}
            stage = {**stage, "pins": {key: value for key, value in pins.items() if key not in PLATFORM_PINS}}
        rest.append(stage)
    return {**document, "stages": rest}, platform


def _percent(value: Any) -> str:
    if not isinstance(value, str) or not (match := PERCENT.fullmatch(value)) or Fraction(match[1]) > 100:
        raise ValueError(f"{shown(value)} is not a percentage such as 95% (0% to 100%, in quotes or not)")
    return value


def _budget(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (match := PERCENT.fullmatch(value)) and Fraction(match[1]) <= 100:
        return value
    raise ValueError(f"{shown(value)} is not a number of stacks (0 or more) or a percentage of them such as 10%")


PERCENT = re.compile(r"(\d{1,3}(?:\.\d{1,2})?)%")
Percent = Annotated[str, PlainValidator(_percent)]
Budget = Annotated[int | str, PlainValidator(_budget)]


def percent_of(value: str) -> Fraction:
    """`10%` as 10."""
    match = PERCENT.fullmatch(value)
    assert match, value
    return Fraction(match[1])


def failure_budget(max_failures: int | str, stacks: int) -> int:
    """How many of a stage's `stacks` may fail: `maxFailures` itself, or its percentage of them rounded down (10% of
    15 stacks: 1)."""
    if isinstance(max_failures, int):
        return max_failures
    return math.floor(percent_of(max_failures) * stacks / 100)


def success_needed(min_success: str | None, stacks: int) -> int:
    """How many of a stage's `stacks` must succeed under `minSuccess`, rounded up (95% of 30 stacks: 29); 0 for
    none."""
    return 0 if min_success is None else math.ceil(percent_of(min_success) * stacks / 100)


class StageSpec(SpecModel):
    name: DnsLabel
    stacks: Annotated[list[Line], Field(min_length=1)] | None = None  # stack names or globs such as prod-*
    # and every stack that uses one of these profiles (directly or through another) that no stage names
    profiles: Annotated[list[ProfileName], Field(min_length=1)] | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    # How many stacks may fail: a number, or a percentage of the stage's stacks rounded down (`10%`)
    max_failures: Budget = 0
    # The share of the stage's stacks that must succeed (`95%`, rounded up): under it the stage fails, however few
    # failed (a stack deferred, or not started, is no success)
    min_success: Percent | None = None
    after_stage_wait: Duration | None = None  # bake time before the next stage
    approval: bool = False  # stop before this stage until `--approve NAME`
    # configuration name -> the ref every stack of the stage runs it at, over what the stacks and profiles say
    # (`kubernetes` and `flux-extension` are the platform's versions, read apart: see _split_platform_pins)
    pins: dict[DnsLabel, PinSpec] = {}
    # A stack whose health gate fails after its update returns to the refs it ran before; past maxFailures, every
    # stack of the stage does, and the stage's pins in fleet.yaml return to what they ran.
    rollback: bool = False
    # When an update may start: inside one of these (and inside one of the stack's own `fluxfleet:windows`, when
    # it has some); an update started runs to its end whenever the window closes.
    windows: list[WindowSpec] = []


class GateSpec(SpecModel):
    flux_compliance: bool = True  # after each stack: every Flux configuration Compliant at the pinned ref
    timeout: Duration = 15 * 60
    poll_interval: Duration = 30


class FleetSpec(SpecModel):
    gate: GateSpec = GateSpec()
    # A stack whose update would replace or delete its cluster fails before anything is applied.
    refuse_cluster_replacement: bool = True
    # ... and one whose preview replaces or deletes the Flux extension or a Flux configuration: with prune on, that
    # deletes everything Flux applied on the cluster before it is applied again.
    refuse_flux_replacement: bool = True
    stages: Annotated[list[StageSpec], Field(min_length=1)]


@dataclass(frozen=True)
class Stage:
    """A stage with its globs resolved to stack names, in the order they are listed (globs sorted)."""

    name: str
    stacks: tuple[str, ...]
    max_concurrency: int
    max_failures: int | str  # a number, or a percentage of the stage's stacks (`10%`): see failure_budget
    after_stage_wait: int  # seconds, 0 for none
    approval: bool
    pins: Mapping[str, PinSpec] = field(default_factory=dict)  # configuration -> its pinned ref
    rollback: bool = False
    kubernetes: str | None = None  # pins.kubernetes: every AKS stack's cluster.kubernetesVersion
    flux_extension: str | None = None  # pins.flux-extension: every stack's flux.extension.version
    min_success: str | None = None  # a percentage (`95%`): see success_needed
    windows: tuple[WindowSpec, ...] = ()  # when its stacks' updates may start; () for any time

    @property
    def platform_pins(self) -> dict[str, str]:
        """{kubernetes: "1.36", flux-extension: "1.23.0"}, of those the stage pins."""
        pinned = {KUBERNETES_PIN: self.kubernetes, EXTENSION_PIN: self.flux_extension}
        return {key: value for key, value in pinned.items() if value is not None}

    def pinned(self, name: str) -> str | None:
        """What the stage pins for `name` (a configuration, or kubernetes / flux-extension), as a message says it."""
        if name in PLATFORM_PINS:
            return self.platform_pins.get(name)
        return str(self.pins[name]) if name in self.pins else None


@dataclass(frozen=True)
class Fleet:
    file: str
    gate: GateSpec
    stages: tuple[Stage, ...]
    unstaged: tuple[str, ...]  # stacks in no stage: never rolled out (a warning)
    refuse_cluster_replacement: bool = True
    refuse_flux_replacement: bool = True

    def stage_of(self, stack: str) -> Stage:
        return next(stage for stage in self.stages if stack in stage.stacks)

    def unstaged_warning(self, stack: str) -> str:
        """What `rollout` and `plan` warn about a stack in no stage."""
        return f"stack {stack} is in no stage of {self.file}: never rolled out"


def arc_skipped(stage: Stage, arc: Collection[str]) -> str | None:
    """The note `rollout`, `plan` and `promote` give for a stage that pins kubernetes with Arc clusters among its
    stacks (`arc`: the stacks that are Arc clusters): they are named and skipped, never failed. None otherwise."""
    skipped = [name for name in stage.stacks if name in arc]
    if stage.kubernetes is None or not skipped:
        return None
    return (
        f"stage {stage.name} pins kubernetes {stage.kubernetes}: Arc cluster(s) {listed(skipped)} skipped (an Arc "
        "cluster's Kubernetes version is its own to upgrade, not Azure's)"
    )


def arc_notes(fleet: Fleet, kind_of: Callable[[str], Any], among: Collection[str] | None = None) -> list[str]:
    """arc_skipped of each stage that pins kubernetes (`kind_of(stack)`: its cluster's kind as written, "aks" or
    "arc"; read only for the stacks of those stages, of `among` when given; a stack whose file cannot say is left to
    its own errors)."""
    notes = []
    for stage in fleet.stages:
        if stage.kubernetes is None:
            continue
        arc = set()
        for name in stage.stacks if among is None else [name for name in stage.stacks if name in among]:
            try:
                if kind_of(name) == "arc":
                    arc.add(name)
            except SpecError:
                continue
        if note := arc_skipped(stage, arc):
            notes.append(note)
    return notes


def load_fleet(
    path: Path,
    known_stacks: Sequence[str],
    display: str | None = None,
    profiles_of: Callable[[str], Sequence[str]] | None = None,
    configurations_of: Callable[[str], Collection[str]] | None = None,
) -> Fleet:
    """Read and validate `fleet.yaml` against the stacks that exist: every problem of the file in one SpecError.
    `profiles_of(stack)` gives the profiles a stack uses (a SpecError if its file cannot say), for the stages that
    select stacks by profile; `configurations_of(stack)` the Flux configurations it declares, for the stages that pin
    one; default: read from the stack files beside the fleet file."""
    file = display or str(path)
    document = read_yaml(path, file)
    if not isinstance(document, Mapping):
        raise SpecError([SpecIssue(file, "-", "a fleet file is a YAML mapping with `stages:`")])
    document, platform = _split_platform_pins(document)
    issues: list[SpecIssue] = []
    for index, pins in platform.items():
        for key, value in pins.items():
            if problem := platform_pin_problem(key, value):
                issues.append(SpecIssue(file, key_path(("stages", index, "pins", key), ""), problem))
    try:
        spec = FleetSpec.model_validate(document, by_alias=True)
    except ValidationError as error:
        raise SpecError([*issues, *pydantic_issues(file, error, FleetSpec, namespace="")]) from None
    if profiles_of is None or configurations_of is None:
        from modules.spec.load import unpinned_stacks  # load.py reads fleet.yaml for its pins: imported here

        read = unpinned_stacks(path.parent, lambda stack: str(Path(file).parent / stack.name))
        profiles_of = profiles_of or (lambda name: read(name).profiles)
        configurations_of = configurations_of or (lambda name: read(name).declared)
    users = _profile_users(spec, known_stacks, profiles_of, issues)
    # A stack named in a stage (by name or glob) is in that stage; a profile brings in the stacks no stage names.
    owner: dict[str, str] = {}
    members: list[list[str]] = [[] for _ in spec.stages]
    for index, stage in enumerate(spec.stages):
        if any(other.name == stage.name for other in spec.stages[:index]):
            issues.append(
                SpecIssue(file, key_path(("stages", index, "name"), ""), f"duplicate stage {shown(stage.name)}")
            )
        if not stage.stacks and not stage.profiles:
            message = "select stacks by `stacks`, `profiles`, or both"
            issues.append(SpecIssue(file, key_path(("stages", index), ""), message))
        for position, glob in enumerate(stage.stacks or ()):
            where = key_path(("stages", index, "stacks", position), "")
            matched = sorted(name for name in known_stacks if fnmatch.fnmatchcase(name, glob))
            if not matched:
                issues.append(SpecIssue(file, where, f"{shown(glob)} matches no stack (known: {listed(known_stacks)})"))
            for name in matched:
                if name in owner and owner[name] != stage.name:
                    issues.append(
                        SpecIssue(file, where, f"stack {shown(name)} is already in stage {shown(owner[name])}")
                    )
                elif name not in members[index]:
                    owner[name] = stage.name
                    members[index].append(name)
    for index, stage in enumerate(spec.stages):
        for position, profile in enumerate(stage.profiles or ()):
            if profile not in users:
                where = key_path(("stages", index, "profiles", position), "")
                issues.append(SpecIssue(file, where, f"{shown(profile)} is used by no stack"))
            for name in users.get(profile, ()):
                if name not in owner:
                    owner[name] = stage.name
                    members[index].append(name)
    _check_pinned_configurations(file, spec, members, configurations_of, issues)
    stages = [
        Stage(
            stage.name,
            tuple(members[index]),
            stage.max_concurrency,
            stage.max_failures,
            stage.after_stage_wait or 0,
            stage.approval,
            stage.pins,
            stage.rollback,
            platform.get(index, {}).get(KUBERNETES_PIN),
            platform.get(index, {}).get(EXTENSION_PIN),
            stage.min_success,
            tuple(stage.windows),
        )
        for index, stage in enumerate(spec.stages)
    ]
    if issues:
        raise SpecError(issues)
    unstaged = tuple(name for name in known_stacks if name not in owner)
    return Fleet(
        file, spec.gate, tuple(stages), unstaged, spec.refuse_cluster_replacement, spec.refuse_flux_replacement
    )


def _profile_users(
    spec: FleetSpec,
    known_stacks: Sequence[str],
    profiles_of: Callable[[str], Sequence[str]],
    issues: list[SpecIssue],
) -> dict[str, list[str]]:
    """Profile -> the stacks that use it, sorted; read only when a stage selects by profile."""
    if not any(stage.profiles for stage in spec.stages):
        return {}
    users: dict[str, list[str]] = {}
    for name in sorted(known_stacks):
        try:
            profiles = profiles_of(name)
        except SpecError as error:
            issues.extend(error.issues)
            continue
        for profile in profiles:
            users.setdefault(profile, []).append(name)
    return users


def _check_pinned_configurations(
    file: str,
    spec: FleetSpec,
    members: Sequence[Sequence[str]],
    configurations_of: Callable[[str], Collection[str]],
    issues: list[SpecIssue],
) -> None:
    """A stage pins only configurations some stack of it declares: a pin for any other (a typo, a configuration of
    another stage) would leave the stage at its old ref, silently. A stage with a stack whose file cannot be read is
    not judged: that stack's own errors say why when it is read."""
    if not any(stage.pins for stage in spec.stages):
        return
    declared: list[set[str] | None] = []
    for names in members:
        try:
            declared.append({config for name in names for config in configurations_of(name)})
        except SpecError:
            declared.append(None)
    for index, stage in enumerate(spec.stages):
        here = declared[index]
        for config in stage.pins if here is not None else ():
            if config in here:
                continue
            close = difflib.get_close_matches(config, sorted(here), n=3)
            running = [spec.stages[other].name for other, names in enumerate(declared) if names and config in names]
            if close:
                hint = f"did you mean {' or '.join(shown(name) for name in close)}?"
            elif running:
                hint = f"stages that run it: {', '.join(running)}"
            else:
                hint = f"its stacks declare: {listed(sorted(here))}" if here else "it has no stacks"
            message = f"no stack of stage {shown(stage.name)} declares a Flux configuration {shown(config)} ({hint})"
            issues.append(SpecIssue(file, key_path(("stages", index, "pins", config), ""), message))


def has_pins(path: Path, display: str) -> bool:
    """Whether a fleet file pins anything: read as every user file is, not validated (load_fleet does that)."""
    document = read_yaml(path, display)
    stages = document.get("stages") if isinstance(document, Mapping) else None
    return isinstance(stages, list) and any(isinstance(stage, Mapping) and stage.get("pins") for stage in stages)


def pin_in(path: Path, display: str, stage: str, config: str) -> dict[str, str] | None:
    """What fleet.yaml pins now for one configuration in one stage (its ref keys), read as written; None: no pin."""
    document = read_yaml(path, display)
    stages = document.get("stages") if isinstance(document, Mapping) else None
    for entry in stages if isinstance(stages, list) else ():
        if isinstance(entry, Mapping) and entry.get("name") == stage:
            pins = entry.get("pins")
            pin = pins.get(config) if isinstance(pins, Mapping) else None
            if config in PLATFORM_PINS and isinstance(pin, str):  # a scalar version: {"version": "1.36"}
                return {"version": pin}
            return {str(key): str(value) for key, value in pin.items()} if isinstance(pin, Mapping) else None
    return None


# What only a range can hold (git refuses ~ ^ * and spaces in a tag's name): `>=1.4.0 <2.0.0`, `^1.4`, `~1.4`, `1.x`
SEMVER_RANGE = re.compile(r"^[\^~<>=!]|[\s*]|\|\||^v?\d+(\.\d+)?\.[xX](\.|$)")


def pin_of_option(config: str, ref: str, branch: str | None) -> PinSpec:
    """`fluxfleet promote CONFIG --to REF [--branch B]` as a pin: a commit SHA (with its branch), an OCI artifact's
    digest (sha256:...) or a tag. A SpecError naming the option when it is not one (a semver range included: it
    is no fixed ref a stage can be gated on and rolled back from)."""
    if problem := dns_label_problem(config):
        raise SpecError([SpecIssue("CONFIG", shown(config), problem)])
    with_branch = {"branch": branch} if branch else {}
    if SEMVER_RANGE.search(ref):
        message = (
            "a semver range is not a ref to promote: a stage pinned to it would move to each new release without a "
            "rollout, a health gate or a rollback; promote the tag it resolves to"
        )
        raise SpecError([SpecIssue("--to", shown(ref), message)])
    if re.fullmatch(r"[0-9a-f]{7,40}", ref):
        raw = {"commit": ref, "branch": branch}
    else:
        raw = {"digest" if ref.startswith("sha256:") else "tag": ref, **with_branch}
    try:
        return PinSpec.model_validate(raw)
    except ValidationError as error:
        issues = [SpecIssue("--to", shown(ref), issue.message) for issue in pydantic_issues("--to", error)]
        raise SpecError(issues) from None


def stages_running(fleet: Fleet, config: str, declared: Mapping[str, Collection[str]]) -> list[Stage]:
    """The stages that run `config`, in order: those with a stack that declares it (`declared`: stack -> the
    configurations it declares). A promotion goes through these only."""
    return [stage for stage in fleet.stages if any(config in declared.get(name, ()) for name in stage.stacks)]


def check_promotion(
    fleet: Fleet, config: str, stage: str | None, declared: Mapping[str, Collection[str]]
) -> list[Stage]:
    """`fluxfleet promote CONFIG [--stage S]` against the fleet: a configuration some stack declares (`declared`:
    stack -> its configurations), a stage of fleet.yaml that runs it. The stages that run it; a SpecError naming the
    argument otherwise."""
    names = [s.name for s in fleet.stages]
    if stage is not None and stage not in names:
        message = f"no such stage in {fleet.file} (stages: {', '.join(names)})"
        raise SpecError([SpecIssue("--stage", shown(stage), message)])
    known = sorted({name for configurations in declared.values() for name in configurations})
    if config not in known:
        close = difflib.get_close_matches(config, known, n=3)
        hint = f" (did you mean {' or '.join(shown(name) for name in close)}?)" if close else ""
        message = f"no stack declares a Flux configuration {config!r}{hint}"
        raise SpecError([SpecIssue("CONFIG", shown(config), message)])
    running = stages_running(fleet, config, declared)
    if stage is not None and stage not in [s.name for s in running]:
        runs = ", ".join(s.name for s in running)
        message = f"no stack of stage {stage} declares {config} (the stages that run it: {runs})"
        raise SpecError([SpecIssue("--stage", shown(stage), message)])
    return running


def platform_pin_of_option(name: str, version: str, branch: str | None) -> str:
    """`fluxfleet promote kubernetes|flux-extension --to VERSION` as a pin: the version, checked as fleet.yaml's pin
    is; a SpecError naming the option otherwise."""
    if branch is not None:
        raise SpecError([SpecIssue("--branch", shown(branch), f"{name} pins a version: it takes no branch")])
    if problem := platform_pin_problem(name, version):
        raise SpecError([SpecIssue("--to", shown(version), problem)])
    return version


def check_platform_promotion(fleet: Fleet, name: str, stage: str | None, aks: Collection[str]) -> list[Stage]:
    """`fluxfleet promote kubernetes|flux-extension [--stage S]` against the fleet: the stages that run it, in order
    (kubernetes: those with an AKS stack, `aks`; an Arc cluster's version is its own; flux-extension: every stage with
    a stack). A SpecError naming --stage when it is not one of them."""
    names = [s.name for s in fleet.stages]
    if stage is not None and stage not in names:
        message = f"no such stage in {fleet.file} (stages: {', '.join(names)})"
        raise SpecError([SpecIssue("--stage", shown(stage), message)])
    running = [s for s in fleet.stages if s.stacks and (name != KUBERNETES_PIN or any(n in aks for n in s.stacks))]
    if stage is not None and stage not in [s.name for s in running]:
        runs = ", ".join(s.name for s in running)
        message = f"stage {stage} has no AKS stack: an Arc cluster's Kubernetes version is its own (AKS stages: {runs})"
        raise SpecError([SpecIssue("--stage", shown(stage), message)])
    return running


def one_minor_problem(stack: str, current: str | None, target: str) -> str | None:
    """Why moving a control plane from `current` to `target` is refused: a supported AKS cluster cannot skip a minor
    version (1.34 -> 1.35 -> 1.36, never 1.34 -> 1.36) and is never downgraded ("Supported Kubernetes versions in
    AKS" and "Upgrade an AKS cluster", https://learn.microsoft.com/azure/aks/upgrade-aks-cluster). None when it is
    allowed or `current` is not known."""
    if current is None:
        return None
    (major, minor), (to_major, to_minor) = minor_of(current), minor_of(target)
    if (to_major, to_minor) < (major, minor):
        return f"{stack} runs kubernetes {current}: AKS never downgrades a control plane to {target}"
    if to_major == major and to_minor > minor + 1:
        through = f"{major}.{minor + 1}"
        return (
            f"{stack} runs kubernetes {current}: {target} skips {through}: AKS upgrades a control plane one minor at a "
            f"time: promote kubernetes --to {through} first"
        )
    return None


@dataclass(frozen=True)
class PinEdit:
    text: str  # fleet.yaml with the pin
    unshared: str | None = None  # why the stage's pins were written out on their own (a YAML anchor shared them)


# A `---` line that opens the document, and a `...` line that ends it: ruamel's round trip drops both.
_DOCUMENT_START = re.compile(r"\A(?:[ \t]*(?:#.*|%.*)?\n)*---[ \t]*(?:#.*)?(?:\n|\Z)")
_DOCUMENT_END = re.compile(r"^\.\.\.[ \t]*(?:#.*)?$", re.MULTILINE)


def with_pin(text: str, display: str, stage: str, config: str, pin: PinSpec | str) -> PinEdit:
    """fleet.yaml's `text` with `stages[stage].pins[config]` set to `pin` (a version, a string, for kubernetes and
    flux-extension: written in quotes, so that YAML never reads 1.30 as a number), everything else as written: comments,
    order, quoting, flow style (ruamel's round trip), and byte for byte what ruamel would change (a BOM, CRLF line
    ends, the `---` and `...` markers, whatever follows `...`). Pins another stage shares (a YAML alias of them, or a
    merge key that brings them in) are never changed: the stage gets pins of its own, and `unshared` says so. A stage
    another one shares whole is a SpecError naming it (`display`): no edit of it could leave the other as it is."""
    from io import StringIO

    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    bom = "\ufeff" if text.startswith("\ufeff") else ""
    crlf = "\r\n" in text
    body = text[len(bom) :].replace("\r\n", "\n") if crlf else text[len(bom) :]
    head = start.group() if (start := _DOCUMENT_START.match(body)) else ""
    end = _DOCUMENT_END.search(body, len(head))
    tail = body[end.start() :] if end else ""
    body = body[len(head) : end.start() if end else None]
    yaml = yaml_round_trip(body)
    try:
        document = yaml.load(body)
    except (YAMLError, YamlTooBig, ValueError, TypeError, RecursionError) as error:  # changed since it was validated
        raise SpecError([SpecIssue(display, "-", f"not valid YAML: {bounded(str(error), 200)}")]) from None
    stages = document.get("stages") if isinstance(document, Mapping) else None
    found = [(i, s) for i, s in enumerate(stages or ()) if isinstance(s, Mapping) and s.get("name") == stage]
    if (
        not isinstance(stages, list)
        or len(found) != 1
        or not isinstance(found[0][1].get("pins", {}), (Mapping, type(None)))
    ):
        raise SpecError(
            [SpecIssue(display, "stages", f"no stage {shown(stage)} with pins to set (changed since it was read?)")]
        )
    [(index, target)] = found
    _keep_anchors(document)
    if _reached(document, target) > 1:
        message = (
            f"stage {stage} is shared with another stage (a YAML alias or merge key of it): a pin written in "
            "it would change both: write the stage out in full"
        )
        raise SpecError([SpecIssue(display, key_path(("stages", index), ""), message)])
    pins = target.get("pins")
    unshared = None
    if pins is not None and ("pins" not in dict(target.non_merged_items()) or _reached(document, pins) > 1):
        pins = target["pins"] = _copied(pins)
        where = key_path(("stages", index, "pins"), "")
        unshared = f"{where} were shared with another stage (a YAML alias or merge key): stage {stage} now has its own"
    if pins is None:
        pins = target["pins"] = CommentedMap()
        if getattr(target, "fa", None) is not None and target.fa.flow_style():
            pins.fa.set_flow_style()
    if isinstance(pin, str):
        from ruamel.yaml.scalarstring import DoubleQuotedScalarString

        pins[config] = DoubleQuotedScalarString(pin)
    else:
        value = CommentedMap(pin.ref_keys)
        value.fa.set_flow_style()
        pins[config] = value  # a new node: a pin shared through an alias stays with the stages that still use it
    out = StringIO()
    yaml.dump(document, out)
    written = head + out.getvalue() + tail
    return PinEdit(bom + (written.replace("\n", "\r\n") if crlf else written), unshared)


def _copied(pins: Mapping) -> Any:
    """A stage's pins as a map of their own, each pin a map of its own too (else the dump would alias the other
    stage's), in the same flow or block style."""
    from ruamel.yaml.comments import CommentedMap

    def copied(value: Any) -> Any:
        if not isinstance(value, CommentedMap):
            return value
        own = CommentedMap((key, copied(item)) for key, item in value.items())
        if value.fa.flow_style():
            own.fa.set_flow_style()
        return own

    return copied(pins)


def _keep_anchors(document: object) -> None:
    """Every anchor written stays written, even one no alias uses (any more): ruamel drops those on dump."""
    pending, visited = [document], set()
    while pending:
        item = pending.pop()
        if id(item) in visited:
            continue
        visited.add(id(item))
        anchor = getattr(item, "anchor", None)
        if anchor is not None and getattr(anchor, "value", None):
            anchor.always_dump = True
        if isinstance(item, Mapping):
            pending.extend(item.values())
            pending.extend(getattr(item, "merge", ()))
        elif isinstance(item, list):
            pending.extend(item)


def _reached(document: object, node: object) -> int:
    """By how many paths from the document's root `node` is reached, up to 2: more than one when an alias names it or
    a map holding it, or a merge key brings one in. The walk follows each alias as loading expands it, so it is
    bounded as loading is (YAML_MAX_VALUES); past that (a recursive alias) it counts as shared."""
    seen, pending, budget = 0, [document], YAML_MAX_VALUES
    while pending and seen < 2:
        item = pending.pop()
        seen += item is node
        budget -= 1
        if budget < 0:
            return 2
        if isinstance(item, Mapping):
            items = item.non_merged_items() if hasattr(item, "non_merged_items") else item.items()
            pending.extend(value for _, value in items)
            pending.extend(getattr(item, "merge", ()))  # maps a merge key brings in: changing them changes this
        elif isinstance(item, list):
            pending.extend(item)
    return seen
