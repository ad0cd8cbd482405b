"""`stacks/fleet.yaml`: the stages a rollout goes through."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    ValidationError,
)

from modules.spec.errors import SpecError, SpecIssue, key_path, listed, shown
from modules.spec.files import read_yaml
from modules.spec.stack import DnsLabel, Duration, Line, SpecModel, pydantic_issues


# --------------------------------------------------------------------------------------------- the fleet rollout

FLEET_FILE = "fleet.yaml"


class StageSpec(SpecModel):
    name: DnsLabel
    stacks: Annotated[list[Line], Field(min_length=1)]  # stack names or globs such as prod-*
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    max_failures: Annotated[int, Field(ge=0)] = 0
    after_stage_wait: Duration | None = None  # bake time before the next stage
    approval: bool = False  # stop before this stage until `--approve NAME`


class GateSpec(SpecModel):
    flux_compliance: bool = True  # after each stack: every Flux configuration Compliant at the pinned ref
    timeout: Duration = 15 * 60
    poll_interval: Duration = 30


class FleetSpec(SpecModel):
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
        raise SpecError(pydantic_issues(file, error, FleetSpec, namespace="")) from None
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
