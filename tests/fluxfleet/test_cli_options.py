"""Options of the command line: `--subscription` is a subscription id wherever it is taken (anything else is one line
and exit 2, before any read of Azure or Pulumi); stacks named by name or by file, and a name that is no stack's
answered with the stacks there are; `--version`."""

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


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_that_formats_a_report_can_write_it_to_a_file(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    options = {word for line in result.stdout.splitlines() for word in line.split()[1:3] if word.startswith("--")}
    assert "--format" in options and "--output" in options, command


STACK_COMMANDS = [["plan"], ["config"], ["preflight"], ["drift"], ["status"]]


@pytest.mark.parametrize("command", STACK_COMMANDS)
def test_a_stack_that_does_not_exist_is_answered_with_the_stacks_there_are(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi, no az: nothing may be started
    result = CliRunner().invoke(app, [*command, "stagign"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"fluxfleet {command[0]}: stacks: 'stagign': no such stack (did you mean 'staging'?); "
        "the stacks are dev, edge-store-001, prod-weu, staging\n"
    )


@pytest.mark.parametrize("named", ["dev", "Pulumi.dev.yaml", "stacks/Pulumi.dev.yaml", "./stacks/Pulumi.dev.yaml"])
@pytest.mark.parametrize("command", [["plan"], ["config"]])
def test_a_stack_may_be_named_by_its_file(command, named, monkeypatch):
    monkeypatch.chdir(ROOT)
    by_name = CliRunner().invoke(app, [*command, "dev", "--format", "json"])
    result = CliRunner().invoke(app, [*command, named, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == by_name.stdout


@pytest.mark.parametrize(
    "named, problem",
    [
        ("/tmp/Pulumi.dev.yaml", "that file is not in the stacks directory stacks: pass --stacks-dir"),
        (
            "Pulumi.dev.yml",
            "no such stack file (did you mean 'dev'?); the stacks are dev, edge-store-001, prod-weu, staging",
        ),
    ],
)
def test_a_stack_file_must_be_one_of_the_stacks_directory(named, problem, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["config", named])
    assert result.exit_code == 2
    assert result.stderr == f"fluxfleet config: stacks: {named!r}: {problem}\n"
