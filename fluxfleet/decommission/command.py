"""`fluxfleet decommission`'s work, callable without the command line: its options as one request, the stacks read
and planned, then the dry run's plan, a refusal (a protected cluster; no `--yes`), or the journaled run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fluxfleet.decommission import STEPS, StackPlan, plan_stack, render_plan
from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.inputs import run_store_of, unusable_store
from fluxfleet.rollout.journal import Journal, RunRecord, RunStatus, StackEntry, StackState, StagePlan, check_run_id
from fluxfleet.runner import RunnerError, StackRunner, require_pulumi_cli
from fluxfleet.runstate.store import StoreError
from modules.spec import FLEET_FILE, STACK_FILE, SpecError, load_stack_file, shown

STAGE = "decommission"  # the run's one stage, as `fluxfleet runs RUN` shows it


@dataclass(frozen=True)
class DecommissionRequest:
    stacks: tuple[str, ...] = ()  # in the order given
    yes: bool = False
    dry_run: bool = False
    run_id: str | None = None  # the new run's id
    resume: str | None = None  # a run to continue
    stacks_dir: Path = Path("stacks")
    fleet_file: Path | None = None
    runs_dir: Path | None = None

    @property
    def fleet_path(self) -> Path:
        return self.fleet_file or self.stacks_dir / FLEET_FILE


@dataclass(frozen=True)
class DecommissionResult:
    report: str
    exit_code: ExitCode = ExitCode.OK
    record: RunRecord | None = None


def run_decommission(
    request: DecommissionRequest,
    warn: Callable[[str], None],
    runner_of: Callable[[], StackRunner] | None = None,
) -> DecommissionResult:
    """The dry run's plan, or the run to its end. InvalidInput for options or stack files; CommandError (exit 1) for
    a refusal (protected, no --yes) or what the run needs and cannot have (pulumi, the store)."""
    from fluxfleet.plan import display_path

    _check_options(request)
    if request.resume is not None:
        return _resume(request, warn, runner_of)
    plans = _plans(request, display_path)
    refusals = [plan.refusal for plan in plans if plan.refusal]
    if refusals:
        raise CommandError(*(f"fluxfleet decommission: {line}" for line in refusals))
    if request.dry_run:
        return DecommissionResult(render_plan(plans))
    for plan in plans:
        for configuration in plan.configurations:
            warn(f"fluxfleet decommission: {plan.stack}: {configuration.line}")
    if not request.yes:
        pruning = [plan.stack for plan in plans if plan.prunes]
        why = f" (with prune on, Flux deletes what it applied on {', '.join(pruning)})" if pruning else ""
        raise CommandError(
            f"fluxfleet decommission: nothing done: decommissioning deletes what the plan above lists{why}; "
            "see it with --dry-run, then approve it with --yes"
        )
    runner = _runner(runner_of)
    store = run_store_of("decommission", request.runs_dir)
    record = new_run(request.run_id, [plan.stack for plan in plans], display_path(request.fleet_path))
    try:
        journal = Journal.create(store, record)
    except StoreError as error:
        raise unusable_store("decommission", store, error) from None
    except ValueError as error:  # RunExists
        raise InvalidInput(f"fluxfleet decommission: --run-id: {error}; continue it with --resume") from None
    return _run(request, journal, runner, warn)


def new_run(run_id: str | None, stacks: list[str], fleet_file: str = "") -> RunRecord:
    from fluxfleet.clock import SystemClock

    now = SystemClock().now()
    return RunRecord(
        run_id=run_id or Journal.new_run_id(now),
        fleet_file=fleet_file,
        started_at=now.isoformat(),
        status=RunStatus.running,
        stages=[StagePlan(STAGE, list(stacks), 1, 0, 0, approval=True)],
        stacks={name: StackEntry(stage=STAGE, steps=dict.fromkeys(STEPS, StackState.pending)) for name in stacks},
        approved=[STAGE],  # --yes
        kind="decommission",
    )


def _check_options(request: DecommissionRequest) -> None:
    if not request.stacks_dir.is_dir():
        raise InvalidInput(f"fluxfleet decommission: {request.stacks_dir}: no such directory")
    if request.resume is not None:
        if request.stacks or request.run_id or request.dry_run:
            raise InvalidInput(
                "fluxfleet decommission: --resume continues the run as it began: give no STACK, --run-id or --dry-run"
            )
    elif not request.stacks:
        raise InvalidInput("fluxfleet decommission: name the stacks to decommission (or --resume a run)")
    for option, run_id in (("--resume", request.resume), ("--run-id", request.run_id)):
        if run_id is not None:
            try:
                check_run_id(run_id)
            except ValueError as error:
                raise InvalidInput(f"fluxfleet decommission: {option}: {error}") from None
    if len(set(request.stacks)) != len(request.stacks):
        raise InvalidInput("fluxfleet decommission: a stack is named twice")


def _plans(request: DecommissionRequest, display: Callable[[Path], str]) -> list[StackPlan]:
    from modules.spec.files import read_yaml

    paths = {}
    for path in request.stacks_dir.glob("Pulumi.*.yaml"):
        match = STACK_FILE.match(path.name)
        if match:
            paths[match["stack"]] = path
    missing = [name for name in request.stacks if name not in paths]
    if missing:
        raise InvalidInput(
            *(f"fluxfleet decommission: {display(request.stacks_dir)}: no stack file for {shown(n)}" for n in missing)
        )
    fleet_data = None
    if request.fleet_path.exists():
        try:
            fleet_data = read_yaml(request.fleet_path, display(request.fleet_path))
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet decommission: ") from None
    plans, issues = [], []
    for name in request.stacks:
        try:
            stack = load_stack_file(paths[name], display(paths[name]))
        except SpecError as error:
            issues += error.issues
            continue
        others = sorted(set(paths) - set(request.stacks))
        fleet = fleet_data if isinstance(fleet_data, dict) else {}
        plans.append(plan_stack(stack, display(paths[name]), fleet, others))
    if issues:
        raise InvalidInput(*(f"fluxfleet decommission: {issue}" for issue in issues))
    return plans


def _runner(runner_of: Callable[[], StackRunner] | None) -> StackRunner:
    try:
        if runner_of is not None:
            return runner_of()
        require_pulumi_cli()
        from fluxfleet.automation import AutomationRunner

        return AutomationRunner(Path.cwd())
    except RunnerError as error:
        raise CommandError(f"fluxfleet decommission: {error}") from None


def _resume(
    request: DecommissionRequest, warn: Callable[[str], None], runner_of: Callable[[], StackRunner] | None
) -> DecommissionResult:
    assert request.resume is not None
    store = run_store_of("decommission", request.runs_dir)
    try:
        journal = Journal.load(store, request.resume)
    except StoreError as error:
        raise CommandError(f"fluxfleet decommission: {error}") from None
    except ValueError as error:
        raise InvalidInput(f"fluxfleet decommission: --resume: {error}") from None
    if journal.record.kind != "decommission":
        raise InvalidInput(
            f"fluxfleet decommission: --resume: run {request.resume} is a {journal.record.kind}: continue it with "
            f"`fluxfleet {journal.record.kind} --resume {request.resume}`"
        )
    return _run(request, journal, _runner(runner_of), warn)


def _run(
    request: DecommissionRequest, journal: Journal, runner: StackRunner, warn: Callable[[str], None]
) -> DecommissionResult:
    from fluxfleet.clock import SystemClock
    from fluxfleet.decommission.run import Decommission, Files
    from fluxfleet.plan import display_path

    files = Files(request.stacks_dir, request.fleet_path, display_path)
    warn(f"fluxfleet decommission: run {journal.run_id} (continue it with --resume {journal.run_id})")
    try:
        Decommission(journal, runner, files, SystemClock(), lambda line: warn(f"  {line}")).run()
    except StoreError as error:
        raise CommandError(f"fluxfleet decommission: run {journal.run_id}: {error}") from None
    record = journal.record
    ok = record.status is RunStatus.done
    return DecommissionResult(render_run(record), ExitCode.OK if ok else ExitCode.FAILED, record)


def render_run(record: RunRecord) -> str:
    lines = [f"decommission {record.run_id}: {record.status.value}" + (f" ({record.reason})" if record.reason else "")]
    for name in record.stages[0].stacks:
        entry = record.stacks[name]
        lines.append(f"{name}: {entry.state.value}" + (f" ({entry.message})" if entry.message else ""))
        lines += [f"  {step}: {state.value}" for step, state in entry.steps.items()]
    return "\n".join(lines) + "\n"
