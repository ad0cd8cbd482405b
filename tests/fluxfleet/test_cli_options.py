"""Options of the command line: `--subscription` is a subscription id wherever it is taken (anything else is one line
and exit 2, before any read of Azure or Pulumi); stacks named by name or by file, and a name that is no stack's
answered with the stacks there are; `--version`; without Azure or Pulumi, one first answer on every command."""

from __future__ import annotations

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
