"""`fluxfleet status`: the fleet at a glance, from Azure Resource Graph."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, StacksArgument, StacksDirOption
from fluxfleet.cli.output import check_output, stderr, write_report
from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import parse_subscription, stack_paths


class StatusFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


def status(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", help="For stacks without cluster.subscriptionId.")
    ] = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Report format.")] = StatusFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """The fleet at a glance, read-only, from a few Azure Resource Graph queries: per stack its stage, cluster
    state, Flux extension, and per Flux configuration its compliance and the revision it runs against its pin.
    Stacks running a revision other than their stage's stand out. HTML is one self-contained page.

    Exit codes: 0 all healthy, 3 something not healthy, 1 part of the fleet could not be read, 2 invalid input.
    """
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import clouds_of_stacks, fleet_reads, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.status.build import fleet_status
    from fluxfleet.status.report import render
    from modules.spec import FLEET_FILE, SpecError, load_fleet, load_stacks, report_name, stack_files

    check_output("status", "--output", output)
    default = parse_subscription("status", subscription) or default_subscription()
    paths = stack_paths("status", stacks_dir, stacks)
    fleet_path = fleet_file or stacks_dir / FLEET_FILE
    try:
        loaded = load_stacks(paths, display_path)
        everything = [report_name(path) for path in stack_files(stacks_dir)] if stacks else None
        known = sorted(everything or (stack.name for stack in loaded))
        fleet = load_fleet(fleet_path, known, display_path(fleet_path)) if fleet_file or fleet_path.exists() else None
    except SpecError as error:
        raise InvalidInput.of(error) from None
    stage_of = {name: stage.name for stage in (fleet.stages if fleet else ()) for name in stage.stacks}
    try:
        reads = fleet_reads(in_clouds(ArmReader(), clouds_of_stacks(loaded, default)))  # each cloud's own
        stages = [stage.name for stage in fleet.stages] if fleet else []
        report = fleet_status(loaded, reads, stage_of.get, default, stages)
    except AzureError as error:
        stderr(f"fluxfleet status: {error}")
        raise typer.Exit(1) from None
    color = output is None and fmt is StatusFormat.text and sys.stdout.isatty()
    write_report("status", render(report, fmt.value, color=color), output)
    raise typer.Exit(report.exit_code)
