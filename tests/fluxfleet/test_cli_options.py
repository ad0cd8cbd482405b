"""Options of the command line: `--subscription` is a subscription id wherever it is taken (anything else is one line
and exit 2, before any read of Azure or Pulumi); stacks named by name or by file, and a name that is no stack's
answered with the stacks there are; `--version`; without Azure or Pulumi, one first answer on every command."""

from __future__ import annotations

import shlex


import json
import shutil

import pytest
from azure.core.exceptions import ClientAuthenticationError
from typer.testing import CliRunner

from fluxfleet.azure.access import SIGN_IN, no_subscription, subscription_ways
from fluxfleet.cli import app
from tests.azure_transport import FakeCredential
from tests.conftest import ROOT

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


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


COMMANDS = [
    "plan",
    "affected",
    "config",
    "preflight",
    "workflows",
    "rollout",
    "status",
    "promote",
    "drift",
    "inventory",
]  # a day


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


@pytest.mark.parametrize("command", [name for name in COMMANDS if name != "workflows"])  # it writes a workflow
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


# ------------------------------------------------------------------------------------ without Azure, without Pulumi
# A new user's machine: no `pulumi` and no `az` on PATH, no subscription in the environment, an Azure CLI directory
# that holds nothing. Every command that needs Azure answers first, before any read, with the same line for the same
# condition (what is missing, and every way to give it) and exit 1; rollout and drift say there is no pulumi before
# they load anything.

EVERY_STACK = ["dev", "edge-store-001", "prod-weu", "staging"]  # the example stacks: none names a subscription
NO_PULUMI_LINE = "no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/install/)"


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A copy of the example project on a machine without pulumi, az or a subscription; dev pins platform v1.4.0."""
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    fleet = tmp_path / "stacks" / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace("stacks: [dev]\n", "stacks: [dev]\n    pins: {platform: {tag: v1.4.0}}\n")
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-bin").mkdir()
    (tmp_path / "azure-cli").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-cli"))
    for variable in ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


@pytest.fixture
def pulumi_only(bare, fake, monkeypatch):
    """The bare machine with the scripted `pulumi` as its only command on PATH (still no az)."""
    fake.scenario_path.write_text(json.dumps({"stacks": {}}))
    monkeypatch.setenv("PATH", str(fake.scenario_path.parent / "bin"))
    return bare


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# command line -> the stacks it reads, and whether the command takes --subscription (one more way to give one)
WITHOUT_A_SUBSCRIPTION = {
    "status": (["status"], EVERY_STACK, True),
    "inventory": (["inventory", "--select", "kind:aks"], EVERY_STACK, True),
    "promote --status": (["promote", "platform", "--status"], ["dev", "prod-weu", "staging"], True),
    "promote (health of the stage before)": (["promote", "platform", "--to", "v1.4.0"], ["dev"], True),
}


@pytest.mark.parametrize("case", WITHOUT_A_SUBSCRIPTION)
def test_without_a_subscription_a_command_names_the_stacks_and_every_way_to_give_one(bare, case):
    args, stacks, option = WITHOUT_A_SUBSCRIPTION[case]
    before = (bare / "stacks" / "fleet.yaml").read_bytes()
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"fluxfleet {args[0]}: {no_subscription(stacks, option=option)}"]
    assert result.stdout == "" and (bare / "stacks" / "fleet.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "stacks", "option"),
    [(["rollout", "--stage", "dev"], ["dev"], False), (["drift"], EVERY_STACK, True)],
    ids=["rollout", "drift"],
)
def test_with_pulumi_but_no_subscription_rollout_and_drift_give_the_same_answer(
    pulumi_only, fake, args, stacks, option
):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"fluxfleet {args[0]}: {no_subscription(stacks, option=option)}"]
    assert fake.argv("preview") == fake.argv("up") == [] and not (pulumi_only / ".fluxfleet").exists()


def test_preflight_reports_each_stack_without_a_subscription_as_its_failed_check(bare):
    result = invoke("preflight", "--format", "json")
    assert result.exit_code == 1, result.output
    checks = {stack["stack"]: stack["checks"] for stack in json.loads(result.stdout)["stacks"]}
    assert sorted(checks) == EVERY_STACK
    for stack in EVERY_STACK:
        [*_, last] = checks[stack]
        assert (last["id"], last["outcome"], last["remedy"]) == ("subscription", "fail", subscription_ways(True))


@pytest.mark.parametrize(
    "args",
    [
        ["rollout", "--stage", "dev"],
        ["rollout", "--resume", "20260101T000000Z-ab12"],
        ["drift"],
        ["drift", "--remediate"],
    ],
    ids=" ".join,
)
def test_without_pulumi_rollout_and_drift_say_so_before_loading_anything(bare, args):
    (bare / "stacks" / "fleet.yaml").write_text("stages: [\n")  # not YAML: reading it would be exit 2
    (bare / "stacks" / "Pulumi.dev.yaml").write_text("config: {fluxfleet:cluster: {kind: nope}}\n")  # invalid
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"fluxfleet {args[0]}: {NO_PULUMI_LINE}\n"


@pytest.mark.parametrize("args", [["--dry-run"], ["--matrix", "dev"]], ids=["dry-run", "matrix"])
def test_a_rollout_that_only_plans_needs_neither_pulumi_nor_azure(bare, args):
    result = invoke("rollout", *args)
    assert result.exit_code == 0, result.output


def test_promote_apply_force_writes_no_pin_when_there_is_no_pulumi(bare):
    fleet = bare / "stacks" / "fleet.yaml"
    before = fleet.read_bytes()
    result = invoke("promote", "platform", "--to", "v1.5.0", "--force", "--apply")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"fluxfleet rollout: {NO_PULUMI_LINE}",  # the line the rollout itself gives
        "fluxfleet promote: refused: fluxfleet rollout --stage dev cannot start: stacks/fleet.yaml not written",
    ]
    assert result.stdout == "" and fleet.read_bytes() == before


@pytest.mark.parametrize("force", [["--force"], []], ids=["force", "ordered"])
def test_promote_apply_refuses_with_the_rollouts_own_line_when_it_could_not_start(pulumi_only, fake, force):
    fleet = pulumi_only / "stacks" / "fleet.yaml"
    before = fleet.read_bytes()
    rollout = invoke("rollout", "--stage", "dev")
    result = invoke("promote", "platform", "--to", "v1.5.0", "--stage", "dev", *force, "--apply")
    assert result.exit_code == rollout.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == rollout.stderr.strip()  # no subscription for dev: the same line
    assert fleet.read_bytes() == before and fake.argv("up") == []


class NoToken(FakeCredential):
    """DefaultAzureCredential where nobody signed in: no credential of its chain gets a token."""

    def get_token(self, *scopes, **kwargs):
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )

    get_token_info = get_token


SIGNED_OUT = [
    ["status"],
    ["preflight"],
    ["inventory", "--select", "kind:aks"],
    ["promote", "platform", "--status"],
    ["promote", "platform", "--to", "v1.4.0"],
    ["drift"],
    ["drift", "--notify", "keyvault:kv-fleet-ops/teams-webhook"],  # the webhook is read once Azure can be
    ["rollout", "--stage", "dev"],
]


@pytest.mark.parametrize("args", SIGNED_OUT, ids=" ".join)
def test_without_a_sign_in_every_command_says_how_to_sign_in_before_any_read(pulumi_only, fake, monkeypatch, args):
    import azure.identity

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **options: NoToken())
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"fluxfleet {args[0]}: no Azure token (DefaultAzureCredential failed to retrieve a token from the included "
        f"credentials.); {SIGN_IN}"
    ]
    assert result.stdout == "" and fake.argv("preview") == fake.argv("up") == []
