"""`fluxfleet decommission`: clusters retired as a journaled, resumable run, approved with --yes."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RunsDirOption, StacksDirOption
from fluxfleet.cli.output import stderr, write_report
from pathlib import Path

EXAMPLES = (
    ("what retiring a stack deletes, in order, and what it keeps", "fluxfleet decommission dev --dry-run"),
    ("retire it", "fluxfleet decommission dev --yes"),
    ("continue a decommission that stopped", "fluxfleet decommission --resume 20261207T101500Z-ab12"),
)


def decommission(
    stacks: Annotated[list[str] | None, typer.Argument(help="The stacks to retire, by name, in order.")] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Approve it: every step runs (with prune on, what Flux applied goes too)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show, per stack, what would be deleted in order and what is kept.")
    ] = False,
    run_id: Annotated[str | None, typer.Option("--run-id", help="The new run's id (default: a new one).")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this decommission run (its id).")] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Retire clusters, stack by stack: the Flux configurations are deleted first (with prune on, Flux deletes what it
    applied on the cluster: the command says so per configuration and goes on only with --yes), then the Flux
    extension; an AKS cluster is destroyed, an Arc cluster stays connected (it was adopted, never created); then
    `pulumi stack rm`, the stack file, and the stack's name in fleet.yaml.

    Each step is journaled before and after it runs (`fluxfleet runs` lists the run): killed at any point, `--resume
    RUN` continues without repeating a step that completed, and settles one in doubt from the stack's Pulumi history.
    A protected cluster (`fluxfleet:cluster.protect`, true unless set to false) is refused.

    Exit codes: 0 done (or the dry run shown), 1 refused (protected, no --yes), failed or halted, or no pulumi, 2
    invalid input.
    """
    from fluxfleet.decommission.command import DecommissionRequest, run_decommission

    request = DecommissionRequest(
        stacks=tuple(stacks or ()),
        yes=yes,
        dry_run=dry_run,
        run_id=run_id,
        resume=resume,
        stacks_dir=stacks_dir,
        fleet_file=fleet_file,
        runs_dir=runs_dir,
    )
    result = run_decommission(request, warn=stderr)
    write_report("decommission", result.report, None)
    raise typer.Exit(result.exit_code)
