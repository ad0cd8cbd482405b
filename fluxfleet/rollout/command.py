"""`fluxfleet rollout`'s work, callable without the command line: its options as one `RolloutRequest`, checked
against fleet.yaml (an option that would not apply is refused, never ignored), then one of three answers: the
GitHub Actions matrix of a stage, the dry run's plan, or a run to its end on Pulumi and Azure."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Mapping
from glob import escape as glob_escape
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxfleet.azure.status import AzureReader
from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.inputs import check_output, run_store_of, unusable_store
from fluxfleet.rollout.journal import (
    Journal,
    RunRecord,
    RunStatus,
    StackState,
    StagePlan,
    StageProgress,
    check_run_id,
    history,
)
from fluxfleet.rollout.orchestrator import Selection, estimate, load_inputs, load_run_stacks, new_run
from fluxfleet.rollout.refs import stage_refs
from fluxfleet.rollout.report import render_dry_run, render_summary
from fluxfleet.runner import RunnerError, StackRunner, require_pulumi_cli
from fluxfleet.runstate.store import StateStore, StoreError
from modules.spec import FLEET_FILE, Fleet, ProfileLibrary, SpecError, Stack, StackSpec, report_name, shown, stack_files
from modules.spec.fleet import arc_notes
from modules.spec.load import cluster_kinds


@dataclass(frozen=True)
class RolloutRequest:
    """`fluxfleet rollout`'s options, as typed values."""

    stacks_dir: Path = Path("stacks")
    fleet_file: Path | None = None  # default: STACKS_DIR/fleet.yaml
    runs_dir: Path | None = None  # default: Pulumi's azblob container, else .fluxfleet/runs
    stage: str | None = None  # only this stage
    stacks: tuple[str, ...] = ()  # only these stacks: names (or their files) and globs
    dry_run: bool = False
    resume: str | None = None  # a run id
    approve: tuple[str, ...] = ()  # stages
    max_concurrency: int | None = None
    rollback: bool = False  # every stage rolls back
    matrix: str | None = None  # a stage
    soak: str | None = None  # a stage: only its soak, in the run --run-id names
    run_id: str | None = None  # the run to start or join (a name); with --matrix: the run whose progress it reads
    fmt: str = "text"  # of the summary and the dry run's plan: text, json, markdown
    output: Path | None = None  # where the command line writes the report: checked before any work
    color: bool = False  # the text summary in colour (stdout is a terminal)

    @property
    def fleet_path(self) -> Path:
        return self.fleet_file or self.stacks_dir / FLEET_FILE


@dataclass(frozen=True)
class RolloutPlan:
    """What a valid request covers: fleet.yaml, the stack files beside it, and the part of the fleet a new run
    takes."""

    fleet: Fleet
    paths: dict[str, Path]  # stack name -> its file
    selection: Selection


@dataclass(frozen=True)
class RolloutResult:
    """What a rollout answers: a report (the summary of a run, or the dry run's plan), or the matrix of a stage."""

    report: str = ""
    matrix: dict[str, Any] | None = None  # --matrix: for the workflow's fan-out, always on stdout
    record: RunRecord | None = None  # the run's record (a run, not a dry run or a matrix)
    exit_code: ExitCode = ExitCode.OK


def run_rollout(request: RolloutRequest, warn: Callable[[str], None]) -> RolloutResult:
    """The request checked, then its matrix, its dry run or its run; `warn` gets each warning line (a stack in no
    stage). Invalid input raises `InvalidInput`; what the run needs and cannot have (pulumi, Azure, the run
    another process holds) raises `CommandError` (exit 1) before anything starts."""
    if request.matrix is None and not request.dry_run:  # a run: no pulumi is said before seconds of loading
        _check_options(request)
        try:
            require_pulumi_cli()
        except RunnerError as error:
            raise CommandError(f"fluxfleet rollout: {error}") from None
    plan = plan_rollout(request, warn)
    if request.matrix is not None:
        return RolloutResult(matrix=stage_matrix(request, plan))
    if request.soak is not None:
        record = soak(request, plan)
        stage = next(stage for stage in record.stages if stage.name == request.soak)
        passed = StageProgress.of(record, stage).passed and record.status not in STOPPED
        return RolloutResult(
            report=render_summary(record, request.fmt, color=request.color),
            record=record,
            exit_code=ExitCode.OK if passed else ExitCode.FAILED,
        )
    if request.dry_run:
        return RolloutResult(report=dry_run(request, plan))
    record = apply(request, plan)
    failed = any(entry.state is StackState.failed for entry in record.stacks.values())
    done = record.status is RunStatus.done and not failed
    return RolloutResult(
        report=render_summary(record, request.fmt, color=request.color),
        record=record,
        exit_code=ExitCode.OK if done else ExitCode.FAILED,
    )


def plan_rollout(request: RolloutRequest, warn: Callable[[str], None]) -> RolloutPlan:
    """fleet.yaml read with the stack files beside it, and the options checked against it and against each other:
    every refusal names the option."""
    from fluxfleet.plan import display_path

    _check_options(request)
    try:
        fleet, paths = load_inputs(request.stacks_dir, request.fleet_path, display_path)
    except SpecError as error:
        raise InvalidInput.of(error) from None
    for name in fleet.unstaged:
        warn(f"fluxfleet rollout: warning: {fleet.unstaged_warning(name)}")
    for note in arc_notes(fleet, cluster_kinds(request.stacks_dir, display_path)):
        warn(f"fluxfleet rollout: note: {note}")
    known_stages = [s.name for s in fleet.stages]
    for name in [request.stage, request.matrix, request.soak, *request.approve]:
        if name is not None and name not in known_stages:
            raise _invalid(f"no stage {shown(name)} in {fleet.file} (stages: {', '.join(known_stages)})")
    selection = Selection(
        stage=request.matrix or request.stage,
        stacks=_stack_patterns(request, fleet) if request.stacks else None,
        max_concurrency=request.max_concurrency,
        rollback=request.rollback,
    )
    return RolloutPlan(fleet, paths, selection)


def _check_options(request: RolloutRequest) -> None:
    """What the options say on their own, before anything is read or applied."""
    if not request.stacks_dir.is_dir():
        raise _invalid(f"{request.stacks_dir}: no such directory")
    check_output("rollout", "--output", request.output)
    _refuse_options_that_would_not_apply(request)
    for option, run_id in (("--resume", request.resume), ("--run-id", request.run_id)):
        if run_id is not None:
            try:
                check_run_id(run_id)  # an id, never a path
            except ValueError as error:
                raise _invalid(f"{option}: {error}") from None


GLOB = re.compile(r"[*?\[]")


def _stack_patterns(request: RolloutRequest, fleet: Fleet) -> tuple[str, ...]:
    """`--stacks`: each a stack name (or its file, as every command takes it) that a stage of the run has, or a
    glob that matches one; invalid input otherwise, naming the stacks it could mean."""
    staged = request.stage or request.matrix
    where = f"stage {staged}" if staged else fleet.file
    stage_of = {name: stage.name for stage in fleet.stages for name in stage.stacks}
    covered = {name for stage in fleet.stages if staged in (None, stage.name) for name in stage.stacks}
    patterns = []
    for given in request.stacks:
        if GLOB.search(given):
            if not any(fnmatch.fnmatchcase(name, given) for name in covered):
                raise _invalid(f"--stacks {shown(given)} matches no stack of {where}")
            patterns.append(given)
            continue
        try:
            [path] = stack_files(request.stacks_dir, [given])
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet rollout: --stacks: ") from None
        name = report_name(path)
        if name not in covered:
            elsewhere = f" (it is in stage {stage_of[name]})" if name in stage_of else ""
            raise _invalid(f"--stacks {shown(given)}: stack {name} is in no stage of {where}{elsewhere}")
        patterns.append(glob_escape(name))
    return tuple(patterns)


STOPPED = frozenset({RunStatus.halted, RunStatus.rolled_back, RunStatus.interrupted})


def _refuse_options_that_would_not_apply(request: RolloutRequest) -> None:
    if request.soak is not None:
        if request.run_id is None:
            raise _invalid("--soak watches a stage of a run: give the run's --run-id")
        given = (
            ("--stage", request.stage),
            ("--stacks", request.stacks or None),
            ("--dry-run", request.dry_run or None),
            ("--max-concurrency", request.max_concurrency),
            ("--matrix", request.matrix),
            ("--rollback", request.rollback or None),
            ("--approve", request.approve or None),
        )
        if kept := [option for option, value in given if value is not None]:
            raise _invalid(f"--soak runs only the soak of the stage it names: drop {', '.join(kept)}")
    if request.matrix is not None and request.stage is not None:
        raise _invalid("--matrix names its stage: drop --stage")
    if request.resume is not None and request.run_id is not None:
        raise _invalid("--resume continues a run, --run-id starts or joins one: give one of them")
    if request.matrix is not None and request.rollback:
        raise _invalid("--matrix plans a stage as fleet.yaml says: set `rollback: true` on the stage, not --rollback")
    if request.resume is not None:
        planned = (
            ("--stage", request.stage),
            ("--stacks", request.stacks or None),
            ("--max-concurrency", request.max_concurrency),
            ("--matrix", request.matrix),
            ("--rollback", request.rollback or None),
        )
        if kept := [option for option, value in planned if value is not None]:
            raise _invalid(f"--resume continues a run as it was planned: {', '.join(kept)} cannot change it")


def stage_matrix(request: RolloutRequest, plan: RolloutPlan) -> dict[str, Any]:
    """`--matrix`: the GitHub Actions matrix of one stage's stacks, for CI fan-out; needs neither Pulumi nor Azure.
    Its stacks must be valid: a job per stack that could not start is no plan."""
    [planned] = plan.selection.plan(plan.fleet) or [None]
    stacks = planned.stacks if planned else []
    _specs(request, plan, [planned] if planned else [])
    rules = next(s for s in plan.fleet.stages if s.name == request.matrix)
    # deploy-stage.yml bakes between stages, as a run does: never after the last stage that has stacks
    staged = [s.name for s in Selection(stacks=plan.selection.stacks).plan(plan.fleet)]
    return (
        {
            "stage": request.matrix,
            "matrix": {"stack": stacks},
            "maxParallel": planned.max_concurrency if planned else 1,
            "maxFailures": planned.max_failures if planned else 0,  # a percentage of the stage's stacks, rounded down
            "minSucceeded": planned.min_succeeded if planned else 0,  # minSuccess, as stacks (rounded up)
            "afterStageWait": rules.after_stage_wait if request.matrix in staged[:-1] else 0,  # seconds
            "approval": rules.approval,
            "rollback": rules.rollback,  # deploy-stage.yml then runs the stage as one job, not a matrix
        }
        | ({} if request.run_id is None else _run_progress(request, stacks))
    )


def _run_progress(request: RolloutRequest, stacks: list[str]) -> dict[str, Any]:
    """`--matrix STAGE --run-id RUN`: how far the run got with the stage (the figures `fluxfleet runs RUN` gives),
    and the matrix of the stacks it has not applied yet: a re-run of the workflow never applies a stack twice. A run
    that does not exist yet, or has not the stage yet: every stack, nothing done."""
    assert request.run_id is not None and request.matrix is not None
    journal = _find_run(run_store(request), request.run_id)
    plan = next((s for s in journal.record.stages if s.name == request.matrix), None) if journal else None
    if journal is None or plan is None:
        nothing = {"succeeded": 0, "failed": 0, "pending": len(stacks), "finished": False, "bakeUntil": None}
        return {"run": {"id": request.run_id, **nothing}}
    progress = StageProgress.of(journal.record, plan).as_json()
    done = {name for name in plan.stacks if journal.record.stacks[name].state is StackState.succeeded}
    run = {key: progress[key] for key in ("succeeded", "failed", "pending", "finished", "bakeUntil")}
    return {"matrix": {"stack": [name for name in stacks if name not in done]}, "run": {"id": request.run_id, **run}}


def dry_run(request: RolloutRequest, plan: RolloutPlan) -> str:
    """`--dry-run`: the stages a run (a new one, or the one `--resume` names) would take, with the estimate from
    earlier runs and the ref each Flux configuration of a stage would be applied at (as `pulumi up` would read the
    stacks now). It reads, never writes: not even the log of the run it shows."""
    try:
        stages = (
            Journal.load(run_store(request), request.resume).record.stages
            if request.resume
            else plan.selection.plan(plan.fleet)
        )
    except StoreError as error:
        raise CommandError(f"fluxfleet rollout: {error}") from None
    except ValueError as error:
        raise _invalid(str(error)) from None
    stacks = _stacks(request, plan, stages)  # the stacks it would apply, valid as the run would need them
    durations = history(run_store(request))
    samples = sum(len(seconds) for seconds in durations.values())
    refs = stage_refs(stages, stacks, _pins_file(request.stacks_dir))
    windows_of = {name: stack.spec.windows for name, stack in stacks.items() if stack.spec.windows}
    estimates = estimate(stages, durations, start=_now(), windows_of=windows_of)
    return render_dry_run(estimates, request.fmt, samples, refs)


def _now():
    from fluxfleet.clock import SystemClock

    return SystemClock().now()


def soak(request: RolloutRequest, plan: RolloutPlan) -> RunRecord:
    """`--run-id RUN --soak STAGE`: the soak of a stage of the run that has passed, as a run does between stages,
    watched by whichever process takes it first (another watching it already: this one waits for its end)."""
    from fluxfleet.rollout.production import run_journaled

    assert request.run_id is not None and request.soak is not None
    journal = _find_run(run_store(request), request.run_id)
    stage = next((s for s in journal.record.stages if s.name == request.soak), None) if journal else None
    if journal is None or stage is None:
        raise CommandError(f"fluxfleet rollout: run {request.run_id} has no stage {request.soak} to soak")
    specs = _specs(request, plan, [stage])
    runner, reader = rollout_can_start(specs)
    return run_journaled(
        "rollout",
        journal,
        specs,
        plan.fleet,
        request.fleet_path,
        request.stacks_dir,
        runner,
        reader,
        request.fmt,
        only=frozenset(),
        soak=request.soak,
    )


def run_store(request: RolloutRequest) -> StateStore:
    """Where the rollout's runs are kept."""
    return run_store_of("rollout", request.runs_dir)


def apply(request: RolloutRequest, plan: RolloutPlan) -> RunRecord:
    """A new run, the run `--resume` names, or the run `--run-id` names (created, or joined: this process works
    its part of it, beside the other processes that record into it), journaled to its end: the record it ends
    with."""
    from fluxfleet.clock import SystemClock
    from fluxfleet.rollout.production import run_journaled

    store = run_store(request)
    journal = None
    only = None
    if request.resume is not None:
        try:
            journal = Journal.load(store, request.resume)
        except StoreError as error:
            raise CommandError(f"fluxfleet rollout: {error}") from None
        except ValueError as error:
            raise _invalid(str(error)) from None
        _refuse_other_kind(journal.record, "--resume")
    # A run named by --run-id holds the whole of each stage it covers (its budget and bake are the stage's), and
    # this process works the stacks --stacks picks from them.
    whole = dataclasses.replace(plan.selection, stacks=None) if request.run_id else plan.selection
    if request.run_id is not None and (joined := _find_run(store, request.run_id)) is not None:
        _refuse_changed_stages(joined.record, whole.plan(plan.fleet))  # before anything starts or joins the run
    specs = _specs(request, plan, journal.record.stages if journal else whole.plan(plan.fleet))
    runner, reader = rollout_can_start(specs)
    try:
        if request.run_id is not None:
            record = new_run(plan.fleet, whole, SystemClock().now(), run_id=request.run_id)
            journal = Journal.join(store, record, [stage.name for stage in plan.fleet.stages])
            only = frozenset(name for stage in plan.selection.plan(plan.fleet) for name in stage.stacks)
        elif journal is None:
            journal = Journal.create(store, new_run(plan.fleet, plan.selection, SystemClock().now()))
    except StoreError as error:
        raise unusable_store("rollout", store, error) from None
    except ValueError as error:
        raise _invalid(str(error)) from None
    return run_journaled(
        "rollout",
        journal,
        specs,
        plan.fleet,
        request.fleet_path,
        request.stacks_dir,
        runner,
        reader,
        request.fmt,
        request.approve,
        only,
    )


def _find_run(store: StateStore, run_id: str) -> Journal | None:
    """The run --run-id names, None when there is none yet; refused when it is no rollout (a decommission)."""
    try:
        journal = Journal.find(store, run_id)
    except StoreError as error:
        raise CommandError(f"fluxfleet rollout: {error}") from None
    except ValueError as error:
        raise _invalid(f"--run-id: {error}") from None
    if journal is not None:
        _refuse_other_kind(journal.record, "--run-id")
    return journal


def _refuse_other_kind(record: RunRecord, option: str) -> None:
    """A run that is no rollout (a decommission) is never continued or joined by one."""
    if record.kind != "rollout":
        raise _invalid(
            f"{option} {record.run_id}: that run is a {record.kind}: continue it with "
            f"`fluxfleet {record.kind} --resume {record.run_id}`"
        )


def _refuse_changed_stages(record: RunRecord, wanted: list[StagePlan]) -> None:
    """A run keeps each stage as the process that added it planned it: a process that joins it asking otherwise
    (another --max-concurrency or --rollback, a fleet.yaml changed since) is refused, never half-followed."""
    recorded = {stage.name: stage for stage in record.stages}
    for stage in wanted:
        if (kept := recorded.get(stage.name)) is None:
            continue  # a stage this process adds
        for what, mine, theirs in (
            ("maxConcurrency", stage.max_concurrency, kept.max_concurrency),
            ("maxFailures", stage.max_failures, kept.max_failures),
            ("rollback", stage.rollback, kept.rollback),
            ("approval", stage.approval, kept.approval),
            ("afterStageWait", stage.after_stage_wait, kept.after_stage_wait),
            ("minSuccess", stage.min_success, kept.min_success),
            ("windows", [str(w) for w in stage.windows], [str(w) for w in kept.windows]),
        ):
            if mine != theirs:
                raise _invalid(
                    f"--run-id {record.run_id}: the run planned stage {stage.name} with {what} {theirs}, "
                    f"this process with {mine}: join it as it was planned, or start another run"
                )


def rollout_can_start(specs: Mapping[str, StackSpec]) -> tuple[StackRunner, AzureReader]:
    """Whether a rollout of these stacks can start, as the rollout itself asks before it starts (and `promote
    --apply` before it writes the pin whose rollout it promises): the pulumi CLI, usable by the Automation API; a
    subscription for every stack; an Azure sign-in, each stack read in its cloud. The runner and the reader when it
    can; otherwise `CommandError` (exit 1), the line the rollout gives: what is missing and every way to give it."""
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.access import require_azure
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import SubscriptionClouds, in_clouds

    try:
        require_pulumi_cli()
        runner = AutomationRunner(Path.cwd())  # the version the Automation API needs
    except RunnerError as error:
        raise CommandError(f"fluxfleet rollout: {error}") from None
    subscriptions = {
        name: spec.cluster.subscription_id or default_subscription(cloud=spec.cluster.cloud)
        for name, spec in specs.items()
    }
    clouds = SubscriptionClouds.of((subscriptions[name], spec.cluster.cloud) for name, spec in specs.items())
    reader = in_clouds(ArmReader(), clouds)
    require_azure("rollout", subscriptions, reader, option=False)
    return runner, reader


def _specs(request: RolloutRequest, plan: RolloutPlan, stages: list[StagePlan]) -> dict[str, StackSpec]:
    """The specs of the stacks of `stages`; invalid ones (a cluster another stack names too among them) are
    invalid input."""
    return {name: stack.spec for name, stack in _stacks(request, plan, stages).items()}


def _stacks(request: RolloutRequest, plan: RolloutPlan, stages: list[StagePlan]) -> dict[str, Stack]:
    """`_specs`, each stack with the file that wrote each of its values."""
    from fluxfleet.plan import display_path

    names = [name for stage in stages for name in stage.stacks]
    try:
        return load_run_stacks(names, request.stacks_dir, plan.paths, display_path, request.resume)
    except SpecError as error:
        raise InvalidInput.of(error) from None


def _pins_file(stacks_dir: Path) -> str:
    """fleet.yaml as the origins of the stacks' values name it: the stage pins `pulumi up` applies are read there."""
    from fluxfleet.plan import display_path

    return ProfileLibrary(stacks_dir, display_path(stacks_dir)).fleet_file


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"fluxfleet rollout: {message}")
