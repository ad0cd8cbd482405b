"""`fluxfleet runs`: the runs (rollouts, decommissions) of the run-state store, and where each stands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import RunsDirOption
from fluxfleet.cli.output import write_report

EXAMPLES = (
    ("every run, with its status and counts", "fluxfleet runs"),
    ("one run stage by stage, for a script", "fluxfleet runs github-8812 --format json"),
    ("one run as a timeline, a page to open or publish", "fluxfleet runs github-8812 --format html --output run.html"),
)


class RunsFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"


def runs(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN", help="One run, stage by stage (with --format html, as a timeline).")
    ] = None,
    fmt: Annotated[RunsFormat, typer.Option("--format", help="Report format.")] = RunsFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """The runs kept in the run-state store, rollouts and decommissions (each run's id, kind, start, status, and how
    many of its stacks are done, failed or pending), or one run stage by stage: what each stage has done, whether it
    passed, and until when it bakes. Every process that recorded into a run counts, on any machine. `--format html`
    draws one run as a timeline: per stage, each stack's update, gate and rollback and the stage's bake as bars in time.

    Exit codes: 0 listed, 1 the store cannot be read, no such run, or an entry that is no run, 2 invalid input.
    """
    from fluxfleet.runs.command import RunsRequest, list_runs

    result = list_runs(RunsRequest(run_id, runs_dir, fmt.value, output))
    write_report("runs", result.report, output)
    raise typer.Exit(result.exit_code)
