"""`fluxfleet rollout`: fleet.yaml's stages applied with `pulumi up`, each gated on Flux."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RollbackOption, RunsDirOption, StacksDirOption
from fluxfleet.cli.output import stderr, write_report


EXAMPLES = (
    ("what a rollout would do, and how long it would take", "fluxfleet rollout --dry-run"),
    ("continue a run that stopped", "fluxfleet rollout --resume 20261207T101500Z-ab12"),
    ("one matrix leg of a CI run", "fluxfleet rollout --run-id github-8812 --stage dev --stacks dev"),
)


class RolloutFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def rollout(
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    stacks: Annotated[
        list[str] | None,
        typer.Option(
            "--stacks",
            help="Only these stacks: names (as other commands take them), comma-separated or repeated; a glob such as "
            "'edge-*' matches several.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the stages, stacks, order, the ref each applies and estimated duration; change nothing.",
        ),
    ] = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this run (its id).")] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Start the run of this id, or join it: every process given one id (a CI job's matrix legs, on any "
            "machine) records into one run, each stack applied once. With --matrix: the stage's progress in the run, "
            "and only the stacks it has not applied yet. An id is letters, digits, '-', '_' and '.'.",
        ),
    ] = None,
    approve: Annotated[list[str] | None, typer.Option("--approve", help="Approve this stage (repeatable).")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="At most this many stacks at once, in any stage.")
    ] = None,
    rollback: RollbackOption = False,
    matrix: Annotated[
        str | None, typer.Option("--matrix", help="Print a GitHub Actions matrix (JSON) of this stage's stacks.")
    ] = None,
    soak: Annotated[
        str | None,
        typer.Option(
            "--soak",
            help="With --run-id: only the soak of this stage, which has passed: its afterStageWait (what is left of "
            "it), its stacks watched; one that turns unhealthy fails, and rolls back where the stage does (CI's bake).",
        ),
    ] = None,
    fmt: Annotated[RolloutFormat, typer.Option("--format", help="Summary format.")] = RolloutFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the summary to this file.")] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Apply the stacks of fleet.yaml stage by stage with `pulumi up`, each gated on Flux reporting healthy.

    Exit codes: 0 done (or this process's part of a run done), 1 halted, rolled back, failed, waiting for approval,
    an earlier stage of the run not passed, or no pulumi, subscription or sign-in, 2 invalid input.
    """
    from fluxfleet.rollout.command import RolloutRequest, run_rollout

    request = RolloutRequest(
        stacks_dir=stacks_dir,
        fleet_file=fleet_file,
        runs_dir=runs_dir,
        stage=stage,
        stacks=tuple(name for given in stacks or () for name in given.split(",") if name),
        dry_run=dry_run,
        resume=resume,
        run_id=run_id,
        approve=tuple(approve or ()),
        max_concurrency=max_concurrency,
        rollback=rollback,
        matrix=matrix,
        soak=soak,
        fmt=fmt.value,
        output=output,
        color=output is None and fmt is RolloutFormat.text and sys.stdout.isatty(),
    )
    result = run_rollout(request, warn=stderr)
    if result.matrix is not None:  # for the workflow's fan-out: on stdout, whatever --output says
        typer.echo(json.dumps(result.matrix))
    else:
        write_report("rollout", result.report, output)
    raise typer.Exit(result.exit_code)
