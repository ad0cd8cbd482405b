"""Options of the command line: `--subscription` is a subscription id wherever it is taken (anything else is one line
and exit 2, before any read of Azure or Pulumi); stacks named by name or by file, and a name that is no stack's
answered with the stacks there are; `--version`."""

from __future__ import annotations

import shlex

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


COMMANDS = ["plan", "config", "preflight", "rollout", "status", "promote", "drift", "inventory"]  # a fleet's day


def help_of(*args: str, columns: int = 200) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_commands_are_listed_in_the_order_of_a_fleets_day():
    listed = [line.split()[1] for line in help_of().splitlines() if line.startswith("│ ") and line.split()[1:2]]
    assert [name for name in listed if name in COMMANDS] == COMMANDS


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_h_is_help_too(command):
    short = CliRunner().invoke(app, [*command, "-h"], env={"COLUMNS": "120"})
    assert short.exit_code == 0 and short.stdout == help_of(*command, columns=120)


@pytest.mark.parametrize("command", COMMANDS)
def test_arguments_are_named_not_braced_as_a_set_of_choices(command):
    [usage] = [line for line in help_of(command).splitlines() if "Usage:" in line]
    assert "{" not in usage and "}" not in usage
    assert usage.split()[-1] in {"CONFIG", "STACK", "[STACK]...", "[OPTIONS]"}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("columns", [80, 120])
def test_no_help_is_cut_or_broken_mid_sentence(command, columns):
    """Each paragraph of a command's help is one line of source text for the terminal to wrap: a line of the
    rendered help ends where the width or a paragraph ends, never where the source's line did."""
    from typer.main import get_command

    group = get_command(app)
    described = group.commands[command]
    for paragraph in (described.help or "").split("\n\n"):
        assert "\n" not in paragraph, paragraph
    text = help_of(command, columns=columns)
    words = " ".join(line.strip(" │") for line in text.splitlines())
    for paragraph in (described.help or "").split("\n\n"):
        assert " ".join(paragraph.split()) in " ".join(words.split()), paragraph[:60]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_ends_with_examples_that_parse(command):
    from typer.main import get_command

    text = help_of(command)
    examples = text[text.index("Examples:") :].splitlines()
    lines = [line.strip() for line in examples if line.strip().startswith(f"fluxfleet {command}")]
    assert 2 <= len(lines) <= 3, examples
    assert all(line.strip().startswith("# ") for line in examples[1:] if line.strip() and line.strip() not in lines)
    group = get_command(app)
    for line in lines:
        args = shlex.split(line)[2:]
        group.commands[command].make_context(command, args)  # every option exists and takes what it is given


@pytest.mark.parametrize("command", ["preflight", "status", "promote", "drift", "inventory"])
def test_the_subscription_default_is_documented_where_the_option_is(command):
    text = " ".join(help_of(command).split())
    assert "--subscription SUBSCRIPTION" in text
    option = text[text.index("--subscription SUBSCRIPTION") :]
    assert "default: " in option[:250] and "AZURE_SUBSCRIPTION_ID" in option[:250]


def test_promote_says_to_is_required_and_what_it_takes_and_rollback_needs_apply():
    text = " ".join(line.strip(" │") for line in help_of("promote").splitlines())
    text = " ".join(text.split())
    to = text[text.index("--to REF") :][:200]
    assert "Required (but with --status)" in to and all(kind in to for kind in ("tag", "commit SHA", "digest"))
    rollback = text[text.index("--rollback") :][:80]
    assert rollback.split(" ", 1)[1].startswith("With --apply")


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
