"""Tests of `fluxfleet plan`."""

from pathlib import Path
from urllib.parse import unquote

from typer.testing import CliRunner, Result

from fluxfleet.cli import app


def run(*args: str) -> Result:
    """`fluxfleet plan ARGS` as a user types it."""
    return CliRunner().invoke(app, ["plan", *args])


def sarif_file(sarif: dict, result: dict) -> Path:
    """The file a SARIF result points at: its URI resolved against its base, %SRCROOT%, the directory plan ran in."""
    [run_] = sarif["runs"]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location["uriBaseId"] in run_["originalUriBaseIds"]
    return (Path.cwd() / unquote(location["uri"])).resolve()
