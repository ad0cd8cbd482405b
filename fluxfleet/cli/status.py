"""`fluxfleet status`: the fleet at a glance, from Azure Resource Graph."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, StacksArgument, StacksDirOption, SubscriptionOption
from fluxfleet.cli.output import write_report


EXAMPLES = (
    ("the fleet at a glance", "fluxfleet status"),
    ("one page to publish", "fluxfleet status --format html --output status.html"),
)


class StatusFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


def status(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    subscription: SubscriptionOption = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Report format.")] = StatusFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """The fleet at a glance, read-only, from a few Azure Resource Graph queries: per stack its stage, cluster
    state, Flux extension, and per Flux configuration its compliance and the revision it runs against its pin.
    Stacks running a revision other than their stage's stand out. HTML is one self-contained page.

    Exit codes: 0 all healthy, 3 something not healthy, 1 part of the fleet could not be read (or no subscription
    or sign-in), 2 invalid input.
    """
    from fluxfleet.status.command import StatusRequest, fleet_status_of
    from fluxfleet.status.report import render

    report = fleet_status_of(StatusRequest(tuple(stacks or ()), stacks_dir, fleet_file, subscription, output))
    color = output is None and fmt is StatusFormat.text and sys.stdout.isatty()
    write_report("status", render(report, fmt.value, color=color), output)
    raise typer.Exit(report.exit_code)
