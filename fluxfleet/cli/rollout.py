"""`fluxfleet rollout`: fleet.yaml's stages applied with `pulumi up`, each gated on Flux."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RollbackOption, RunsDirOption, StacksDirOption
from fluxfleet.cli.output import check_output, stderr, write_report
from fluxfleet.exits import InvalidInput
from fluxfleet.rollout.production import run_journaled


class RolloutFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def rollout(
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    stacks_glob: Annotated[str | None, typer.Option("--stacks", help="Only the stacks matching this glob.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the stages, stacks, order and estimated duration; change nothing.")
    ] = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this run (its id).")] = None,
    approve: Annotated[list[str] | None, typer.Option("--approve", help="Approve this stage (repeatable).")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="At most this many stacks at once, in any stage.")
    ] = None,
    rollback: RollbackOption = False,
    matrix: Annotated[
        str | None, typer.Option("--matrix", help="Print a GitHub Actions matrix (JSON) of this stage's stacks.")
    ] = None,
    fmt: Annotated[RolloutFormat, typer.Option("--format", help="Summary format.")] = RolloutFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the summary to this file.")] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = Path(".fluxfleet/runs"),
) -> None:
    """Apply the stacks of fleet.yaml stage by stage with `pulumi up`, each gated on Flux reporting healthy.

    Exit codes: 0 done, 1 halted, rolled back, failed or waiting for approval, 2 invalid input.
    """
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import SubscriptionClouds, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.clock import SystemClock
    from fluxfleet.rollout.journal import Journal, RunStatus, RunTaken, StackState, history
    from fluxfleet.plan import display_path
    from fluxfleet.rollout.orchestrator import Selection, estimate, load_inputs, load_specs, new_run
    from fluxfleet.rollout.report import render_dry_run, render_summary
    from fluxfleet.runner import RunnerError
    from modules.spec import FLEET_FILE, SpecError, shown

    def invalid(message: str) -> typer.Exit:
        stderr(f"fluxfleet rollout: {message}")
        return typer.Exit(2)

    if not stacks_dir.is_dir():
        raise invalid(f"{stacks_dir}: no such directory")
    check_output("rollout", "--output", output)  # before anything is read or applied
    try:
        fleet_path = fleet_file or stacks_dir / FLEET_FILE
        fleet, paths = load_inputs(stacks_dir, fleet_path, display_path)
    except SpecError as error:
        raise InvalidInput.of(error) from None
    for name in fleet.unstaged:
        stderr(f"fluxfleet rollout: warning: {fleet.unstaged_warning(name)}")
    known_stages = [s.name for s in fleet.stages]
    for name in [stage, matrix, *(approve or ())]:
        if name is not None and name not in known_stages:
            raise invalid(f"no stage {shown(name)} in {fleet.file} (stages: {', '.join(known_stages)})")
    # options that would not apply are refused, never ignored
    if matrix is not None and stage is not None:
        raise invalid("--matrix names its stage: drop --stage")
    if matrix is not None and rollback:
        raise invalid("--matrix plans a stage as fleet.yaml says: set `rollback: true` on the stage, not --rollback")
    if resume is not None:
        kept = [
            option
            for option, value in (
                ("--stage", stage),
                ("--stacks", stacks_glob),
                ("--max-concurrency", max_concurrency),
                ("--matrix", matrix),
                ("--rollback", rollback or None),
            )
            if value is not None
        ]
        if kept:
            raise invalid(f"--resume continues a run as it was planned: {', '.join(kept)} cannot change it")
    selection = Selection(stage=matrix or stage, stacks=stacks_glob, max_concurrency=max_concurrency, rollback=rollback)
    if stacks_glob is not None and not any(planned.stacks for planned in selection.plan(fleet)):
        where = f"stage {stage or matrix}" if stage or matrix else fleet.file
        raise invalid(f"--stacks {shown(stacks_glob)} matches no stack of {where}")

    def specs_of(stages) -> dict:
        """The specs of the stacks of `stages`; invalid ones (a cluster another stack names too among them) exit 2."""
        try:
            return load_specs([name for s in stages for name in s.stacks], stacks_dir, paths, display_path, resume)
        except SpecError as error:
            raise InvalidInput.of(error) from None

    if matrix is not None:  # for CI fan-out: needs neither Pulumi nor Azure
        [planned] = selection.plan(fleet) or [None]
        stacks = planned.stacks if planned else []
        specs_of([planned] if planned else [])  # a job per stack that could not start is no plan
        concurrency = planned.max_concurrency if planned else 1
        rules = next(s for s in fleet.stages if s.name == matrix)
        # deploy-stage.yml bakes between stages, as a run does: never after the last stage that has stacks
        staged = [s.name for s in Selection(stacks=stacks_glob).plan(fleet)]
        wait = rules.after_stage_wait if matrix in staged[:-1] else 0
        typer.echo(
            json.dumps(
                {
                    "stage": matrix,
                    "matrix": {"stack": stacks},
                    "maxParallel": concurrency,
                    "maxFailures": rules.max_failures,
                    "afterStageWait": wait,  # seconds
                    "approval": rules.approval,
                    "rollback": rules.rollback,  # deploy-stage.yml then runs the stage as one job, not a matrix
                }
            )
        )
        raise typer.Exit(0)

    if dry_run:  # reads, never writes: not even the log of the run it shows
        try:
            stages = Journal.load(runs_dir, resume).record.stages if resume else selection.plan(fleet)
        except ValueError as error:
            raise invalid(str(error)) from None
        specs_of(stages)  # the stacks it would apply, valid as the run would need them
        durations = history(runs_dir)
        samples = sum(len(seconds) for seconds in durations.values())
        write_report("rollout", render_dry_run(estimate(stages, durations), fmt.value, samples), output)
        raise typer.Exit(0)
    journal = None
    if resume is not None:  # taken first, read after: what another process wrote until it ended is all there
        try:
            journal = Journal.open(runs_dir, resume)
        except RunTaken as error:
            stderr(f"fluxfleet rollout: {error}")
            raise typer.Exit(1) from None
        except ValueError as error:
            raise invalid(str(error)) from None
    specs = specs_of(journal.record.stages if journal else selection.plan(fleet))
    try:  # no usable pulumi CLI, or no Azure token for the checks and the gate: say so before anything starts
        runner = AutomationRunner(Path.cwd())
        clouds = SubscriptionClouds.of(
            (s.cluster.subscription_id or default_subscription(cloud=s.cluster.cloud), s.cluster.cloud)
            for s in specs.values()
        )
        reader = in_clouds(ArmReader(), clouds)  # the checks and the gate read each stack in its cloud
        reader.signed_in_identity()
    except (RunnerError, AzureError) as error:
        stderr(f"fluxfleet rollout: {error}")
        raise typer.Exit(1) from None
    if journal is None:
        try:
            journal = Journal.create(runs_dir, new_run(fleet, selection, SystemClock().now()))
        except ValueError as error:
            raise invalid(f"--runs-dir {error}") from None
    record = run_journaled("rollout", journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt.value, approve)
    color = output is None and fmt is RolloutFormat.text and sys.stdout.isatty()
    write_report("rollout", render_summary(record, fmt.value, color=color), output)
    failed = any(entry.state is StackState.failed for entry in record.stacks.values())
    raise typer.Exit(0 if record.status is RunStatus.done and not failed else 1)
