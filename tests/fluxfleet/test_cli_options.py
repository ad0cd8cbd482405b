"""Options of the command line: `--subscription` is a subscription id wherever it is taken (anything else is one line
and exit 2, before any read of Azure or Pulumi); `--version`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "command",
    [
        ["preflight"],
        ["drift"],
        ["status"],
        ["promote", "platform", "--to", "v1"],
        ["inventory", "--select", "kind:arc"],
    ],
)
@pytest.mark.parametrize("value", ["nope", "00000000-0000-0000-0000-00000000000g", "../../etc"])
def test_a_subscription_that_is_not_a_guid_is_invalid_input(command, value, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi, no az: nothing may be started
    result = CliRunner().invoke(app, [*command, "--subscription", value])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert "--subscription" in line and "not a subscription id" in line and "Traceback" not in result.output


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"fluxfleet {version('fluxfleet')}\n"


COMMANDS = ["plan", "config", "promote", "preflight", "rollout", "drift", "status", "inventory"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_names_values_without_python_types(command):
    result = CliRunner().invoke(app, [*([command] if command else []), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for noise in ("<bool>", "<str>", "<path>", "<list[", "<int", "<text|", "..]...", "...]..."):
        assert noise not in result.stdout, f"{command}: {noise}"
    if command == "rollout":
        lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ --")}
        assert lines["--dry-run"].split()[2] != "DRY_RUN"  # a flag takes no value: its help follows
        assert lines["--resume"].split()[2] == "RUN_ID" and lines["--stacks-dir"].split()[2] == "STACKS_DIR"
        assert lines["--format"].split()[2] == "text|json|markdown"
