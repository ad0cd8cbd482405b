"""`fluxfleet drift`: what differs between git, Azure and the cluster, and its remediation."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RunsDirOption, StacksArgument, StacksDirOption, SubscriptionOption
from fluxfleet.cli.output import stderr, write_report


EXAMPLES = (
    ("what differs, as a job summary", "fluxfleet drift --format markdown --output drift.md"),
    (
        "nightly: a Teams card when something drifted, and the drifted stacks rolled out",
        "fluxfleet drift --notify env:TEAMS_WEBHOOK_URL --remediate",
    ),
)


class DriftFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    junit = "junit"


def drift(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[DriftFormat, typer.Option("--format", help="Report format.")] = DriftFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", min=1, help="Stacks checked at once.")] = 4,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="Post a Teams card when something drifted or failed; the webhook URL from env:VARIABLE or "
            "keyvault:VAULT/SECRET (never the URL itself).",
        ),
    ] = None,
    remediate_drift: Annotated[
        bool,
        typer.Option(
            "--remediate",
            help="Then roll the drifted stacks out as `fluxfleet rollout` does (fleet.yaml's stages, concurrency, "
            "Flux gate, failure budget, refusals, approvals, a journal to resume).",
        ),
    ] = False,
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = None,
    subscription: SubscriptionOption = None,
    reports: Annotated[
        list[str] | None,
        typer.Option("--report", help="FORMAT=FILE: also write this format of the same run (repeatable)."),
    ] = None,
) -> None:
    """For every stack: what differs between git, Azure and the cluster (infrastructure, Flux, secret rotation).

    Exit codes: 0 in sync, 1 a stack could not be checked (or no pulumi, subscription or sign-in), 2 invalid input,
    3 drift found.
    """
    from fluxfleet.drift.command import DriftRequest, notify_drift, run_drift

    request = DriftRequest(
        stacks=tuple(stacks or ()),
        stacks_dir=stacks_dir,
        fmt=fmt.value,
        output=output,
        reports=tuple(reports or ()),
        max_concurrency=max_concurrency,
        notify=notify,
        remediate=remediate_drift,
        fleet_file=fleet_file,
        runs_dir=runs_dir,
        subscription=subscription,
        color=output is None and fmt is DriftFormat.text and sys.stdout.isatty(),
    )
    result = run_drift(request)
    # Each report written even when another cannot be, and the card still sent: the exit code says what was found.
    for report in result.reports:
        write_report("drift", report.text, report.path, report.option)
    notify_drift(result, warn=stderr)
    raise typer.Exit(result.exit_code)
