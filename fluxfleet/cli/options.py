"""Options more than one command takes, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StacksArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Stacks, by name (dev) or file (stacks/Pulumi.dev.yaml); every stack of STACKS_DIR if none."),
]
StacksDirOption = Annotated[Path, typer.Option("--stacks-dir", help="Directory of the stack files.")]
FleetOption = Annotated[Path | None, typer.Option("--fleet", help="Default: STACKS_DIR/fleet.yaml.")]
RunsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        help="Keep runs in this directory (default: .fluxfleet/runs in Pulumi's azblob container when "
        "PULUMI_BACKEND_URL is azblob://CONTAINER, else in the working directory).",
    ),
]
RollbackOption = Annotated[
    bool,
    typer.Option(
        "--rollback",
        help="Every stage rolls back (as `rollback: true` in fleet.yaml): a stack whose gate fails returns to the "
        "refs it ran before; past maxFailures, its whole stage and the stage's pins.",
    ),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", help="URL=DIR: check kustomization paths against a local checkout of that repository."),
]
SubscriptionOption = Annotated[
    str | None,
    typer.Option(
        "--subscription",
        help="For stacks without cluster.subscriptionId (default: AZURE_SUBSCRIPTION_ID, else az's current "
        "subscription).",
    ),
]
