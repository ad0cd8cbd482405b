"""`fluxfleet preflight`: is each stack ready to deploy (providers, cluster, extension, Key Vault)?"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksArgument, StacksDirOption, SubscriptionOption
from fluxfleet.cli.output import versions_notice, write_report


EXAMPLES = (
    ("is every stack ready to deploy?", "fluxfleet preflight"),
    (
        "one stack in a given subscription, registering missing resource providers",
        "fluxfleet preflight dev --fix --subscription 00000000-0000-0000-0000-000000000000",
    ),
)


class PreflightFormat(StrEnum):
    text = "text"
    json = "json"


def preflight(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[PreflightFormat, typer.Option("--format", help="Report format.")] = PreflightFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    subscription: SubscriptionOption = None,
    fix: Annotated[bool, typer.Option("--fix", help="Register missing resource providers and wait for them.")] = False,
) -> None:
    """Check, before any deploy, that each stack's providers, cluster, Flux extension and Key Vault secrets are
    ready (Azure credentials: DefaultAzureCredential).

    Exit codes: 0 all checks passed, 1 a check failed or nobody is signed in, 2 invalid input.
    """
    from fluxfleet.preflight import to_json, to_text
    from fluxfleet.preflight.command import PreflightRequest, run_preflight

    fleet = run_preflight(PreflightRequest(tuple(stacks or ()), stacks_dir, subscription, fix, output))
    if fmt is PreflightFormat.json:
        report = json.dumps(to_json(fleet), indent=2) + "\n"
    else:
        report = to_text(fleet, color=output is None and sys.stdout.isatty())
    write_report("preflight", report, output)
    versions_notice()
    raise typer.Exit(fleet.exit_code)
