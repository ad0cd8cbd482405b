"""One run, many processes: the matrix legs of a CI rollout (and a laptop that resumes beside them) each join the
run of one id, work their own stacks, and record into the one journal. Each stack is applied once, the failure
budget counts every leg's failures, a later stage's leg waits for the earlier stage to pass and bake, and the run is
done only when every stack of it is."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from fluxfleet.rollout.orchestrator import NotReady, Selection, new_run
from tests.fluxfleet.rollout.test_orchestrator import Harness, fleet, stage

RUN = "github-8812"


class Legs(Harness):
    """Each `leg` is one process of the run RUN: it joins the run (as `rollout --run-id` does) with whole stages and
    works only the stacks it is given."""

    @property
    def order(self) -> list[str]:
        return [stage.name for stage in self.fleet.stages]

    def leg(self, *stacks: str, approve=(), stage_name: str | None = None, **options) -> RunStatus:
        whole = Selection(stage=stage_name)
        journal = Journal.join(self.runs, new_run(self.fleet, whole, self.clock.now(), run_id=RUN), self.order)
        self.run_id = RUN
        return self.rollout(journal, only=frozenset(stacks), **options).run(approve)


def test_each_leg_applies_its_stack_once_and_the_run_is_done_when_every_stack_is(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a", "b"])))
    assert legs.leg("a") is RunStatus.partial
    assert legs.record().reason == "1 stack(s) of the run not done by this process: b"
    assert legs.leg("b") is RunStatus.done
    assert legs.leg("a") is RunStatus.done  # a re-run of a leg whose stack is done applies nothing
    assert legs.runner.applied == {"a": 1, "b": 1}
    assert legs.states() == {"a": "succeeded", "b": "succeeded"}


def test_the_failure_budget_counts_the_failures_of_every_leg(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a", "b", "c"], failures=1)), failing={"a": "boom", "b": "bang"})
    assert legs.leg("a") is RunStatus.partial  # one failure: within maxFailures 1
    assert legs.leg("b") is RunStatus.halted  # the second, from another leg: past it
    assert legs.leg("c") is RunStatus.halted  # not started: the stage already failed
    assert legs.states() == {"a": "failed", "b": "failed", "c": "skipped"}
    assert legs.runner.started == ["a", "b"]
    assert legs.record().reason == "stage dev: 2 stack(s) failed, more than its maxFailures 1"


def test_a_later_stages_leg_waits_for_the_earlier_stage_to_pass_then_for_its_bake(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a", "b"], wait=1800), stage("prod", ["p"])))
    legs.leg("a", stage_name="dev")
    with pytest.raises(NotReady, match=rf"run {RUN}: stage dev has not ended: 1 stack\(s\) not done \(b\)"):
        legs.leg("p", stage_name="prod")
    assert "p" not in legs.runner.applied
    legs.clock.advance(60)
    legs.leg("b", stage_name="dev")  # the last of dev: the leg that saw the stage pass records when its bake ends
    assert legs.record().stages[0].bake_until == (legs.clock.now() + timedelta(seconds=1800)).isoformat()
    assert legs.clock.sleeps == []  # dev's own legs do not wait: the bake is the next stage's to wait out
    legs.clock.advance(600)
    assert legs.leg("p", stage_name="prod") is RunStatus.done
    assert legs.clock.sleeps == [1200]  # what was left of the bake when prod's leg began
    assert legs.runner.applied == {"a": 1, "b": 1, "p": 1}


def test_a_finished_bake_is_not_waited_again(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a"], wait=1800), stage("prod", ["p"])))
    legs.leg("a", stage_name="dev")
    legs.clock.advance(1800)
    assert legs.leg("p", stage_name="prod") is RunStatus.done
    assert legs.clock.sleeps == []


def test_a_stage_failed_past_its_budget_stops_a_later_stages_leg(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a"]), stage("prod", ["p"])), failing={"a": "boom"})
    assert legs.leg("a", stage_name="dev") is RunStatus.halted
    with pytest.raises(NotReady, match="stage dev failed: 1 stack\\(s\\) failed, more than its maxFailures"):
        legs.leg("p", stage_name="prod")


def test_joining_adds_the_stages_a_run_lacks_and_keeps_what_it_has(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a"]), stage("prod", ["p"])))
    legs.leg("a", stage_name="dev")
    assert [s.name for s in legs.record().stages] == ["dev"]
    legs.leg("p", stage_name="prod")
    record = legs.record()
    assert [s.name for s in record.stages] == ["dev", "prod"]
    assert record.stacks["a"].state is StackState.succeeded and record.stacks["p"].state is StackState.succeeded


def test_joins_at_once_lose_no_stage(tmp_path: Path):
    names = [f"s{index}" for index in range(8)]
    legs = Legs(tmp_path, fleet(*(stage(name, [f"{name}-a"]) for name in names)))

    def join(name: str) -> None:
        Journal.join(legs.runs, new_run(legs.fleet, Selection(stage=name), legs.clock.now(), run_id=RUN), names)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(join, names))
    record = Journal.load(legs.runs, RUN).record
    assert [s.name for s in record.stages] == names  # in fleet.yaml's order, whoever joined first
    assert sorted(record.stacks) == sorted(f"{name}-a" for name in names)


def test_a_process_with_stacks_in_two_stages_waits_for_the_others_stacks_of_the_first(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a", "b"]), stage("prod", ["p"])))
    with pytest.raises(NotReady, match=r"stage dev has not ended: 1 stack\(s\) not done \(b\)"):
        legs.leg("a", "p")
    assert legs.runner.applied == {"a": 1}  # its dev stack applied, its prod stack not started
    assert legs.leg("b") is RunStatus.partial
    assert legs.leg("a", "p") is RunStatus.done
    assert legs.runner.applied == {"a": 1, "b": 1, "p": 1}


def test_a_deferred_stack_ends_its_stage_as_it_did_for_one_process(tmp_path: Path):
    legs = Legs(tmp_path, fleet(stage("dev", ["a"]), stage("prod", ["p"])))
    journal = Journal.join(legs.runs, new_run(legs.fleet, Selection(), legs.clock.now(), run_id=RUN), legs.order)
    journal.update(legs.clock.now(), "a", state=StackState.deferred, attempts=1, message="cluster offline")
    assert legs.leg("p") is RunStatus.partial  # dev has ended: its stack was updated, its gate waits for the cluster
    assert legs.runner.applied == {"p": 1}


def test_storage_lost_mid_run_stops_it_with_the_journal_whole_and_a_resume_applies_each_stack_once(tmp_path: Path):
    """Azurite stopped while a stack's update runs: the run stops at its next journal write (a StoreError, one line
    naming the store), what it had journaled is all there when the storage is back, and the resume settles the stack
    whose outcome it could not write from the Pulumi history instead of applying it again."""
    from fluxfleet.runstate.azblob import BlobStore, container_client_from_connection_string
    from fluxfleet.runstate.store import StoreError
    from tests.tools.azurite.server import start_azurite

    def store_of(server) -> BlobStore:
        return BlobStore(container_client_from_connection_string(server.connection_string(), "runs"), ".fluxfleet/")

    server = start_azurite(tmp_path / "azurite", on_disk=True)
    try:
        container_client_from_connection_string(server.connection_string(), "runs").create_container()
        legs = Legs(tmp_path, fleet(stage("dev", ["a", "b"])))
        legs.runner.on_up = lambda stack: server.stop() if stack == "b" else None
        journal = Journal.create(store_of(server), new_run(legs.fleet, Selection(), legs.clock.now(), run_id=RUN))
        with pytest.raises(StoreError, match=r"^azblob://runs/\.fluxfleet: .*") as stopped:
            legs.rollout(journal).run()
        assert "\n" not in str(stopped.value)
        server = start_azurite(tmp_path / "azurite", on_disk=True)
        legs.runner.on_up = None
        record = Journal.load(store_of(server), RUN).record
        assert record.stacks["a"].state is StackState.succeeded
        assert record.stacks["b"].state is StackState.running and record.stacks["b"].update_id  # in doubt
        assert legs.rollout(Journal.load(store_of(server), RUN)).run() is RunStatus.done
        assert legs.runner.applied == {"a": 1, "b": 1}  # b's update had ended: found in its history, not re-applied
    finally:
        server.stop()


def test_a_refresh_never_sets_back_a_change_this_process_made_while_it_read(tmp_path: Path):
    """A worker thread's change that lands while another thread reads the run must survive that read: the refresh
    applies what it read, which is older than the change."""
    import threading

    from fluxfleet.runstate.local import LocalStore

    store = LocalStore(tmp_path / "runs")
    legs = Legs(tmp_path, fleet(stage("dev", ["a"])))
    journal = Journal.create(store, new_run(legs.fleet, Selection(), legs.clock.now(), run_id=RUN))
    journal.update(legs.clock.now(), "a", state=StackState.running)
    real_read = store.read
    worker = threading.Thread(target=lambda: journal.update(legs.clock.now(), "a", state=StackState.gating))

    def read_while_a_worker_changes_it(name, **options):
        found = real_read(name, **options)
        if name.endswith(".log") and not worker.is_alive() and worker.ident is None:
            worker.start()
            worker.join(0.3)  # it waits for the refresh to end, or (were it let in) lands now
        return found

    store.read = read_while_a_worker_changes_it  # type: ignore[method-assign]
    journal.refresh()
    worker.join()
    assert journal.record.stacks["a"].state is StackState.gating
    journal.refresh()
    assert journal.record.stacks["a"].state is StackState.gating


@pytest.mark.parametrize("read", ["whole", "lines since"])
def test_a_read_that_another_writers_save_overtakes_loses_none_of_what_the_save_folded(tmp_path: Path, read):
    """Two processes of one run (a journal each on one store). The first journals a's update (attempt 1, in doubt).
    The second reads the run while the first folds its log into a new snapshot and goes on logging: the second must
    still see a's attempt, or, holding a's lock next, it would start attempt 1 again. `whole`: a read of snapshot and
    log; `lines since`: a refresh that reads only the log's lines past those it read last."""
    from fluxfleet.runstate.local import LocalStore

    legs = Legs(tmp_path, fleet(stage("dev", ["a", "b"])))
    first = Journal.create(
        LocalStore(tmp_path / "runs"), new_run(legs.fleet, Selection(), legs.clock.now(), run_id=RUN)
    )
    first.update(legs.clock.now(), "b", message="")  # a log before the second reads, for its read of `lines since`
    second_store = LocalStore(tmp_path / "runs")
    second = Journal.load(second_store, RUN)
    if read == "whole":
        second._seen = dataclasses.replace(second._seen, snapshot=None)  # as after a run-level change: read whole
    first.update(
        legs.clock.now(), "a", state=StackState.running, attempts=1, update_id=f"fluxfleet rollout {RUN}: a #1"
    )
    real_read = second_store.read

    def read_while_the_first_saves(name, **options):
        if name.endswith(".log") and first.store.head(f"{RUN}.log") is not None:  # once: the save deletes the log
            first.save()
            first.update(legs.clock.now(), "b", message="the first goes on: its change begins a new log")
            first.update(legs.clock.now(), "b", message="and another")
        return real_read(name, **options)

    second_store.read = read_while_the_first_saves  # type: ignore[method-assign]
    second.refresh()
    entry = second.record.stacks["a"]
    assert (entry.state, entry.attempts, entry.update_id) == (StackState.running, 1, f"fluxfleet rollout {RUN}: a #1")
    assert second.record.stacks["b"].message == "and another"
