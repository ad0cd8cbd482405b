"""`fluxfleet plan`'s work, without the command line: its options as one request, checked (`plan_inputs`: the policy
levels, the `--source` checkouts, the stack files), then the plan of those stacks (`run_plan`), and what it says of the
cache (`cache_lines`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import check_output, parse_sources, stack_paths
from fluxfleet.plan import FleetPlan, StackPlan
from fluxfleet.plan.cache import CACHE_DIR_ENV, DEFAULT_DIR, PlanCache
from policies.rules import Level


@dataclass(frozen=True)
class PlanRequest:
    stacks: tuple[str, ...] = ()  # stack names; none: every stack file of `stacks_dir`
    stacks_dir: Path = Path("stacks")
    sources: tuple[str, ...] = ()  # `--source URL=DIR`
    policy_config: Path | None = None  # policy id -> mandatory, advisory or disabled
    jobs: int | None = None  # worker processes; None: one per core
    cache: bool = False  # each stack's plan kept, and taken back while its inputs are unchanged (cache.py)
    cache_dir: Path | None = None  # None: FLUXFLEET_CACHE_DIR, else .fluxfleet/cache/plan
    output: Path | None = None  # where the command line writes the report: checked before any work


@dataclass(frozen=True)
class PlanInputs:
    """A request's options read and checked: what the plan runs on."""

    paths: list[Path]
    checkouts: Mapping[str, Path]
    policy_levels: Mapping[str, Level]
    jobs: int
    cache: PlanCache | None = None  # None: every stack planned (--no-cache, or --source)


def plan_inputs(request: PlanRequest) -> PlanInputs:
    """The request's inputs, in the order a user reads their problems: `--policy-config`, `--source`, the stacks.
    Invalid input raises InvalidInput (exit 2), one line per problem naming the option or the file."""
    from modules.spec import SpecError, load_policy_levels
    from policies.rules import RULES_BY_ID

    check_output("plan", "--output", request.output)
    levels = {}
    if request.policy_config is not None:
        try:
            levels = load_policy_levels(request.policy_config, list(RULES_BY_ID))
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet plan: --policy-config ") from None
    checkouts = parse_sources("plan", list(request.sources))
    paths = stack_paths("plan", request.stacks_dir, list(request.stacks))
    cache = None
    if request.cache and not checkouts:  # what a checkout holds is not in a stack's key
        cache = PlanCache(request.cache_dir or Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_DIR), levels)
    return PlanInputs(paths, checkouts, levels, request.jobs or os.cpu_count() or 1, cache)


def run_plan(inputs: PlanInputs, on_planned: Callable[[StackPlan], None] | None = None) -> FleetPlan:
    """The plan of every stack of `inputs`; `on_planned` is called as each stack is done."""
    from fluxfleet.plan import plan_fleet  # looked up when called: tests replace it

    return plan_fleet(
        inputs.paths,
        checkouts=inputs.checkouts,
        policy_levels=inputs.policy_levels,
        jobs=inputs.jobs,
        on_planned=on_planned,
        cache=inputs.cache,
    )


def cache_lines(inputs: PlanInputs, fleet: FleetPlan) -> list[str]:
    """For stderr, never the report (which is the same with the cache or without): why the cache could not be used,
    and how many stacks were planned and how many taken from it."""
    cache = inputs.cache
    lines = [f"fluxfleet plan: {cache.problem}"] if cache is not None and cache.problem else []
    hits = cache.hits if cache is not None else 0
    if cache is None:
        why = "--source" if inputs.checkouts else "--no-cache"
        return [*lines, f"planned {len(fleet.stacks)} stack(s), none from the cache ({why})"]
    return [*lines, f"planned {len(fleet.stacks) - hits} stack(s), {hits} from the cache"]
