"""`fluxfleet plan`'s work, without the command line: its options as one request, checked (`plan_inputs`: the policy
levels, the `--source` checkouts, the stack files), then the plan of those stacks (`run_plan`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import parse_sources, stack_paths
from fluxfleet.plan import FleetPlan, StackPlan
from policies.rules import Level


@dataclass(frozen=True)
class PlanRequest:
    stacks: tuple[str, ...] = ()  # stack names; none: every stack file of `stacks_dir`
    stacks_dir: Path = Path("stacks")
    sources: tuple[str, ...] = ()  # `--source URL=DIR`
    policy_config: Path | None = None  # policy id -> mandatory, advisory or disabled
    jobs: int | None = None  # worker processes; None: one per core


@dataclass(frozen=True)
class PlanInputs:
    """A request's options read and checked: what the plan runs on."""

    paths: list[Path]
    checkouts: Mapping[str, Path]
    policy_levels: Mapping[str, Level]
    jobs: int


def plan_inputs(request: PlanRequest) -> PlanInputs:
    """The request's inputs, in the order a user reads their problems: `--policy-config`, `--source`, the stacks.
    Invalid input raises InvalidInput (exit 2), one line per problem naming the option or the file."""
    from modules.spec import SpecError, load_policy_levels
    from policies.rules import RULES_BY_ID

    levels = {}
    if request.policy_config is not None:
        try:
            levels = load_policy_levels(request.policy_config, list(RULES_BY_ID))
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet plan: --policy-config ") from None
    checkouts = parse_sources("plan", list(request.sources))
    paths = stack_paths("plan", request.stacks_dir, list(request.stacks))
    return PlanInputs(paths, checkouts, levels, request.jobs or os.cpu_count() or 1)


def run_plan(inputs: PlanInputs, on_planned: Callable[[StackPlan], None] | None = None) -> FleetPlan:
    """The plan of every stack of `inputs`; `on_planned` is called as each stack is done."""
    from fluxfleet.plan import plan_fleet  # looked up when called: tests replace it

    return plan_fleet(
        inputs.paths,
        checkouts=inputs.checkouts,
        policy_levels=inputs.policy_levels,
        jobs=inputs.jobs,
        on_planned=on_planned,
    )
