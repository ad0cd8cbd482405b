"""`fluxfleet inventory`: the clusters a selection names, compared with the stack files."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksDirOption
from fluxfleet.cli.output import stderr, write_report


EXAMPLES = (
    (
        "the Arc clusters of the stores, against the stack files",
        "fluxfleet inventory --select 'kind:arc tag:fleet=stores'",
    ),
    (
        "a stack file for each new store, over the edge-store profile",
        "fluxfleet inventory --select 'kind:arc tag:fleet=stores' --profile edge-store --write",
    ),
)


class InventoryFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class Cloud(StrEnum):  # modules/clouds.py's names (tests/fluxfleet/test_inventory.py checks they agree)
    AzureCloud = "AzureCloud"
    AzureChinaCloud = "AzureChinaCloud"
    AzureUSGovernment = "AzureUSGovernment"


def inventory(
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="Which clusters: kind:aks|arc, rg:NAME, location:REGION, tag:KEY=VALUE; terms all hold, a key given "
            "twice means either value, * in a value matches anything (e.g. 'tag:fleet=stores kind:arc').",
        ),
    ],
    profile: Annotated[
        str | None, typer.Option("--profile", help="The profile new stacks use (STACKS_DIR/profiles/NAME.yaml).")
    ] = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription",
            help="Look in this subscription (repeatable; default: the subscriptions of the stack files, and "
            "AZURE_SUBSCRIPTION_ID, else az's current subscription).",
        ),
    ] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[InventoryFormat, typer.Option("--format", help="Report format.")] = InventoryFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Create a stack file for each new member (needs --profile).")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete the stack files of the stacks whose cluster is gone (ARM answers 404), and say what their "
            "Pulumi stacks still hold.",
        ),
    ] = False,
    cloud: Annotated[
        Cloud, typer.Option("--cloud", help="The Azure cloud to look in; only its stacks (cluster.cloud) count.")
    ] = Cloud.AzureCloud,
) -> None:
    """Find the AKS and Arc clusters a selection names (one Azure Resource Graph query) and compare them with the
    stack files: new members, stacks whose cluster moved, stacks whose cluster is gone (confirmed by an ARM GET
    that answers 404). Stack files are only created with --write and deleted with --prune, never edited; neither
    acts while a subscription is unreadable. A stack file that names no subscription is in the default one (as
    for `pulumi up`), never in --subscription's.

    Exit codes: 0 in step, 1 Azure could not be read (a subscription could not, or a stack could not be confirmed
    gone: that wins over 3, the picture is incomplete), no subscription to look in or no sign-in, or a stack file
    could not be changed, 2 invalid input, 3 differences found (also when --write or --prune acted on them, so a CI
    job knows to commit the stack files).
    """
    from fluxfleet.inventory.command import InventoryRequest, take_inventory_of
    from fluxfleet.inventory_report import attention_lines, render

    request = InventoryRequest(
        select, profile, tuple(subscription or ()), stacks_dir, write, prune, cloud.value, output
    )
    result = take_inventory_of(request)
    color = output is None and fmt is InventoryFormat.text and sys.stdout.isatty()
    write_report("inventory", render(result, fmt.value, color=color), output)
    if fmt is not InventoryFormat.text or output is not None:  # the text report already shows them
        for line in attention_lines(result):
            stderr(f"fluxfleet inventory: {line}")
    raise typer.Exit(result.exit_code)
