"""`fluxfleet rollout`'s work without the command line (fluxfleet/rollout/command.py): the options checked against
fleet.yaml and against each other, the plan an accepted request covers, and whole runs through `run_rollout`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import fluxfleet.azure.arm as arm
from fluxfleet.exits import ExitCode, InvalidInput
from fluxfleet.rollout.command import RolloutRequest, plan_rollout, run_rollout
from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from tests.conftest import ROOT
from tests.fluxfleet.drift.test_drift import SUB, Cluster
from tests.fluxfleet.test_automation import update_events

RUN_ID = "20260101T000000Z-ab12"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(arm, "ArmReader", Cluster().reader)  # Azure as ARM answers, for the checks before updates
    # the subscription `pulumi up` would use: the example stacks name none, and a rollout needs one for each
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    return tmp_path


def refused(request: RolloutRequest) -> tuple[str, ...]:
    with pytest.raises(InvalidInput) as raised:
        plan_rollout(request, warn=pytest.fail)
    assert raised.value.exit_code is ExitCode.INVALID_INPUT
    return raised.value.lines


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (RolloutRequest(stage="prod"), "no stage 'prod' in stacks/fleet.yaml (stages: dev, staging, edge, production)"),
        (
            RolloutRequest(approve=("dev", "qa")),
            "no stage 'qa' in stacks/fleet.yaml (stages: dev, staging, edge, production)",
        ),
        (RolloutRequest(matrix="edge", stage="dev"), "--matrix names its stage: drop --stage"),
        (
            RolloutRequest(run_id="github-42", resume=RUN_ID),
            "--resume continues a run, --run-id starts or joins one: give one of them",
        ),
        (
            RolloutRequest(matrix="dev", rollback=True),
            "--matrix plans a stage as fleet.yaml says: set `rollback: true` on the stage, not --rollback",
        ),
        (
            RolloutRequest(resume=RUN_ID, stacks=("dev",), max_concurrency=2, rollback=True),
            "--resume continues a run as it was planned: --stacks, --max-concurrency, --rollback cannot change it",
        ),
        (RolloutRequest(stacks=("nomatch*",)), "--stacks 'nomatch*' matches no stack of stacks/fleet.yaml"),
        (RolloutRequest(stage="dev", stacks=("prod-*",)), "--stacks 'prod-*' matches no stack of stage dev"),
        (RolloutRequest(stacks_dir=Path("nowhere")), "nowhere: no such directory"),
        (RolloutRequest(soak="dev"), "--soak watches a stage of a run: give the run's --run-id"),
        (
            RolloutRequest(soak="dev", run_id="github-42", stage="dev", dry_run=True),
            "--soak runs only the soak of the stage it names: drop --stage, --dry-run",
        ),
        (
            RolloutRequest(soak="qa", run_id="github-42"),
            "no stage 'qa' in stacks/fleet.yaml (stages: dev, staging, edge, production)",
        ),
    ],
)
def test_each_option_that_would_not_apply_is_refused_with_its_message(project, request_, said):
    assert refused(request_) == (f"fluxfleet rollout: {said}",)
    assert not (project / ".fluxfleet").exists()


def test_an_output_that_cannot_be_written_is_refused_before_fleet_yaml_is_read(project):
    (project / "stacks" / "fleet.yaml").write_text("stages: oops\n")  # would be invalid input too, later
    [line] = refused(RolloutRequest(output=project / "missing" / "summary.md"))
    assert line.startswith(f"fluxfleet rollout: --output {project / 'missing' / 'summary.md'}: ")


def test_an_invalid_fleet_file_is_refused_with_file_and_key(project):
    (project / "stacks" / "fleet.yaml").write_text(
        "stages:\n  - {name: all, stacks: ['*']}\n  - {name: again, stacks: [dev]}\n"
    )
    assert refused(RolloutRequest()) == (
        "stacks/fleet.yaml: stages[1].stacks[0]: stack 'dev' is already in stage 'all'",
    )


def test_an_accepted_request_plans_its_stage_its_stacks_its_limit_and_rollback(project):
    plan = plan_rollout(RolloutRequest(stage="edge", stacks=("edge-*",), max_concurrency=3, rollback=True), pytest.fail)
    [edge] = plan.selection.plan(plan.fleet)
    assert (edge.name, edge.stacks, edge.max_concurrency, edge.rollback) == ("edge", ["edge-store-001"], 3, True)
    assert set(plan.paths) == {"dev", "staging", "prod-weu", "edge-store-001"}
    every = plan_rollout(RolloutRequest(), pytest.fail)
    assert [stage.name for stage in every.selection.plan(every.fleet)] == ["dev", "staging", "edge", "production"]


def test_a_resume_alone_is_accepted_as_planned(project):
    plan = plan_rollout(RolloutRequest(resume=RUN_ID, approve=("production",)), pytest.fail)
    assert plan.selection.stage is None and plan.selection.stacks is None


def test_a_stack_in_no_stage_is_a_warning_not_a_refusal(project):
    dev = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    (project / "stacks" / "Pulumi.sandbox.yaml").write_text(dev.replace("name: aks-dev-weu", "name: aks-sandbox"))
    warnings: list[str] = []
    plan_rollout(RolloutRequest(), warnings.append)
    assert warnings == [
        "fluxfleet rollout: warning: stack sandbox is in no stage of stacks/fleet.yaml: never rolled out"
    ]


def test_a_kubernetes_pin_on_a_stage_with_arc_stacks_names_them_and_skips_them(project):
    from fluxfleet.plan import unstaged_warnings
    from modules.spec import load_stack_file

    fleet = project / "stacks" / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace("    stacks: [staging]\n", '    stacks: [staging]\n    pins: {kubernetes: "1.36"}\n')
    )
    fleet.write_text(fleet.read_text().replace("stacks: [staging]", "stacks: [staging, edge-store-001]"))
    warnings: list[str] = []
    plan = plan_rollout(RolloutRequest(stage="staging"), warnings.append)
    note = (
        "stage staging pins kubernetes 1.36: Arc cluster(s) edge-store-001 skipped (an Arc cluster's Kubernetes "
        "version is its own to upgrade, not Azure's)"
    )
    assert warnings == [f"fluxfleet rollout: note: {note}"]
    assert plan.selection.stage == "staging"  # planned, not refused: the stage goes on with both stacks
    assert load_stack_file(project / "stacks" / "Pulumi.edge-store-001.yaml").spec.cluster.kubernetes_version is None
    paths = sorted((project / "stacks").glob("Pulumi.*.yaml"))
    assert unstaged_warnings(paths, project) == [note]  # what `plan` warns


@pytest.mark.parametrize(
    ("given", "planned"),
    [
        (("prod-weu",), {"production": ["prod-weu"]}),
        (("Pulumi.dev.yaml", "stacks/Pulumi.staging.yaml"), {"dev": ["dev"], "staging": ["staging"]}),
        (("dev", "edge-*"), {"dev": ["dev"], "edge": ["edge-store-001"]}),
    ],
)
def test_stacks_are_named_as_every_command_names_them_and_globs_still_match(project, given, planned):
    plan = plan_rollout(RolloutRequest(stacks=given), pytest.fail)
    assert {stage.name: stage.stacks for stage in plan.selection.plan(plan.fleet)} == planned


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (
            RolloutRequest(stacks=("prod-wue",)),
            "--stacks: stacks: 'prod-wue': no such stack (did you mean 'prod-weu'?); the stacks are dev, "
            "edge-store-001, prod-weu, staging",
        ),
        (
            RolloutRequest(stage="dev", stacks=("prod-weu",)),
            "--stacks 'prod-weu': stack prod-weu is in no stage of stage dev (it is in stage production)",
        ),
    ],
)
def test_a_stack_name_that_is_not_one_of_the_run_is_refused_with_what_it_could_mean(project, request_, said):
    assert refused(request_) == (f"fluxfleet rollout: {said}",)


def test_the_command_line_takes_stacks_comma_separated_or_repeated(project):
    from typer.testing import CliRunner

    from fluxfleet.cli import app

    result = CliRunner().invoke(
        app, ["rollout", "--dry-run", "--format", "json", "--stacks", "dev,staging", "--stacks", "prod-weu"]
    )
    assert result.exit_code == 0, result.output
    stages = json.loads(result.stdout)["stages"]
    assert {stage["name"]: stage["stacks"] for stage in stages} == {
        "dev": ["dev"],
        "staging": ["staging"],
        "production": ["prod-weu"],
    }


def test_the_matrix_of_a_stage_without_typer(project):
    result = run_rollout(RolloutRequest(matrix="edge"), pytest.fail)
    assert result.exit_code is ExitCode.OK and result.report == "" and result.record is None
    assert result.matrix == {
        "stage": "edge",
        "matrix": {"stack": ["edge-store-001"]},
        "maxParallel": 10,
        "maxFailures": 2,
        "minSucceeded": 0,
        "afterStageWait": 3600,
        "approval": False,
        "rollback": True,
    }


def test_the_matrix_of_a_run_lists_only_the_stacks_it_has_not_applied(project):
    # a stage of two stacks, one of them applied by an earlier attempt of the workflow's run, one failed
    from fluxfleet.rollout.journal import RunRecord, RunStatus, StackEntry, StagePlan

    fleet_file = project / "stacks" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text().replace("profiles: [edge-store]", "stacks: [edge-store-001, dev]"))
    fleet_file.write_text(fleet_file.read_text().replace("  - name: dev\n    stacks: [dev]\n", ""))
    edge = StagePlan("edge", ["edge-store-001", "dev"], 1, 2, 0, False, bake_until="2026-12-07T16:00:00+00:00")
    Journal.create(
        project / ".fluxfleet" / "runs",
        RunRecord(
            "github-42",
            "stacks/fleet.yaml",
            "2026-12-07T15:00:00+00:00",
            RunStatus.partial,
            [edge],
            {
                "edge-store-001": StackEntry(StackState.succeeded, stage="edge"),
                "dev": StackEntry(StackState.failed, stage="edge"),
            },
        ),
    )
    result = run_rollout(RolloutRequest(matrix="edge", run_id="github-42"), pytest.fail)
    assert result.matrix["matrix"] == {"stack": ["dev"]}
    assert result.matrix["run"] == {
        "id": "github-42",
        "succeeded": 1,
        "failed": 1,
        "pending": 0,
        "finished": True,
        "bakeUntil": "2026-12-07T16:00:00+00:00",
    }
    assert result.matrix["maxFailures"] == 2 and result.matrix["rollback"] is True  # the stage's rules as before


def test_the_matrix_of_a_run_not_started_yet_has_every_stack_and_nothing_done(project):
    without = run_rollout(RolloutRequest(matrix="edge"), pytest.fail).matrix
    result = run_rollout(RolloutRequest(matrix="edge", run_id="github-42"), pytest.fail)
    assert "run" not in without  # without --run-id, the matrix is what it always was
    assert result.matrix == without | {
        "run": {"id": "github-42", "succeeded": 0, "failed": 0, "pending": 1, "finished": False, "bakeUntil": None}
    }


@pytest.mark.parametrize("run_id", ["../runs", ".hidden", "a/b", "run id", "x" * 101, ""])
def test_a_run_id_is_a_name_never_a_path(project, run_id):
    [line] = refused(RolloutRequest(matrix="edge", run_id=run_id))
    assert line.startswith("fluxfleet rollout: --run-id: ") and "is not a run id: a run id is a name of letters" in line


def test_a_dry_run_without_typer_shows_the_plan_and_writes_nothing(project):
    result = run_rollout(RolloutRequest(dry_run=True, stage="dev", fmt="json"), pytest.fail)
    assert result.exit_code is ExitCode.OK and result.matrix is None
    assert [stage["name"] for stage in json.loads(result.report)["stages"]] == ["dev"]
    assert not (project / ".fluxfleet").exists()


def without_gate(project: Path) -> None:
    fleet_file = project / "stacks" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text().replace("fluxCompliance: true", "fluxCompliance: false"))


def test_a_whole_run_without_typer(project, fake, capsys):
    without_gate(project)
    events = {"preview": {"events": update_events("dev")}, "up": {"events": update_events("dev")}}
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": events}}))
    result = run_rollout(RolloutRequest(stacks=("dev",), fmt="json"), pytest.fail)
    assert result.exit_code is ExitCode.OK and result.record is not None
    assert result.record.status is RunStatus.done
    assert result.record.stacks["dev"].state is StackState.succeeded
    assert json.loads(result.report)["status"] == "done"
    assert fake.argv("up") != []
    [journal] = (project / ".fluxfleet" / "runs").glob("*.json")
    assert f"fluxfleet rollout: run {journal.stem} (journal .fluxfleet/runs/{journal.name})" in capsys.readouterr().err


def test_a_failed_stack_is_exit_1_with_its_summary(project, fake):
    without_gate(project)
    failing = {"preview": {"events": update_events("dev")}, "up": {"events": [], "exit": 255}}
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": failing}}))
    result = run_rollout(RolloutRequest(stage="dev", fmt="json"), pytest.fail)
    assert result.exit_code is ExitCode.FAILED
    assert json.loads(result.report)["stages"][0]["stacks"][0]["state"] == "failed"


# --------------------------------------------------------------------------------------------- the refs of a dry run


def pin_production_and_add_a_store_at_a_tag(project: Path) -> None:
    """prod-weu's stack file says tag v1.0.0: fleet.yaml pins production at v1.4.0 over it. The edge stage gets
    edge-store-002, whose stack file says tag v2.0.0 where edge-store-001 runs its profile's branch main."""
    stacks = project / "stacks"
    fleet_file = stacks / "fleet.yaml"
    production = 'stacks: ["prod-*"]\n'
    fleet_file.write_text(
        fleet_file.read_text().replace(production, production + "    pins: {platform: {tag: v1.4.0}}\n")
    )
    (stacks / "Pulumi.edge-store-002.yaml").write_text(
        "config:\n"
        "  fluxfleet:profiles: [edge-store]\n"
        "  fluxfleet:cluster: {name: store-002, resourceGroup: rg-store-002}\n"
        "  fluxfleet:flux: {configurations: {gitops-demo: {git: {branch: null, tag: v2.0.0}}}}\n"
    )


def dry_run_of(request: RolloutRequest) -> str:
    result = run_rollout(request, pytest.fail)
    assert result.exit_code is ExitCode.OK
    return result.report


def git_ref(ref: str, origin: str, *stacks: str) -> dict:
    return {"ref": ref, "origin": origin, "source": "git", "stacks": list(stacks)}


def test_a_dry_run_shows_per_stage_the_ref_each_configuration_applies_and_where_it_comes_from(project):
    pin_production_and_add_a_store_at_a_tag(project)
    stages = json.loads(dry_run_of(RolloutRequest(dry_run=True, fmt="json")))["stages"]
    assert {stage["name"]: stage["configurations"] for stage in stages} == {
        "dev": [{"name": "platform", "refs": [git_ref("branch main", "stack", "dev")]}],  # its profile's
        "staging": [{"name": "platform", "refs": [git_ref("branch main", "stack", "staging")]}],
        "edge": [  # no pin: each store's own, the stores that share one together
            {
                "name": "gitops-demo",
                "refs": [
                    git_ref("branch main", "stack", "edge-store-001"),
                    git_ref("tag v2.0.0", "stack", "edge-store-002"),
                ],
            }
        ],
        "production": [{"name": "platform", "refs": [git_ref("tag v1.4.0", "pin", "prod-weu")]}],  # not its v1.0.0
    }
    assert not (project / ".fluxfleet").exists()


def test_a_dry_run_in_text_and_markdown_says_each_ref_and_the_stacks_where_they_differ(project):
    pin_production_and_add_a_store_at_a_tag(project)
    text = dry_run_of(RolloutRequest(dry_run=True)).splitlines()
    assert text[text.index("     1. dev") + 1] == "   applies platform at branch main (stack's own)"
    edge = text.index("     2. edge-store-002")
    assert text[edge + 1 : edge + 3] == [
        "   applies gitops-demo at branch main (stack's own) on edge-store-001",
        "   applies gitops-demo at tag v2.0.0 (stack's own) on edge-store-002",
    ]
    assert text[text.index("     1. prod-weu") + 1] == "   applies platform at tag v1.4.0 (stage pin)"
    markdown = dry_run_of(RolloutRequest(dry_run=True, fmt="markdown")).splitlines()
    assert markdown[markdown.index("## Refs each stage applies") + 1 :] == [
        "",
        "| stage | configuration | ref | from | stacks |",
        "|---|---|---|---|---|",
        "| dev | platform | branch main | stack's own | all |",
        "| staging | platform | branch main | stack's own | all |",
        "| edge | gitops-demo | branch main | stack's own | edge-store-001 |",
        "| edge | gitops-demo | tag v2.0.0 | stack's own | edge-store-002 |",
        "| production | platform | tag v1.4.0 | stage pin | all |",
    ]


def test_a_dry_run_of_a_resume_shows_the_refs_of_the_run_s_stacks_as_they_would_be_applied(project):
    from fluxfleet.rollout.orchestrator import Selection, new_run
    from fluxfleet.simulation import FakeClock
    from tests.fluxfleet.rollout.test_orchestrator import fleet, stage

    record = new_run(fleet(stage("production", ["prod-weu"])), Selection(), FakeClock().now())
    Journal.create(project / ".fluxfleet" / "runs", record)
    pin_production_and_add_a_store_at_a_tag(project)  # pinned since the run began: the resumed run applies the pin
    [production] = json.loads(dry_run_of(RolloutRequest(resume=record.run_id, dry_run=True, fmt="json")))["stages"]
    assert production["configurations"] == [{"name": "platform", "refs": [git_ref("tag v1.4.0", "pin", "prod-weu")]}]
