"""The command group: the `fluxfleet` app every command module registers with, how help names values, and how a
command's end maps to an exit code (`fluxfleet/exits.py`), an unexpected exception included."""

from __future__ import annotations

import errno
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from typing import Annotated

import typer
from typer.core import TyperGroup

from fluxfleet.cli.output import stderr
from fluxfleet.exits import CommandError, ExitCode

ERROR_DETAIL_MAX = 200  # characters of an unexpected exception's message on stderr


class _Commands(TyperGroup):
    """The command group: an unexpected exception in any command is one line on stderr and exit 70, never a
    traceback (FLUXFLEET_DEBUG=1 shows it). typer's usage errors (2), typer.Exit and Ctrl-C pass as they are.
    Help shows each option's value as a name (`--stacks-dir STACKS_DIR`), not as a Python type (`<path>`)."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            for param in command.get_params(ctx):  # the help option too: it is made once and kept
                _name_value(param)
        return command

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            _name_value(param)
        return params

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except CommandError as error:  # the command's package ended it: its lines, its exit code
            for line in error.lines:
                stderr(line)
            raise typer.Exit(error.exit_code) from None
        except Exception as error:
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # the reader of stdout went away (`| head`): typer exits quietly
            raise _internal_error(error) from None


# What an option's value is, where its parameter's name does not say it.
VALUE_NAMES = {
    "resume": "RUN_ID",
    "run_id": "RUN_ID",
    "approve": "STAGE",
    "matrix": "STAGE",
    "source": "URL=DIR",
    "output": "FILE",
    "to": "REF",
    "stacks": "STACK",
}
ARGUMENT_NAMES = {"stacks": "STACK"}  # each is one stack


def _name_value(param) -> None:
    """The help's name for what a parameter takes: nothing for a flag, its choices for a choice, else its name in
    capitals (`--stacks-dir` -> STACKS_DIR); an argument's name says it all."""
    if param.metavar is not None:
        return
    if isinstance(param, typer.core.TyperArgument):
        param.metavar = ARGUMENT_NAMES.get(param.name or "", (param.name or "value").upper())
        param.display_type_rich = lambda ctx: None  # the name column says it already
        # typer writes a required argument as {NAME} on the usage line, which reads as a set of choices
        usage = param.metavar if param.required else f"[{param.metavar}]"
        param._usage_display_name = lambda: usage + ("..." if param.nargs != 1 else "")
    elif getattr(param, "is_flag", False):
        param.metavar = ""
    elif (described := getattr(param, "type_descriptor", None)) is not None and described.is_choice:
        param.metavar = "|".join(str(getattr(choice, "value", choice)) for choice in described.choices or ())
    else:
        param.metavar = VALUE_NAMES.get(param.name or "", (param.name or "value").upper())


def _internal_error(error: Exception) -> typer.Exit:
    import traceback

    from fluxfleet.redact import mask_secrets
    from modules.spec import bounded, printable

    if os.environ.get("FLUXFLEET_DEBUG", "") not in ("", "0"):
        typer.echo(printable("".join(traceback.format_exception(error)), lines=True), err=True, nl=False)
    text = str(error).strip()
    detail = bounded(mask_secrets(text.splitlines()[0]), ERROR_DETAIL_MAX) if text else ""
    stderr(
        f"fluxfleet: internal error: {type(error).__name__}: {detail or 'no message'} "
        "(FLUXFLEET_DEBUG=1 shows the traceback; please report it)"
    )
    return typer.Exit(ExitCode.INTERNAL_ERROR)


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="GitOps with Flux for fleets of AKS and Arc clusters.",
)


def register(command: Callable[..., None], examples: Sequence[tuple[str, str]]) -> None:
    """`command` as a command of the app, named as its function. Its help is its docstring with each paragraph on
    one line, so that the terminal wraps it whatever its width (a line break of the source is never a break of the
    help); the command list shows its first sentence; the help ends with `examples` (what it does, the line)."""
    paragraphs = [" ".join(part.split()) for part in inspect.cleandoc(command.__doc__ or "").split("\n\n")]
    summary = paragraphs[0].split(". ")[0].rstrip(".") + "."
    shown = "\n\n".join(f"# {what}\n{line}" for what, line in examples)
    app.command(command.__name__, help="\n\n".join(paragraphs), short_help=summary, epilog=f"Examples:\n\n{shown}")(
        command
    )


def _show_version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"fluxfleet {version('fluxfleet')}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", is_eager=True, callback=_show_version)
    ] = False,
) -> None:
    """fluxfleet: plan, deploy and check Flux on Azure Kubernetes clusters, one Pulumi stack per cluster."""
    # The Azure layer reports every failure itself, in one line; the SDKs' own warnings would repeat them at length.
    logging.getLogger("azure").setLevel(logging.ERROR)
