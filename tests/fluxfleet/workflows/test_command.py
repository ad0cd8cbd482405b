"""`fluxfleet workflows` (fluxfleet/workflows/): deploy.yml's stage jobs are what stacks/fleet.yaml gives, a stage
added to fleet.yaml gets its job in its place, the rest of the file is kept byte for byte, and input that cannot
give the jobs is one line naming the file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fluxfleet.cli import app
from fluxfleet.exits import ExitCode, InvalidInput
from fluxfleet.workflows.command import WorkflowsRequest, run_workflows
from tests.conftest import ROOT
from tests.test_workflows import actionlint

DEPLOY = Path(".github/workflows/deploy.yml")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's stacks and workflows, as the working directory."""
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def jobs(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())["jobs"]


def add_canary(project: Path) -> None:
    """A stage `canary` between staging and edge, taking the edge store."""
    fleet = project / "stacks" / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "  - name: edge\n", "  - name: canary\n    stacks: [edge-store-001]\n  - name: edge\n"
        )
    )


def test_the_committed_deploy_workflow_is_what_the_committed_fleet_yaml_gives(monkeypatch):
    monkeypatch.chdir(ROOT)
    before = (ROOT / DEPLOY).read_bytes()
    result = run_workflows(WorkflowsRequest(check=True))
    assert result.exit_code is ExitCode.OK, f"{result.line} (run `.venv/bin/fluxfleet workflows` and commit it)"
    assert (ROOT / DEPLOY).read_bytes() == before  # --check writes nothing


def test_a_stage_added_to_fleet_yaml_gets_its_job_and_the_next_stage_needs_it(project):
    committed = (project / DEPLOY).read_text()
    add_canary(project)
    stale = run_workflows(WorkflowsRequest(check=True))
    assert stale.exit_code is ExitCode.FAILED
    assert stale.line == (
        f"fluxfleet workflows: {DEPLOY} is not what stacks/fleet.yaml gives (its stage jobs: dev, staging, edge, "
        "production; fleet.yaml's stages: dev, staging, canary, edge, production): run `fluxfleet workflows` and "
        "commit the file"
    )
    assert (project / DEPLOY).read_text() == committed

    assert run_workflows(WorkflowsRequest()).exit_code is ExitCode.OK
    written = jobs(project / DEPLOY)
    assert list(written) == ["stages", "dev", "staging", "canary", "edge", "production"]
    assert written["canary"]["needs"] == ["stages", "staging"] and written["edge"]["needs"] == ["stages", "canary"]
    assert written["canary"]["uses"] == "./.github/workflows/deploy-stage.yml"
    assert written["canary"]["with"] == {"stage": "canary", "plan": "${{ needs.stages.outputs.canary }}"}
    assert list(written["stages"]["outputs"]) == ["dev", "staging", "canary", "edge", "production"]
    [loop] = [s["run"] for s in written["stages"]["steps"] if s.get("id") == "matrix"]
    assert "for stage in dev staging canary edge production; do" in loop
    assert actionlint(project / DEPLOY) == []
    # the rest of the file as it was: its header and everything up to the jobs, and the `stages` job's other steps
    text = (project / DEPLOY).read_text()
    assert text[: text.index("\njobs:\n")] == committed[: committed.index("\njobs:\n")]
    old = jobs(Path(ROOT / DEPLOY))["stages"]["steps"]
    assert [s for s in written["stages"]["steps"] if s.get("id") != "matrix"] == [
        s for s in old if s.get("id") != "matrix"
    ]
    # written again: the same bytes, and up to date
    assert run_workflows(WorkflowsRequest()).line == f"{DEPLOY}: up to date with stacks/fleet.yaml"
    assert (project / DEPLOY).read_text() == text
    assert run_workflows(WorkflowsRequest(check=True)).exit_code is ExitCode.OK
    # and back: the stage removed from fleet.yaml, its job goes, and the file is the committed one again
    shutil.copy(ROOT / "stacks" / "fleet.yaml", project / "stacks" / "fleet.yaml")
    run_workflows(WorkflowsRequest())
    assert (project / DEPLOY).read_text() == committed


def test_each_stage_job_runs_after_the_one_before_only_when_it_has_work(project):
    written = jobs(project / DEPLOY)
    # the first stage after the plan; each other after the one before passed or was skipped (a stage with nothing
    # to do), never after one that failed
    assert written["dev"]["needs"] == "stages"
    assert "cancelled()" not in written["dev"]["if"]
    for stage in ["staging", "edge", "production"]:
        condition = written[stage]["if"]
        assert condition.startswith("${{ !cancelled() && !failure() && (")
        # a stage with stacks left to apply, or one the run applied stacks of (its verdict and bake are read again)
        assert f"fromJSON(needs.stages.outputs.{stage}).matrix.stack[0] != null" in condition
        assert f"fromJSON(needs.stages.outputs.{stage}).run.succeeded > 0" in condition


def test_the_comment_of_each_stage_job_says_how_it_runs(project):
    text = (project / DEPLOY).read_text()
    assert "  # stage staging: a matrix, a leg a stack, then a bake of 30m\n  staging:\n" in text
    assert (
        "  # stage production: the reviewers of fleet-production approve it, one job, which can roll the stage "
        "back\n  production:\n"
    ) in text


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("stages", "a stage cannot be named 'stages' in CI: deploy.yml's job 'stages' plans the stages"),
        ("1st", "'1st' cannot name a job of deploy.yml: a job's name starts with a letter or '_'"),
    ],
)
def test_a_stage_whose_name_cannot_be_a_job_is_invalid_input(project, name, said):
    fleet = project / "stacks" / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("  - name: dev\n", f"  - name: {name}\n"))
    with pytest.raises(InvalidInput) as raised:
        run_workflows(WorkflowsRequest())
    assert raised.value.lines == (f"fluxfleet workflows: stacks/fleet.yaml: stages[0].name: {said}",)


def test_an_invalid_fleet_yaml_is_one_line_per_problem_with_file_and_key(project):
    (project / "stacks" / "fleet.yaml").write_text("stages:\n  - name: dev\n    stacks: [nope]\n")
    committed = (project / DEPLOY).read_text()
    with pytest.raises(InvalidInput) as raised:
        run_workflows(WorkflowsRequest())
    [line] = raised.value.lines
    assert line.startswith("fluxfleet workflows: stacks/fleet.yaml: stages[0].stacks[0]: ")
    assert (project / DEPLOY).read_text() == committed


@pytest.mark.parametrize(
    ("deploy", "said"),
    [
        (None, "--output .github/workflows/deploy.yml: no such file: the stage jobs are written into an existing"),
        ("on: push\njobs:\n  dev: {}\n", ".github/workflows/deploy.yml: jobs.stages: no such job"),
        ("jobs: [\n", ".github/workflows/deploy.yml: line 2: not YAML: "),
        (
            "jobs:\n  stages:\n    steps:\n      - id: matrix\n        run: echo\n",
            ".github/workflows/deploy.yml: jobs.stages.steps[id=matrix].run: no `for stage in ...; do`",
        ),
    ],
    ids=["missing", "no-stages-job", "not-yaml", "no-loop"],
)
def test_a_deploy_file_that_cannot_take_the_jobs_is_one_line(project, deploy, said):
    if deploy is None:
        (project / DEPLOY).unlink()
    else:
        (project / DEPLOY).write_text(deploy)
    with pytest.raises(InvalidInput) as raised:
        run_workflows(WorkflowsRequest())
    [line] = raised.value.lines
    assert line.startswith(f"fluxfleet workflows: {said}"), line


def test_the_command_line_checks_writes_and_says_so(project):
    add_canary(project)
    runner = CliRunner()
    stale = runner.invoke(app, ["workflows", "--check"])
    assert stale.exit_code == 1 and stale.stdout == ""
    assert stale.stderr.startswith(f"fluxfleet workflows: {DEPLOY} is not what stacks/fleet.yaml gives")
    written = runner.invoke(app, ["workflows"])
    assert written.exit_code == 0 and written.stderr == f"wrote {DEPLOY}: 5 stage job(s), from stacks/fleet.yaml\n"
    elsewhere = project / "deploy-copy.yml"
    shutil.copy(ROOT / DEPLOY, elsewhere)
    other = runner.invoke(app, ["workflows", "--output", str(elsewhere), "--fleet", "stacks/fleet.yaml"])
    assert other.exit_code == 0, other.output
    assert elsewhere.read_text() == (project / DEPLOY).read_text()
    assert runner.invoke(app, ["workflows", "--check"]).exit_code == 0


def test_the_command_line_answers_a_bad_fleet_yaml_with_one_line_and_exit_2(project):
    (project / "stacks" / "fleet.yaml").write_text("stages: oops\n")
    result = CliRunner().invoke(app, ["workflows", "--check"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("fluxfleet workflows: stacks/fleet.yaml: stages: ")
