"""`fluxfleet runs`: the runs of the state store with their status and counts, and one run stage by stage, as CI
reads it to decide a stage's verdict and its bake (deploy-stage.yml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from fluxfleet.rollout.orchestrator import Selection, new_run
from fluxfleet.simulation import FakeClock
from tests.fluxfleet.rollout.test_orchestrator import fleet, stage

FLEET = fleet(stage("dev", ["a", "b"], failures=1, wait=1800), stage("prod", ["p"]))


def a_run(runs: Path, run_id: str, clock: FakeClock, **states: StackState) -> Journal:
    journal = Journal.create(runs, new_run(FLEET, Selection(), clock.now(), run_id=run_id))
    for name, state in states.items():
        journal.update(clock.now(), name, state=state)
    return journal


def runs(*args: str):
    return CliRunner().invoke(app, ["runs", *args])


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".fluxfleet" / "runs"


def test_every_run_with_its_status_and_counts_oldest_first_in_text_and_json(store):
    clock = FakeClock()
    a_run(store, "github-2", clock, a=StackState.succeeded, b=StackState.failed)
    clock.advance(-3600)
    done = a_run(store, "github-1", clock, a=StackState.succeeded, b=StackState.succeeded, p=StackState.succeeded)
    done.update(clock.now(), status=RunStatus.done)
    result = runs("--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "runs": [
            {
                "id": "github-1",
                "kind": "rollout",
                "started": "2025-12-31T23:00:00+00:00",
                "status": "done",
                "succeeded": 3,
                "failed": 0,
                "pending": 0,
            },
            {
                "id": "github-2",
                "kind": "rollout",
                "started": "2026-01-01T00:00:00+00:00",
                "status": "running",
                "succeeded": 1,
                "failed": 1,
                "pending": 1,
            },
        ],
        "unreadable": [],
    }
    text = runs().stdout.splitlines()
    assert text[0].split() == ["RUN", "KIND", "STARTED", "STATUS", "DONE", "FAILED", "PENDING"]
    assert text[1].split() == ["github-1", "rollout", "2025-12-31T23:00:00+00:00", "done", "3", "0", "0"]
    assert text[2].split() == ["github-2", "rollout", "2026-01-01T00:00:00+00:00", "running", "1", "1", "1"]
    assert runs("--format", "json").stdout == result.stdout  # byte-identical: runs can be diffed


def test_one_run_stage_by_stage_says_whether_each_passed_and_until_when_it_bakes(store):
    clock = FakeClock()
    journal = a_run(store, "github-7", clock, a=StackState.succeeded, b=StackState.failed)
    journal.update(clock.now(), stage="dev", bake_until="2026-01-01T00:30:00+00:00")
    result = runs("github-7", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stages"] == [
        {
            "name": "dev",
            "stacks": 2,
            "succeeded": 1,
            "failed": 1,
            "pending": 0,
            "maxFailures": 1,
            "minSuccess": None,
            "minSucceeded": 0,
            "finished": True,
            "failure": None,
            "bakeUntil": "2026-01-01T00:30:00+00:00",
        },
        {
            "name": "prod",
            "stacks": 1,
            "succeeded": 0,
            "failed": 0,
            "pending": 1,
            "maxFailures": 0,
            "minSuccess": None,
            "minSucceeded": 0,
            "finished": False,
            "failure": None,
            "bakeUntil": None,
        },
    ]
    assert (report["id"], report["status"], report["succeeded"], report["failed"]) == ("github-7", "running", 1, 1)
    text = runs("github-7").stdout
    assert text.splitlines()[0] == "run github-7: running"
    assert "dev    2       1     1       0        1             yes     2026-01-01T00:30:00+00:00" in text


def test_a_stage_over_its_budget_has_not_passed(store):
    clock = FakeClock()
    a_run(store, "r1", clock, a=StackState.failed, b=StackState.failed)
    [dev, _] = json.loads(runs("r1", "--format", "json").stdout)["stages"]
    assert (dev["failed"], dev["maxFailures"], dev["finished"]) == (2, 1, False)


def test_no_such_run_is_exit_1_and_what_is_no_run_id_exit_2(store):
    a_run(store, "r1", FakeClock())
    missing = runs("r2")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr == "fluxfleet runs: .fluxfleet/runs/r2.json: no such run (runs are in .fluxfleet/runs)\n"
    for not_an_id in ("../r1", "/etc/passwd", "r1/../r1"):
        refused = runs(not_an_id)
        assert refused.exit_code == 2 and "is not a run id: a run id is a name of letters, digits" in refused.stderr


def test_an_entry_that_is_no_run_is_listed_as_unreadable_and_exit_1(store):
    a_run(store, "r1", FakeClock())
    (store / "junk.json").write_text("{not json")
    result = runs("--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [run["id"] for run in report["runs"]] == ["r1"]
    assert report["unreadable"] == [
        ".fluxfleet/runs/junk.json: not a fluxfleet run journal (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))"
    ]


def test_an_empty_store_says_where_it_looked(store):
    result = runs()
    assert result.exit_code == 0 and result.stdout == "no runs in .fluxfleet/runs\n"


def test_the_workflow_tests_fake_runs_answers_with_the_real_shape(store):
    """tests/test_workflows.py runs deploy-stage.yml's steps over a fake `fluxfleet runs`: it must answer as this one
    does, key for key, or the workflow is tested against an answer nobody gives."""
    from tests.test_workflows import runs_json

    a_run(store, "github-42", FakeClock(), a=StackState.succeeded)
    real = json.loads(runs("github-42", "--format", "json").stdout)
    fake = json.loads(runs_json({"dev": {}}))
    assert set(fake) <= set(real)
    assert set(fake["stages"][0]) == set(real["stages"][0])
    assert {type(value) for value in real["stages"][1].values()} <= {str, int, bool, type(None)}
