"""`fluxfleet rollout` from the command line: --dry-run and --matrix (no Pulumi, no Azure), bad input, and the
summary in every format."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
from fluxfleet.azure.arm import ArmReader
from fluxfleet.cli import app
from fluxfleet.runstate.local import LocalStore
from fluxfleet.rollout.journal import Journal, RunStatus
from fluxfleet.rollout.orchestrator import Rollout, Selection, new_run
from fluxfleet.rollout.report import render_summary
from fluxfleet.simulation import FakeClock, FakeRunner
from tests.conftest import DEV_SHARED, ROOT, STANDALONE_STACKS, add_stack_on_the_dev_cluster
from tests.fluxfleet.drift.test_drift import SUB, Cluster
from tests.fluxfleet.test_automation import diagnostic, update_events
from tests.fluxfleet.rollout.test_orchestrator import fleet, spec, stage


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    # Azure as ARM answers (the checks before each update read it, health gate or not); a test may script its own.
    monkeypatch.setattr(arm, "ArmReader", Cluster().reader)
    # the subscription `pulumi up` would use: the example stacks name none, and a rollout needs one for each
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    return tmp_path


def rollout(*args: str):
    return CliRunner().invoke(app, ["rollout", *args])


def test_dry_run_lists_stages_stacks_and_order(project):
    result = rollout("--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "1. stage dev: 1 stack(s), 1 at a time, up to 0 failure(s): ~10m00s"
    assert (
        "4. stage production: 1 stack(s), 1 at a time, up to 0 failure(s), waits for approval, rolls back: ~10m00s"
        in lines
    )
    assert "stage edge" in result.stdout and rollout("--dry-run", "--rollback").stdout.count(", rolls back") == 4
    assert lines[lines.index("     1. prod-weu") + 1] == "   applies platform at tag v1.0.0 (stack's own)"
    assert lines[-1].startswith("estimated total: ~2h10m (no earlier runs")
    assert not (project / ".fluxfleet").exists()  # a dry run writes no journal


def test_dry_run_estimates_from_earlier_runs(project):
    runs = project / ".fluxfleet" / "runs"
    clock = FakeClock()
    record = new_run(fleet(stage("dev", ["dev"])), Selection(), clock.now())
    runner = FakeRunner(clock, on_up=lambda stack: clock.advance(240))
    Rollout(Journal.create(runs, record), {"dev": spec("aks-dev")}, runner, clock).run()
    report = json.loads(rollout("--dry-run", "--stage", "dev", "--format", "json").stdout)
    assert report["stages"][0]["estimateSeconds"] == 240
    assert report["estimateSamples"] == 1


def test_matrix_for_a_stage(project):
    result = rollout("--matrix", "edge")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "stage": "edge",
        "matrix": {"stack": ["edge-store-001"]},
        "maxParallel": 10,
        "maxFailures": 2,
        "minSucceeded": 0,
        "afterStageWait": 3600,  # 1h, in seconds
        "approval": False,
        "rollback": True,  # deploy-stage.yml runs the stage as one `fluxfleet rollout`, not a matrix
    }
    assert json.loads(rollout("--matrix", "production").stdout)["approval"] is True
    assert json.loads(rollout("--matrix", "staging").stdout)["rollback"] is False


def test_matrix_of_a_run_says_how_far_the_run_got(project):
    result = rollout("--matrix", "edge", "--run-id", "github-42")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["matrix"] == {"stack": ["edge-store-001"]}  # a run not started: every stack
    assert plan["run"] == {
        "id": "github-42",
        "succeeded": 0,
        "failed": 0,
        "pending": 1,
        "finished": False,
        "bakeUntil": None,
    }
    refused = rollout("--matrix", "edge", "--run-id", "../runs")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.startswith("fluxfleet rollout: --run-id: '../runs' is not a run id")


def test_matrix_bakes_only_between_stages_that_have_stacks(project):
    # The bake is before the next stage, as in a run: none after the last stage, nor before stages left empty.
    (project / "stacks" / "fleet.yaml").write_text(
        "stages:\n"
        "  - {name: first, stacks: [dev], afterStageWait: 10m}\n"
        "  - {name: last, stacks: [staging], afterStageWait: 1h}\n"
        "  - {name: rest, stacks: [prod-weu, edge-store-001], afterStageWait: 5m}\n"
    )
    waits = {stage: json.loads(rollout("--matrix", stage).stdout)["afterStageWait"] for stage in ["first", "last"]}
    assert waits == {"first": 600, "last": 3600}
    assert json.loads(rollout("--matrix", "rest").stdout)["afterStageWait"] == 0
    only_dev_and_staging = rollout("--matrix", "last", "--stacks", "[ds]*")
    assert json.loads(only_dev_and_staging.stdout)["afterStageWait"] == 0  # the glob leaves `rest` empty


def test_unknown_stage_and_run_are_input_errors(project, fake):
    result = rollout("--matrix", "prod")
    assert result.exit_code == 2
    assert "no stage 'prod' in stacks/fleet.yaml (stages: dev, staging, edge, production)" in result.stderr
    result = rollout("--resume", "20260101T000000Z-dead")
    assert result.exit_code == 2 and "no such run" in result.stderr


def test_invalid_fleet_file_is_exit_2_with_file_and_key(project):
    (project / "stacks" / "fleet.yaml").write_text(
        "stages:\n  - {name: all, stacks: ['*']}\n  - {name: again, stacks: [dev]}\n"
    )
    result = rollout("--dry-run")
    assert result.exit_code == 2
    assert result.stderr.strip() == "stacks/fleet.yaml: stages[1].stacks[0]: stack 'dev' is already in stage 'all'"


def test_invalid_stack_file_stops_a_run_before_anything_starts(project, fake):
    path = project / "stacks" / "Pulumi.dev.yaml"
    path.write_text(
        (STANDALONE_STACKS / path.name).read_text().replace("dependsOn: [infra-controllers]", "dependsOn: [infra]")
    )
    result = rollout("--stage", "dev")
    assert result.exit_code == 2
    assert (
        "stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.platform.kustomizations.infra-configs.dependsOn[0]"
        in (result.stderr)
    )
    assert not (project / ".fluxfleet").exists()


def test_a_new_store_joins_the_stage_of_its_profile(project):
    (project / "stacks" / "Pulumi.edge-store-042.yaml").write_text(
        "config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {name: store-042, resourceGroup: rg}\n"
    )
    result = rollout("--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    stages = {stage["name"]: stage["stacks"] for stage in json.loads(result.stdout)["stages"]}
    assert stages["edge"] == ["edge-store-001", "edge-store-042"]


def test_a_stack_in_no_stage_is_a_warning(project):
    dev = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    (project / "stacks" / "Pulumi.sandbox.yaml").write_text(dev.replace("name: aks-dev-weu", "name: aks-sandbox"))
    result = rollout("--dry-run")
    assert result.exit_code == 0
    assert "warning: stack sandbox is in no stage of stacks/fleet.yaml: never rolled out" in result.stderr


# --------------------------------------------------------------------------------------------- the summary


@pytest.fixture
def halted(tmp_path):
    clock = FakeClock()
    the_fleet = fleet(stage("canary", ["a", "b"], failures=0), stage("production", ["p"], approval=True))
    record = new_run(the_fleet, Selection(), clock.now())
    runner = FakeRunner(clock, failing={"a": 'error: Code="Conflict" | another operation is in progress'})
    specs = {name: spec(f"aks-{name}") for name in ("a", "b", "p")}
    assert Rollout(Journal.create(tmp_path, record), specs, runner, clock).run() is RunStatus.halted
    return record


def test_text_summary(halted):
    text = render_summary(halted, "text")
    assert f"rollout {halted.run_id}: halted" in text
    assert "✗ failed" in text and "- skipped" in text
    assert "stage canary: 1 stack(s) failed, more than its maxFailures 0" in text


def test_markdown_summary_has_a_mermaid_diagram_of_the_stages(halted):
    markdown = render_summary(halted, "markdown")
    assert markdown.startswith(f"# fluxfleet rollout `{halted.run_id}`: halted\n")
    assert '  s0["canary<br/>✔ 0 ✗ 1 of 2"]' in markdown
    assert '  s1["production<br/>✔ 0 ✗ 0 of 1<br/>approval"]' in markdown and "  s0 --> s1" in markdown
    assert (
        '| canary | a | ❌ failed | update 1 | error: Code="Conflict" \\| another operation is in progress |'
        in markdown
    )


def test_json_summary_shape(halted):
    report = json.loads(render_summary(halted, "json"))
    assert report["status"] == "halted"
    assert [s["name"] for s in report["stages"]] == ["canary", "production"]
    first = report["stages"][0]["stacks"][0]
    assert set(first) == {
        "stack",
        "state",
        "message",
        "startedAt",
        "endedAt",
        "changes",
        "previousRefs",
        "refs",
        "rollback",
        "runs",
        "windowOpens",
        "soak",
    }
    assert [s["state"] for s in report["stages"][0]["stacks"]] == ["failed", "skipped"]


# --------------------------------------------------------------------------------------------- end to end


def no_gate(project: Path) -> None:
    fleet_file = project / "stacks" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text().replace("fluxCompliance: true", "fluxCompliance: false"))


def test_a_real_run_through_the_automation_api_and_the_scripted_cli(project, fake):
    no_gate(project)
    fake.scenario_path.write_text(
        json.dumps(
            {
                "stacks": {
                    "dev": {"preview": {"events": update_events("dev")}, "up": {"events": update_events("dev")}},
                    "staging": {
                        "preview": {"events": update_events("staging")},
                        "up": {
                            "events": [diagnostic('Code="Conflict": another operation is in progress')],
                            "exit": 255,
                        },
                    },
                }
            }
        )
    )
    result = rollout("--stacks", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "done"
    [dev] = report["stages"][0]["stacks"]
    assert dev["state"] == "succeeded" and dev["changes"] == {"same": 3, "update": 1, "create": 1}
    assert [call["argv"][:4] for call in fake.calls() if "up" in call["argv"]] == [
        ["--non-interactive", "up", "--yes", "--skip-preview"]
    ]

    result = rollout("--stage", "staging", "--format", "json")
    assert result.exit_code == 1
    [staging] = json.loads(result.stdout)["stages"][0]["stacks"]
    assert staging["state"] == "failed"
    assert staging["message"] == 'Code="Conflict": another operation is in progress'


def test_no_pulumi_cli_is_one_line_and_starts_no_run(project, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = rollout("--stage", "dev")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "fluxfleet rollout: no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/install/)"
    )
    assert not (project / ".fluxfleet").exists()


def test_no_azure_token_for_the_gate_is_one_line_and_starts_no_run(project, fake, monkeypatch):
    from tests.fluxfleet.drift.test_drift_cli import NoToken

    fake.scenario_path.write_text(json.dumps({"stacks": {}}))
    monkeypatch.setattr(arm, "ArmReader", lambda: ArmReader(NoToken()))
    result = rollout("--stage", "dev")
    assert result.exit_code == 1
    assert result.stderr.startswith("fluxfleet rollout: no Azure token (DefaultAzureCredential failed")
    assert not (project / ".fluxfleet").exists()


@pytest.mark.parametrize("live", [True, False], ids=["terminal", "log"])
def test_progress_shows_each_stage_and_each_stack_as_it_ends(tmp_path, live):
    import io

    from rich.console import Console

    from fluxfleet.rollout.report import LiveProgress, LogProgress

    stream = io.StringIO()
    observer = LiveProgress(Console(file=stream, force_terminal=True, width=100)) if live else LogProgress(stream)
    clock = FakeClock()
    record = new_run(
        fleet(stage("canary", ["a"], wait=60), stage("wave", ["b", "c"], concurrency=2)), Selection(), clock.now()
    )
    runner = FakeRunner(clock, failing={"c": "boom"})
    specs = {name: spec(f"aks-{name}") for name in "abc"}
    with observer if live else contextlib.nullcontext():
        Rollout(Journal.create(tmp_path, record), specs, runner, clock, observer=observer).run()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # the terminal's colours and cursor moves
    lines = [line.strip() for line in re.split(r"[\r\n]", text)]
    assert any(line.startswith("✔ a: ") and line.endswith("updated") for line in lines), lines
    assert any("✔ b: " in line and line.endswith("updated") for line in lines)
    assert any("✗ c: " in line and line.endswith("boom") for line in lines)
    assert "stage canary done: soaking 1m00s before the next stage" in text
    assert "canary" in text and "wave" in text


# --------------------------------------------------------------------------------------------- resume robustness


def a_run(project: Path, *stacks: str) -> Journal:
    """A run of the project's fleet journaled in .fluxfleet/runs, with one change in its log, released."""
    clock = FakeClock()
    record = new_run(fleet(stage("dev", list(stacks or ["dev"]))), Selection(), clock.now())
    journal = Journal.create(project / ".fluxfleet" / "runs", record)
    journal.update(clock.now(), record.stages[0].stacks[0], message="logged")
    return journal


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_resume_takes_a_run_id_never_a_path(project):
    outside = project / "x.json"
    outside.write_text('{"run_id": "x"}')
    (project / "x.log").write_text("{}\n")
    before = files(project)
    for path in ("../../x", "../x", str(outside.with_suffix(""))):
        for extra in ((), ("--dry-run",)):
            result = rollout("--resume", path, *extra)
            assert result.exit_code == 2, result.output
            assert "is not a run id: a run id is a name of letters, digits" in result.stderr
    assert files(project) == before


def test_a_dry_run_of_a_resume_writes_nothing(project):
    journal = a_run(project)
    before = files(project)
    result = rollout("--resume", journal.record.run_id, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1. stage dev: 1 stack(s)" in result.stdout
    assert files(project) == before  # its log not folded, nothing created


def test_resume_after_a_stack_file_was_removed_is_one_line(project, fake):
    shutil.copy(project / "stacks" / "Pulumi.prod-weu.yaml", project / "stacks" / "Pulumi.prod-neu.yaml")
    journal = a_run(project, "dev", "prod-neu")
    (project / "stacks" / "Pulumi.prod-neu.yaml").unlink()  # fleet.yaml's prod-* still matches prod-weu
    result = rollout("--resume", journal.record.run_id)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"stacks/Pulumi.prod-neu.yaml: -: run {journal.record.run_id} covers stack 'prod-neu', whose stack file no "
        "longer exists: restore it, or start a new run"
    )


def test_joining_a_run_that_planned_its_stage_otherwise_is_refused_before_anything_starts(project, fake):
    from fluxfleet.rollout.journal import RunRecord, StackEntry, StagePlan

    dev = json.loads(rollout("--matrix", "dev").stdout)
    runs = project / ".fluxfleet" / "runs"
    other = dev["maxFailures"] + 7
    plan = StagePlan("dev", ["dev"], dev["maxParallel"], other, 0, dev["approval"], rollback=dev["rollback"])
    Journal.create(
        runs,
        RunRecord(
            "github-9",
            "stacks/fleet.yaml",
            "2026-01-01T00:00:00+00:00",
            RunStatus.partial,
            [plan],
            {"dev": StackEntry(stage="dev")},
        ),
    )
    before = files(runs)
    result = rollout("--run-id", "github-9", "--stage", "dev")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"fluxfleet rollout: --run-id github-9: the run planned stage dev with maxFailures {other}, this process with "
        f"{dev['maxFailures']}: join it as it was planned, or start another run"
    )
    assert files(runs) == before and fake.argv("up") == []


def test_a_runs_dir_that_cannot_hold_runs_is_input_error_before_anything_starts(project, fake):
    no_gate(project)
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": {"up": {"events": update_events("dev")}}}}))
    (project / "file").write_text("")
    result = rollout("--stage", "dev", "--runs-dir", str(project / "file" / "runs"))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"fluxfleet rollout: --runs-dir {project / 'file' / 'runs'}: cannot keep runs there: Not a directory"
    )
    assert fake.argv("up") == []


def test_a_journal_that_cannot_be_written_stops_the_run_with_how_to_resume(project, fake, monkeypatch):
    no_gate(project)
    scenario = {
        "stacks": {"dev": {"preview": {"events": update_events("dev")}, "up": {"events": update_events("dev")}}}
    }
    fake.scenario_path.write_text(json.dumps(scenario))

    def disk_full(self, name, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalStore, "append", disk_full)
    result = rollout("--stage", "dev")
    assert result.exit_code == 1
    [run] = (project / ".fluxfleet" / "runs").glob("*.json")
    assert result.stderr.strip().endswith(
        f"fluxfleet rollout: cannot write the journal .fluxfleet/runs/{run.name}: No space left on device: the run "
        f"stopped; resume it with `fluxfleet rollout --resume {run.stem}` once that is fixed"
    )
    assert fake.argv("up") == []  # nothing applied that the journal could not record


def test_a_providers_error_reaches_journal_and_summary_with_credentials_masked_and_escaped(project, fake):
    from tests.conftest import CANARY

    no_gate(project)
    leak = (
        f'Code="BadRequest" Message="clone of https://git:{CANARY}@github.com/org/fleet failed; '
        "AccountKey=c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU2Nzg5MA==;"
        ' password=hunter2 \x1b]0;owned\x07"'
    )
    scenario = {"preview": {"events": update_events("dev")}, "up": {"events": [diagnostic(leak)], "exit": 255}}
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": scenario}}))
    result = rollout("--stage", "dev", "--format", "json")
    assert result.exit_code == 1
    [dev] = json.loads(result.stdout)["stages"][0]["stacks"]
    assert dev["message"].startswith('Code="BadRequest" Message="clone of https://[secret]@github.com/org/fleet')
    journal = "".join(path.read_text() for path in (project / ".fluxfleet" / "runs").glob("*.*"))
    for output in (result.stdout, result.stderr, journal):
        for secret in (CANARY, "hunter2", "c2VjcmV0a2V5", "\x1b", "\x07"):
            assert secret not in output


@pytest.mark.parametrize("extra", [(), ("--dry-run",)], ids=["run", "dry-run"])
def test_an_output_that_cannot_be_written_is_refused_before_anything_is_applied(project, fake, extra):
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": {"up": {"events": update_events("dev")}}}}))
    result = rollout("--stage", "dev", "--output", str(project / "missing" / "x.md"), *extra)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"fluxfleet rollout: --output {project / 'missing' / 'x.md'}: ")
    assert fake.calls() == [] and not (project / ".fluxfleet").exists()


def test_pins_in_a_fleet_file_elsewhere_are_refused(project):
    other = project / "other-fleet.yaml"
    text = (project / "stacks" / "fleet.yaml").read_text()
    other.write_text(text.replace("  - name: staging\n", "  - name: staging\n    pins: {platform: {tag: v1.4.0}}\n"))
    result = rollout("--fleet", str(other), "--dry-run")
    assert result.exit_code == 2
    assert "pins belong in stacks/fleet.yaml: `pulumi up` reads a stage's pins from there" in result.stderr


def test_promote_apply_writes_the_pin_then_rolls_the_stage_out(project, fake):
    no_gate(project)
    fake.scenario_path.write_text(
        json.dumps(
            {"stacks": {"dev": {"preview": {"events": update_events("dev")}, "up": {"events": update_events("dev")}}}}
        )
    )
    result = CliRunner().invoke(app, ["promote", "platform", "--to", "v1.4.0", "--force", "--apply"])
    assert result.exit_code == 0, result.output
    assert "wrote stacks/fleet.yaml; running: fluxfleet rollout --stage dev" in result.stdout
    assert "platform: {tag: v1.4.0}" in (project / "stacks" / "fleet.yaml").read_text()
    assert [call["argv"][1] for call in fake.calls() if "up" in call["argv"]] == ["up"]


def test_promote_apply_with_rollback_reads_what_each_stack_runs_before_updating_it(project, fake):
    no_gate(project)
    refs = {"platform": {"tag": "v1.3.0"}}
    dev = {"preview": {"events": update_events("dev")}, "up": {"events": update_events("dev")}}
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": {**dev, "outputs": {"fluxConfigurationRefs": refs}}}}))
    result = CliRunner().invoke(app, ["promote", "platform", "--to", "v1.4.0", "--force", "--apply", "--rollback"])
    assert result.exit_code == 0, result.output
    assert "running: fluxfleet rollout --stage dev --rollback" in result.stdout
    [run] = (project / ".fluxfleet" / "runs").glob("*.json")
    record = json.loads(run.read_text())
    assert record["stages"][0]["rollback"] is True and record["stages"][0]["pins"] == {"platform": {"tag": "v1.4.0"}}
    entry = record["stacks"]["dev"]
    assert entry["previous_refs"] == refs and entry["refs"]["platform"] == {"tag": "v1.4.0"}
    commands = [" ".join(call["argv"]) for call in fake.calls()]
    reads = [n for n, command in enumerate(commands) if "stack output --json --stack dev" in command]
    [up] = [n for n, command in enumerate(commands) if " up " in command]
    assert reads and reads[0] < up  # what it ran was read before anything changed it


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--resume", "20260101T000000Z-ab12", "--rollback"],
            "--resume continues a run as it was planned: --rollback cannot change it",
        ),
        (["--stacks", "nomatch*", "--dry-run"], "--stacks 'nomatch*' matches no stack of stacks/fleet.yaml"),
        (["--stage", "dev", "--stacks", "prod-*"], "--stacks 'prod-*' matches no stack of stage dev"),
        (["--matrix", "edge", "--stage", "dev"], "--matrix names its stage: drop --stage"),
        (
            ["--matrix", "dev", "--rollback"],
            "--matrix plans a stage as fleet.yaml says: set `rollback: true` on the stage, not --rollback",
        ),
        (
            ["--resume", "20260101T000000Z-ab12", "--stage", "dev", "--max-concurrency", "2"],
            "--resume continues a run as it was planned: --stage, --max-concurrency cannot change it",
        ),
    ],
)
def test_options_that_would_not_apply_are_refused_not_ignored(project, fake, args, said):
    result = rollout(*args)
    assert result.exit_code == 2 and result.stderr.strip() == f"fluxfleet rollout: {said}"
    assert not (project / ".fluxfleet").exists()


def test_the_upgrade_path_is_checked_with_the_flux_health_gate_off(project, fake, monkeypatch):
    no_gate(project)
    dev = project / "stacks" / "Pulumi.dev.yaml"
    dev.write_text(
        dev.read_text().replace(
            "  fluxfleet:flux:\n",
            "  fluxfleet:flux:\n    extension: {version: 1.23.0, autoUpgradeMinorVersion: false}\n",
        )
    )
    azure = Cluster()
    azure.extensions["value"][0]["properties"]["currentVersion"] = "1.20.4"
    monkeypatch.setattr(arm, "ArmReader", azure.reader)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "11111111-2222-3333-4444-555555555555")
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": {"up": {"events": update_events("dev")}}}}))
    result = rollout("--stage", "dev", "--format", "json")
    assert result.exit_code == 1, result.output
    [dev_entry] = json.loads(result.stdout)["stages"][0]["stacks"]
    assert dev_entry["message"].startswith("not started: installed 1.20.4; pinned 1.23.0 skips 1.21.x")
    assert fake.argv("up") == [] and fake.argv("preview") == []


@pytest.mark.parametrize("args", [["--dry-run"], ["--matrix", "dev"], ["--stage", "dev"]], ids=str)
def test_a_stack_whose_cluster_another_stack_names_is_refused_in_every_mode(project, fake, args):
    add_stack_on_the_dev_cluster(project / "stacks")  # in no stage, and invalid besides: the pair is still found
    result = rollout(*args)
    assert result.exit_code == 2, result.output
    assert f"stacks/Pulumi.dev.yaml: fluxfleet:cluster.name: {DEV_SHARED}" in result.stderr.splitlines()
    assert result.stdout == "" and fake.calls() == [] and not (project / ".fluxfleet").exists()


@pytest.mark.parametrize("args", [["--dry-run"], ["--matrix", "dev"]], ids=str)
def test_a_dry_run_or_matrix_of_invalid_stacks_is_exit_2_with_file_and_key(project, args):
    path = project / "stacks" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("apps: {retryInterval: 2m}", "apps: {retryInterval: soon}"))
    result = rollout(*args)
    assert result.exit_code == 2, result.output
    assert "stacks/Pulumi.dev.yaml: fluxfleet:flux.configurations.platform.kustomizations.apps.retryInterval" in (
        result.stderr
    )
    assert result.stdout == ""
