"""Tests of `fluxfleet plan`."""

from typer.testing import CliRunner, Result

from fluxfleet.cli import app


def run(*args: str) -> Result:
    """`fluxfleet plan ARGS` as a user types it."""
    return CliRunner().invoke(app, ["plan", *args])
