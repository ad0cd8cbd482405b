"""A decommission run's doubts, settled over `FakeRunner` (it answers destroy, history, pending operations and stack
rm as a Pulumi backend does): a step journaled as running whose end never was is settled from the backend, never
repeated blindly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fluxfleet.decommission.command import new_run
from fluxfleet.decommission.run import Decommission, Files
from fluxfleet.rollout.journal import Journal, RunStatus, StackState, history
from fluxfleet.runner import UpdateRecord
from fluxfleet.simulation import FakeClock, FakeRunner
from tests.tools.decommission_project import state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def resources(stack: str) -> list[str]:
    return [r["urn"] for r in state(stack, "aks")["deployment"]["resources"] if r.get("custom")]


@pytest.fixture
def setup(tmp_path: Path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.aks-1.yaml").write_text("config: {}\n")
    (stacks / "fleet.yaml").write_text("stages:\n  - name: a\n    stacks: [aks-1, other]\n")
    (stacks / "Pulumi.other.yaml").write_text("config: {}\n")
    clock = FakeClock(T0)
    runner = FakeRunner(clock, resources={"aks-1": resources("aks-1")})
    journal = Journal.create(tmp_path / "runs", new_run("r", ["aks-1"]))
    files = Files(stacks, stacks / "fleet.yaml", lambda path: path.name)
    return journal, runner, files, clock


def in_doubt(journal: Journal, step: str, done: tuple[str, ...] = ()) -> str:
    """The journal as a run killed during `step` leaves it."""
    update_id = f"fluxfleet decommission r: aks-1 {step} #1"
    steps = {**journal.record.stacks["aks-1"].steps, **dict.fromkeys(done, StackState.succeeded)}
    journal.update(
        T0, "aks-1", state=StackState.running, steps={**steps, step: StackState.running}, update_id=update_id
    )
    return update_id


def test_a_destroy_the_history_has_succeeded_is_not_run_again(setup):
    journal, runner, files, clock = setup
    update_id = in_doubt(journal, "configurations")
    # The killed run's destroy got through: the history has it, the state no longer lists the configuration.
    runner.updates["aks-1"] = [UpdateRecord("destroy", "succeeded", T0, T0, update_id)]
    runner.resources["aks-1"] = [urn for urn in resources("aks-1") if "FluxConfiguration" not in urn]
    Decommission(journal, runner, files, clock).run()
    assert journal.record.status is RunStatus.done
    assert [len(urns) for _, urns in runner.destroyed] == [
        1,
        2,
    ]  # the extension, then the rest: never the configurations again
    assert runner.removed == ["aks-1"] and not (files.stacks_dir / "Pulumi.aks-1.yaml").exists()
    assert (files.stacks_dir / "fleet.yaml").read_text() == "stages:\n  - name: a\n    stacks: [other]\n"


def test_a_destroy_that_never_reached_pulumi_runs_now(setup):
    journal, runner, files, clock = setup
    in_doubt(journal, "configurations")
    Decommission(journal, runner, files, clock).run()
    assert journal.record.status is RunStatus.done
    assert len(runner.destroyed) == 3
    assert history(journal.store) == {}  # a rollout's estimates never take a decommission for an update


@pytest.mark.parametrize(
    ("result", "pending", "says"),
    [
        ("failed", [], "extension: the interrupted destroy failed: see `pulumi stack history -s aks-1`"),
        ("in-progress", [], "extension: the interrupted destroy is still in progress in the Pulumi backend"),
        (
            None,
            ["urn:x"],
            "extension: 1 pending operation(s) from an interrupted destroy: run `pulumi refresh -s aks-1`",
        ),
    ],
)
def test_a_destroy_that_failed_still_runs_or_left_pending_operations_halts_the_run_untouched(
    setup, result, pending, says
):
    journal, runner, files, clock = setup
    update_id = in_doubt(journal, "extension", done=("configurations",))
    if result:
        runner.updates["aks-1"] = [UpdateRecord("destroy", result, T0, None, update_id)]
    runner.pending["aks-1"] = pending
    Decommission(journal, runner, files, clock).run()
    entry = journal.record.stacks["aks-1"]
    assert journal.record.status is RunStatus.halted and entry.state is StackState.failed
    assert entry.message.startswith(says), entry.message
    assert runner.destroyed == [] and runner.removed == []
    assert (files.stacks_dir / "Pulumi.aks-1.yaml").exists()


def test_a_stack_rm_in_doubt_is_done_when_the_backend_has_no_such_stack(setup):
    journal, runner, files, clock = setup
    in_doubt(journal, "stack-rm", done=("configurations", "extension", "destroy"))
    runner.resources["aks-1"] = []
    runner.removed.append("aks-1")  # the killed run's `stack rm` got through
    Decommission(journal, runner, files, clock).run()
    assert journal.record.status is RunStatus.done and runner.removed == ["aks-1"]
    assert journal.record.stacks["aks-1"].steps == dict.fromkeys(
        journal.record.stacks["aks-1"].steps, StackState.succeeded
    )


def test_a_stack_the_backend_never_had_runs_no_pulumi_and_its_files_still_go(setup):
    journal, runner, files, clock = setup
    runner.removed.append("aks-1")  # the backend has no such stack
    Decommission(journal, runner, files, clock).run()
    assert journal.record.status is RunStatus.done
    assert runner.destroyed == [] and runner.removed == ["aks-1"]
    assert not (files.stacks_dir / "Pulumi.aks-1.yaml").exists()
