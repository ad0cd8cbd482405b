"""The `fluxfleet` command line: it parses arguments and calls the library; nothing more."""

from __future__ import annotations

import json
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


class PreflightFormat(StrEnum):
    text = "text"
    json = "json"


StacksArgument = Annotated[
    list[str] | None, typer.Argument(help="Stack names; all Pulumi.*.yaml in the stacks dir if none.")
]
StacksDirOption = Annotated[Path, typer.Option("--stacks-dir", help="Directory of the stack files.")]


@app.callback()
def main() -> None:
    """fluxfleet: plan, deploy and check Flux on Azure Kubernetes clusters, one Pulumi stack per cluster."""


@app.command()
def plan(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
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
    from fluxfleet.plan import plan_fleet
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

    checkouts = {}
    for item in source or ():
        url, _, directory = item.rpartition("=")
        if not url or not Path(directory).is_dir():
            typer.echo(f"fluxfleet plan: --source {item}: expected URL=DIR with an existing directory", err=True)
            raise typer.Exit(2)
        checkouts[url] = Path(directory)
    paths = _stack_paths("plan", stacks_dir, stacks)
    fleet = plan_fleet(paths, checkouts=checkouts, policy_levels=levels)
    report = render(fleet, fmt.value, color=output is None and fmt is PlanFormat.text and sys.stdout.isatty())
    _write("plan", report, output)
    if fmt is not PlanFormat.text or output is not None:  # the text report already shows them
        for stack in fleet.stacks:
            for error in stack.errors:
                typer.echo(str(error), err=True)
            for violation in stack.violations:
                typer.echo(f"{stack.file}: {violation.level} {violation}", err=True)
    raise typer.Exit(fleet.exit_code)


@app.command()
def preflight(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[PreflightFormat, typer.Option("--format", help="Report format.")] = PreflightFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    subscription: Annotated[
        str | None,
        typer.Option("--subscription", help="For stacks without cluster.subscriptionId (default: az's current)."),
    ] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Register missing resource providers and wait for them.")] = False,
) -> None:
    """Check, before any deploy, that each stack's providers, cluster, Flux extension and Key Vault secrets are
    ready (Azure credentials: DefaultAzureCredential).

    Exit codes: 0 all checks passed, 1 a check failed, 2 invalid input.
    """
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.plan import display_path
    from fluxfleet.preflight import preflight_fleet, to_json, to_text

    paths = _stack_paths("preflight", stacks_dir, stacks)
    fleet = preflight_fleet(paths, ArmReader(), subscription_id=subscription, fix=fix, display=display_path)
    if fmt is PreflightFormat.json:
        report = json.dumps(to_json(fleet), indent=2) + "\n"
    else:
        report = to_text(fleet, color=output is None and sys.stdout.isatty())
    _write("preflight", report, output)
    raise typer.Exit(fleet.exit_code)


def _stack_paths(command: str, stacks_dir: Path, names: list[str] | None) -> list[Path]:
    from fluxfleet.plan import stack_files

    if not stacks_dir.is_dir():
        typer.echo(f"fluxfleet {command}: {stacks_dir}: no such directory", err=True)
        raise typer.Exit(2)
    paths = stack_files(stacks_dir, names or ())
    if not paths:
        typer.echo(f"fluxfleet {command}: {stacks_dir}: no Pulumi.<stack>.yaml files", err=True)
        raise typer.Exit(2)
    return paths


def _write(command: str, report: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(report)
        return
    try:
        output.write_text(report, encoding="utf-8")
    except OSError as error:
        typer.echo(f"fluxfleet {command}: --output {output}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {output}", err=True)
