"""`fluxfleet workflows`: the stage jobs of deploy.yml, written from fleet.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, StacksDirOption
from fluxfleet.cli.output import stderr


EXAMPLES = (
    ("write deploy.yml's stage jobs after a change to fleet.yaml's stages", "fluxfleet workflows"),
    ("in CI: fail when the committed deploy.yml is not what fleet.yaml gives", "fluxfleet workflows --check"),
)


def workflows(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing: exit 1, with what differs, when the file is out of date.")
    ] = False,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    output: Annotated[
        Path, typer.Option("--output", help="The deploy workflow whose stage jobs are written; the rest is kept.")
    ] = Path(".github/workflows/deploy.yml"),
) -> None:
    """Write the stage jobs of the deploy workflow from fleet.yaml: one job a stage, in its order, each after the one
    before, each running deploy-stage.yml with the stage's matrix, approval, rollback and bake. The rest of the file
    (comments, triggers, permissions, env, the `stages` job's steps) is kept as written.

    Exit codes: 0 written (or, with --check, up to date), 1 with --check, the file is not what fleet.yaml gives,
    2 invalid input.
    """
    from fluxfleet.workflows.command import WorkflowsRequest, run_workflows

    result = run_workflows(WorkflowsRequest(stacks_dir, fleet_file, output, check))
    stderr(result.line)
    raise typer.Exit(result.exit_code)
