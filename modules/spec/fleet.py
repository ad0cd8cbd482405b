"""`stacks/fleet.yaml`: the stages a rollout goes through."""

from __future__ import annotations

import fnmatch
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, model_validator

from modules.spec.errors import SpecError, SpecIssue, key_path, listed, shown
from modules.spec.files import read_text, read_yaml, yaml_round_trip
from modules.spec.profiles import PROFILE_NAME, PROFILE_NAME_RULE
from modules.spec.fields import DnsLabel, Duration, Line, SpecModel, dns_label_problem, pattern
from modules.spec.stack import OCI_DIGEST, REF_KEYS, pydantic_issues


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


class StageSpec(SpecModel):
    name: DnsLabel
    stacks: Annotated[list[Line], Field(min_length=1)] | None = None  # stack names or globs such as prod-*
    # and every stack that uses one of these profiles (directly or through another) that no stage names
    profiles: Annotated[list[ProfileName], Field(min_length=1)] | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    max_failures: Annotated[int, Field(ge=0)] = 0
    after_stage_wait: Duration | None = None  # bake time before the next stage
    approval: bool = False  # stop before this stage until `--approve NAME`
    # configuration name -> the ref every stack of the stage runs it at, over what the stacks and profiles say
    pins: dict[DnsLabel, PinSpec] = {}
    # A stack whose health gate fails after its update returns to the refs it ran before; past maxFailures, every
    # stack of the stage does, and the stage's pins in fleet.yaml return to what they ran.
    rollback: bool = False


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
    max_failures: int
    after_stage_wait: int  # seconds, 0 for none
    approval: bool
    pins: Mapping[str, PinSpec] = field(default_factory=dict)  # configuration -> its pinned ref
    rollback: bool = False


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


def load_fleet(
    path: Path,
    known_stacks: Sequence[str],
    display: str | None = None,
    profiles_of: Callable[[str], Sequence[str]] | None = None,
) -> Fleet:
    """Read and validate `fleet.yaml` against the stacks that exist: every problem of the file in one SpecError.
    `profiles_of(stack)` gives the profiles a stack uses (a SpecError if its file cannot say), for the stages that
    select stacks by profile; default: read from the stack files beside the fleet file."""
    file = display or str(path)
    document = read_yaml(path, file)
    if not isinstance(document, Mapping):
        raise SpecError([SpecIssue(file, "-", "a fleet file is a YAML mapping with `stages:`")])
    try:
        spec = FleetSpec.model_validate(dict(document), by_alias=True)
    except ValidationError as error:
        raise SpecError(pydantic_issues(file, error, FleetSpec, namespace="")) from None
    issues: list[SpecIssue] = []
    if profiles_of is None:
        from modules.spec.load import stack_profiles  # load.py reads fleet.yaml for its pins: imported here

        profiles_of = stack_profiles(path.parent)
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
            return {str(key): str(value) for key, value in pin.items()} if isinstance(pin, Mapping) else None
    return None


def pin_of_option(config: str, ref: str, branch: str | None) -> PinSpec:
    """`fluxfleet promote CONFIG --to REF [--branch B]` as a pin: a commit SHA (with its branch), an OCI artifact's
    digest (sha256:...) or a tag. A SpecError naming the option when it is not one."""
    if problem := dns_label_problem(config):
        raise SpecError([SpecIssue("CONFIG", shown(config), problem)])
    with_branch = {"branch": branch} if branch else {}
    if re.fullmatch(r"[0-9a-f]{7,40}", ref):
        raw = {"commit": ref, "branch": branch}
    else:
        raw = {"digest" if ref.startswith("sha256:") else "tag": ref, **with_branch}
    try:
        return PinSpec.model_validate(raw)
    except ValidationError as error:
        issues = [SpecIssue("--to", shown(ref), issue.message) for issue in pydantic_issues("--to", error)]
        raise SpecError(issues) from None


def check_promotion(fleet: Fleet, config: str, stage: str | None, declared: set[str]) -> None:
    """`fluxfleet promote CONFIG [--stage S]` against the fleet: a stage of fleet.yaml, a configuration some stack
    declares (`declared`). A SpecError naming the argument otherwise."""
    names = [s.name for s in fleet.stages]
    if stage is not None and stage not in names:
        message = f"no such stage in {fleet.file} (stages: {', '.join(names)})"
        raise SpecError([SpecIssue("--stage", shown(stage), message)])
    if config not in declared:
        raise SpecError([SpecIssue("CONFIG", shown(config), f"no stack declares a Flux configuration {config!r}")])


def with_pin(path: Path, display: str, stage: str, config: str, pin: PinSpec) -> str:
    """fleet.yaml's text with `stages[stage].pins[config]` set to `pin`, everything else as written (comments, order,
    quoting, flow style): ruamel's round trip."""
    from io import StringIO

    from ruamel.yaml.comments import CommentedMap

    text = read_text(path, display)
    yaml = yaml_round_trip(text)
    document = yaml.load(text)
    [target] = [s for s in document["stages"] if s.get("name") == stage]
    pins = target.get("pins")
    if pins is None:
        pins = target["pins"] = CommentedMap()
        if getattr(target, "fa", None) is not None and target.fa.flow_style():
            pins.fa.set_flow_style()
    value = CommentedMap(pin.ref_keys)
    value.fa.set_flow_style()
    pins[config] = value
    out = StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def write_fleet(path: Path, text: str) -> None:
    """fleet.yaml replaced whole (a temporary file renamed over it): a reader never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
