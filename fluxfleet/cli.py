"""The `fluxfleet` command line: it parses arguments and calls the library; nothing more."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="GitOps with Flux for fleets of AKS and Arc clusters."
)


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


@app.callback()
def main() -> None:
    """fluxfleet: plan, deploy and check Flux on Azure Kubernetes clusters, one Pulumi stack per cluster."""


@app.command()
def plan(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stack names; all Pulumi.*.yaml in the stacks dir if none.")
    ] = None,
    stacks_dir: Annotated[Path, typer.Option("--stacks-dir", help="Directory of the stack files.")] = Path("stacks"),
    fmt: Annotated[PlanFormat, typer.Option("--format", help="Report format.")] = PlanFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", help="URL=DIR: check kustomization paths against a local checkout of that repository."
        ),
    ] = None,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config", help="YAML or JSON: policy id to mandatory, advisory or disabled (as the pack's config)."
        ),
    ] = None,
) -> None:
    """Run each stack's program offline under Pulumi's mock engine: resources, kustomization graph, policy
    violations, errors.

    Exit codes: 0 all stacks valid and compliant, 1 a mandatory policy violated, 2 invalid input.
    """
    from fluxfleet.plan import plan_fleet, stack_files
    from fluxfleet.report import render
    from modules.spec import SpecError, load_policy_levels
    from policies.rules import RULES_BY_ID

    levels = {}
    if policy_config is not None:
        try:
            levels = load_policy_levels(policy_config, list(RULES_BY_ID))
        except SpecError as error:
            for issue in error.issues:
                typer.echo(f"fluxfleet plan: --policy-config {issue}", err=True)
            raise typer.Exit(2) from None

    if not stacks_dir.is_dir():
        typer.echo(f"fluxfleet plan: {stacks_dir}: no such directory", err=True)
        raise typer.Exit(2)
    checkouts = {}
    for item in source or ():
        url, _, directory = item.rpartition("=")
        if not url or not Path(directory).is_dir():
            typer.echo(f"fluxfleet plan: --source {item}: expected URL=DIR with an existing directory", err=True)
            raise typer.Exit(2)
        checkouts[url] = Path(directory)
    paths = stack_files(stacks_dir, stacks or ())
    if not paths:
        typer.echo(f"fluxfleet plan: {stacks_dir}: no Pulumi.<stack>.yaml files", err=True)
        raise typer.Exit(2)
    fleet = plan_fleet(paths, checkouts=checkouts, policy_levels=levels)
    report = render(fleet, fmt.value, color=output is None and fmt is PlanFormat.text and sys.stdout.isatty())
    if output is None:
        sys.stdout.write(report)
    else:
        try:
            output.write_text(report, encoding="utf-8")
        except OSError as error:
            typer.echo(f"fluxfleet plan: --output {output}: {error.strerror}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {output}", err=True)
    if fmt is not PlanFormat.text or output is not None:  # the text report already shows them
        for stack in fleet.stacks:
            for error in stack.errors:
                typer.echo(str(error), err=True)
            for violation in stack.violations:
                typer.echo(f"{stack.file}: {violation.level} {violation}", err=True)
    raise typer.Exit(fleet.exit_code)
