"""`fluxfleet plan`: each stack's program run offline under Pulumi's mock engine."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import SourceOption, StacksArgument, StacksDirOption
from fluxfleet.cli.output import progress, stderr, versions_notice, write_report


EXAMPLES = (
    ("every stack of stacks/, offline", "fluxfleet plan"),
    ("two stacks, as SARIF for code scanning", "fluxfleet plan dev prod-weu --format sarif --output plan.sarif"),
    (
        "kustomization paths checked in a local checkout, at the ref each stack runs",
        "fluxfleet plan --source https://github.com/contoso/fleet-gitops=../fleet-gitops",
    ),
)


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def plan(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[PlanFormat, typer.Option("--format", help="Report format.")] = PlanFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    source: SourceOption = None,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config", help="YAML or JSON: policy id to mandatory, advisory or disabled (as the pack's config)."
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, max=256, help="Plan in up to N worker processes (default: one per core)."),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Plan every stack, neither reading nor writing the cache of each stack's plan "
            "(.fluxfleet/cache/plan/, or FLUXFLEET_CACHE_DIR); the report is the same either way.",
        ),
    ] = False,
) -> None:
    """Run each stack's program offline under Pulumi's mock engine: resources, kustomization graph, policy
    violations, errors.

    Exit codes: 0 all stacks valid and compliant, 1 a mandatory policy violated, 2 invalid input.
    """
    from fluxfleet.plan.command import PlanRequest, cache_lines, plan_inputs, run_plan
    from fluxfleet.plan.report import plan_lines, render

    request = PlanRequest(
        tuple(stacks or ()), stacks_dir, tuple(source or ()), policy_config, jobs, not no_cache, output=output
    )
    inputs = plan_inputs(request)
    with progress("planning", len(inputs.paths)) as advance:
        fleet = run_plan(inputs, on_planned=advance)
    report = render(fleet, fmt.value, color=output is None and fmt is PlanFormat.text and sys.stdout.isatty())
    write_report("plan", report, output)
    if fmt is not PlanFormat.text or output is not None:  # the text report already shows them
        for line in plan_lines(fleet):
            stderr(line)
    for line in cache_lines(inputs, fleet):
        stderr(line)
    versions_notice()
    raise typer.Exit(fleet.exit_code)
