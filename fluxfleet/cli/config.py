"""`fluxfleet config`: a stack's effective config, with the file each value comes from."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import StacksDirOption
from fluxfleet.cli.output import check_output, stderr, write_report
from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import stack_paths


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
    from fluxfleet.effective_config import effective_config, render
    from fluxfleet.plan import display_path
    from modules.spec import SpecError

    check_output("config", "--output", output)
    [path] = stack_paths("config", stacks_dir, [stack])
    try:
        config = effective_config(path, display_path(path))
    except SpecError as error:
        raise InvalidInput.of(error) from None
    color = output is None and fmt is ConfigFormat.text and sys.stdout.isatty()
    write_report("config", render(config, fmt.value, color=color), output)
    for error in config.errors:
        stderr(str(error))
    raise typer.Exit(2 if config.errors else 0)
