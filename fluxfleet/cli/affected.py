"""`fluxfleet affected`: the stacks a change affects, read from git, each with why."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksDirOption
from fluxfleet.cli.output import write_report
from fluxfleet.exits import ExitCode


EXAMPLES = (
    ("what the working tree's change affects, against main", "fluxfleet affected --base main"),
    (
        "a pull request's stacks, as JSON for a matrix (`legs`: at most 256 jobs)",
        "fluxfleet affected --base origin/main --head HEAD --format json --output affected.json",
    ),
    ("the same, as a pull request comment", "fluxfleet affected --base origin/main --head HEAD --format markdown"),
)


class AffectedFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def affected(
    base: Annotated[str, typer.Option("--base", help="The commit the change starts from: a branch, tag or SHA.")],
    head: Annotated[
        str | None, typer.Option("--head", help="The commit the change ends at (default: the working tree).")
    ] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[AffectedFormat, typer.Option("--format", help="Report format.")] = AffectedFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """List the stacks whose effective config, stage or program changed between two commits (or a commit and the
    working tree), each with why: a stack file; a profile, for the stacks whose effective config it changes; a stage
    of fleet.yaml (its stacks, rules or pins); the program (modules/, __main__.py, Pulumi.yaml, policies/, the locked
    dependencies), for every stack; a new, renamed or deleted stack. Read from git: no Azure, no Pulumi.

    Exit codes: 0 the list (empty: nothing affected), 2 invalid input (a ref git does not know, no git repository, an
    affected stack invalid at head).
    """
    from fluxfleet.affected.command import AffectedRequest, render, run_affected

    report = run_affected(AffectedRequest(base, head, stacks_dir, output))
    write_report("affected", render(report, fmt.value), output)
    raise typer.Exit(ExitCode.OK)
