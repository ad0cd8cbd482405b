"""`fluxfleet config`: a stack's effective config, with the file each value comes from."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksDirOption
from fluxfleet.cli.output import stderr, write_report
from fluxfleet.exits import ExitCode


EXAMPLES = (
    ("where each value of dev's config comes from", "fluxfleet config dev"),
    ("the same, named by its file, as JSON", "fluxfleet config stacks/Pulumi.prod-weu.yaml --format json"),
)


class ConfigFormat(StrEnum):
    text = "text"
    json = "json"


def config(
    stack: Annotated[str, typer.Argument(help="The stack whose effective config to show.")],
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[ConfigFormat, typer.Option("--format", help="Report format.")] = ConfigFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """Show a stack's effective config, its profiles merged in, with the file each value comes from. Secrets are
    masked.

    Exit codes: 0 the config is valid, 2 invalid input (the config is still shown when its files can be merged).
    """
    from fluxfleet.effective_config import ConfigRequest, config_of, render

    config = config_of(ConfigRequest(stack, stacks_dir, output))
    color = output is None and fmt is ConfigFormat.text and sys.stdout.isatty()
    write_report("config", render(config, fmt.value, color=color), output)
    for error in config.errors:
        stderr(str(error))
    raise typer.Exit(ExitCode.INVALID_INPUT if config.errors else ExitCode.OK)
