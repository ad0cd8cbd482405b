"""`fluxfleet preflight`: is each stack ready to deploy (providers, cluster, extension, Key Vault)?"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksArgument, StacksDirOption
from fluxfleet.cli.output import check_output, versions_notice, write_report
from fluxfleet.inputs import parse_subscription, stack_paths, subscription_of_stack


class PreflightFormat(StrEnum):
    text = "text"
    json = "json"


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
    from fluxfleet.azure.clouds import in_clouds, stack_clouds
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.preflight import preflight_fleet, to_json, to_text

    check_output("preflight", "--output", output)
    subscription = parse_subscription("preflight", subscription)
    paths = stack_paths("preflight", stacks_dir, stacks)
    subscription_of = subscription_of_stack(subscription)
    reader = in_clouds(ArmReader(), stack_clouds(paths, display_path, subscription_of))  # a reader per cloud
    try:  # the clusters and extensions of every stack read at once through Resource Graph, once signed in
        reader.signed_in_identity()
        reader = fleet_reader_of_stacks(paths, display_path, subscription_of, reader, fall_back=False)
    except AzureError:
        pass  # preflight's own credential check says how to sign in
    fleet = preflight_fleet(paths, reader, subscription_id=subscription, fix=fix, display=display_path)
    if fmt is PreflightFormat.json:
        report = json.dumps(to_json(fleet), indent=2) + "\n"
    else:
        report = to_text(fleet, color=output is None and sys.stdout.isatty())
    write_report("preflight", report, output)
    versions_notice()
    raise typer.Exit(fleet.exit_code)
