"""The rollout's schedule over the fake runner and a fake clock: order, concurrency, one operation per cluster,
failure budget and halt, approval, bake time, resume after a crash at every step, and Ctrl-C."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from fluxfleet.azure.status import AzureError
from fluxfleet.rollout.gate import FluxHealthGate
from fluxfleet.rollout.journal import Journal, RunStatus, StackState, history
from fluxfleet.runstate.local import FileLock, LocalStore
from fluxfleet.rollout.orchestrator import Observer, Rollout, Selection, estimate, new_run
from fluxfleet.runstate.store import STACK_LOCK_WAIT
from fluxfleet.runner import OperationResult, ResourceChange, RunnerError, UpdateRecord
from fluxfleet.simulation import FakeClock, FakeRunner
from modules.spec import Fleet, GateSpec, Stage, StackSpec, parse_spec
from tests.conftest import BASE_STACK
from tests.fluxfleet.rollout.test_gate import FakeFlux, compliant

WALL = 0.01  # each fake update really takes this long, so that concurrent updates really overlap


def arc_spec(cluster: str) -> StackSpec:
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"] = {"kind": "arc", "name": cluster, "resourceGroup": "rg-edge"}
    return parse_spec(raw, file=f"Pulumi.{cluster}.yaml")


def spec(cluster: str) -> StackSpec:
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"]["name"] = cluster
    return parse_spec(raw, file=f"Pulumi.{cluster}.yaml")


def stage(name: str, stacks: list[str], concurrency: int = 1, failures: int = 0, wait: int = 0, approval=False):
    return Stage(name, tuple(stacks), concurrency, failures, wait, approval)


def fleet(*stages: Stage) -> Fleet:
    return Fleet("stacks/fleet.yaml", GateSpec(), tuple(stages), ())


class Harness:
    """A run on disk in tmp_path with the fake runner and clock; `start` begins it, `resume` continues it."""

    def __init__(self, tmp_path: Path, the_fleet: Fleet, clusters: dict[str, str] | None = None, **runner_options):
        self.runs = tmp_path / "runs"
        self.fleet = the_fleet
        names = [name for s in the_fleet.stages for name in s.stacks]
        self.clusters = clusters or {name: name for name in names}
        self.specs = {name: spec(self.clusters[name]) for name in names}
        self.clock = FakeClock()
        runner_options.setdefault("default_wall_seconds", WALL)
        self.runner = FakeRunner(self.clock, cluster_of=self.clusters.__getitem__, **runner_options)
        self.run_id: str | None = None

    def rollout(self, journal: Journal, **options) -> Rollout:
        options.setdefault("subscription_of", lambda spec: "sub")
        return Rollout(journal, self.specs, self.runner, self.clock, **options)

    def start(self, selection: Selection | None = None, approve=(), **options) -> RunStatus:
        record = new_run(self.fleet, selection or Selection(), self.clock.now())
        self.run_id = record.run_id
        return self.rollout(Journal.create(self.runs, record), **options).run(approve)

    def resume(self, approve=(), **options) -> RunStatus:
        return self.rollout(Journal.load(self.runs, self.run_id), **options).run(approve)

    def states(self) -> dict[str, str]:
        return {name: entry.state.value for name, entry in Journal.load(self.runs, self.run_id).record.stacks.items()}

    def record(self):
        return Journal.load(self.runs, self.run_id).record


# --------------------------------------------------------------------------------------------- order and concurrency


def test_stages_run_in_order_and_every_stack_once(tmp_path):
    h = Harness(tmp_path, fleet(stage("canary", ["a"]), stage("wave", ["b", "c", "d"], concurrency=3)))
    assert h.start() is RunStatus.done
    assert h.runner.started[0] == "a" and set(h.runner.started[1:]) == {"b", "c", "d"}
    assert set(h.runner.applied.values()) == {1}
    assert set(h.states().values()) == {"succeeded"}


def test_concurrency_is_used_and_never_exceeded(tmp_path):
    names = [f"s{i:02d}" for i in range(12)]
    h = Harness(tmp_path, fleet(stage("wave", names, concurrency=4)), default_wall_seconds=0.03)
    assert h.start() is RunStatus.done
    assert h.runner.max_in_flight == 4


def test_command_line_caps_concurrency_and_selects_stacks(tmp_path):
    names = [f"edge-{i}" for i in range(6)] + ["prod-1"]
    h = Harness(tmp_path, fleet(stage("edge", names[:6], concurrency=6), stage("prod", ["prod-1"])))
    assert h.start(Selection(stacks=("edge-*",), max_concurrency=2)) is RunStatus.done
    assert h.runner.max_in_flight == 2
    assert "prod-1" not in h.runner.applied and "prod-1" not in h.states()


def test_never_two_operations_on_one_cluster(tmp_path):
    # Two stacks target one cluster (say, a platform stack and an apps stack): they never overlap.
    clusters = {"a": "shared", "b": "shared", "c": "c", "d": "d"}
    h = Harness(
        tmp_path, fleet(stage("wave", ["a", "b", "c", "d"], concurrency=4)), clusters, default_wall_seconds=0.03
    )
    assert h.start() is RunStatus.done
    assert h.runner.cluster_overlaps == []
    assert h.runner.max_in_flight == 3


# --------------------------------------------------------------------------------------------- failure budget


def test_past_the_failure_budget_the_run_halts_and_touches_no_later_stage(tmp_path):
    the_fleet = fleet(stage("wave", ["a", "b", "c", "d", "e"], failures=1), stage("prod", ["p"]))
    h = Harness(tmp_path, the_fleet, failing={"a": "boom: quota exceeded", "b": "boom: conflict"})
    assert h.start() is RunStatus.halted
    assert h.states() == {"a": "failed", "b": "failed", "c": "skipped", "d": "skipped", "e": "skipped", "p": "pending"}
    assert h.runner.started == ["a", "b"]
    record = h.record()
    assert record.reason == "stage wave: 2 stack(s) failed, more than its maxFailures 1"
    assert record.stacks["a"].message == "boom: quota exceeded"


def test_in_flight_stacks_finish_when_the_run_halts(tmp_path):
    h = Harness(
        tmp_path,
        fleet(stage("wave", ["a", "b", "c", "d"], concurrency=2)),
        failing={"a": "boom"},
        wall_seconds={"a": 0.0, "b": 0.1},
    )

    def b_ends_once_a_failed(stack: str) -> None:  # b in flight when a fails, however slow a's thread is
        deadline = time.monotonic() + 10
        while stack == "b" and h.states()["a"] != "failed" and time.monotonic() < deadline:
            time.sleep(0.01)

    h.runner.on_up = b_ends_once_a_failed
    assert h.start() is RunStatus.halted
    states = h.states()
    assert states["a"] == "failed" and states["b"] == "succeeded"  # b was in flight: it ran to its end
    assert states["c"] == "skipped" and states["d"] == "skipped"


def test_failures_within_the_budget_do_not_halt_but_fail_the_run_summary(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b", "c"], failures=1), stage("prod", ["p"])), failing={"b": "x"})
    assert h.start() is RunStatus.done
    assert h.states() == {"a": "succeeded", "b": "failed", "c": "succeeded", "p": "succeeded"}


def test_resume_retries_failed_and_skipped_stacks_but_never_reapplies_a_success(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b", "c"])), failing={"b": "x"})
    assert h.start() is RunStatus.halted
    h.runner.failing = {}
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1, "b": 2, "c": 1}


# --------------------------------------------------------------------------------------------- approval and bake time


def test_approval_stops_before_the_stage_until_approved(tmp_path):
    h = Harness(tmp_path, fleet(stage("staging", ["s"]), stage("production", ["p"], approval=True)))
    assert h.start() is RunStatus.awaiting_approval
    assert "p" not in h.runner.applied
    assert (
        h.record().reason
        == f"stage production needs approval: fluxfleet rollout --resume {h.run_id} --approve production"
    )
    assert h.resume() is RunStatus.awaiting_approval  # resuming alone approves nothing
    assert h.resume(approve=("production",)) is RunStatus.done
    assert h.runner.applied == {"s": 1, "p": 1}


def test_bake_time_between_stages_and_not_after_the_last(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"], wait=1800), stage("two", ["b"], wait=600)))
    assert h.start() is RunStatus.done
    assert h.clock.sleeps == [1800]


def test_bake_time_left_is_kept_across_an_interruption(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"], wait=1800), stage("two", ["b"])))

    def ctrl_c_1300s_into_the_bake(seconds, stop=None):
        h.clock.advance(1300)
        return True

    real_sleep, h.clock.sleep = h.clock.sleep, ctrl_c_1300s_into_the_bake
    assert h.start() is RunStatus.interrupted
    assert h.record().reason == "interrupted while baking after stage one"
    h.clock.sleep = real_sleep
    assert h.resume() is RunStatus.done
    assert h.clock.sleeps == [500]  # only what was left
    assert h.runner.applied == {"a": 1, "b": 1}


# --------------------------------------------------------------------------------------------- crash and resume


class Crash(BaseException):
    """The orchestrator process dying (not an error it handles)."""


def crash_after_writes(monkeypatch, count: int) -> dict[str, int]:
    """Make the Nth write to the run-state store (a change appended to the log, a snapshot, a log folded and
    deleted) the last the process does; returns the count of writes so far."""
    writes = {"n": 0}
    for method in ("append", "write", "delete"):
        real = getattr(LocalStore, method)

        def write_then_maybe_crash(self, *args, real=real, **kwargs):
            result = real(self, *args, **kwargs)
            writes["n"] += 1
            if writes["n"] == count:
                raise Crash
            return result

        monkeypatch.setattr(LocalStore, method, write_then_maybe_crash)
    return writes


# Of the run below: the new run's snapshot; start (a change, then the log folded: snapshot and log deleted);
# 3 changes per stack (running, gating, succeeded); the log folded after each stage; done (a change, folded).
JOURNAL_WRITES = 1 + 3 + 3 * 4 + 2 * 2 + 3


def test_the_crash_points_are_every_write_of_a_run(tmp_path, monkeypatch):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"]), stage("two", ["c", "d"])))
    writes = crash_after_writes(monkeypatch, 0)  # never crashes: counts
    assert h.start() is RunStatus.done
    assert writes["n"] == JOURNAL_WRITES


@pytest.mark.parametrize("crash_after", range(1, JOURNAL_WRITES + 1))
def test_resume_after_a_crash_at_any_journal_write_applies_each_stack_exactly_once(tmp_path, monkeypatch, crash_after):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"]), stage("two", ["c", "d"])))
    with monkeypatch.context() as patched:
        crash_after_writes(patched, crash_after)
        with pytest.raises(Crash):
            h.start()
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert set(h.states().values()) == {"succeeded"}


def test_a_torn_last_line_of_the_log_is_a_change_never_made(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    h.run_id = record.run_id
    journal = Journal.create(h.runs, record)
    journal.update(h.clock.now(), "a", message="first")
    with open(h.runs / f"{h.run_id}.log", "a") as log:
        log.write('{"stack": "a", "set": {"state": "succ')  # the process died here
    assert Journal.load(h.runs, h.run_id).record.stacks["a"].message == "first"
    assert h.resume() is RunStatus.done and h.runner.applied == {"a": 1}
    assert h.states() == {"a": "succeeded"}  # what the resumed run wrote is read back whole


def test_an_update_still_in_progress_in_the_backend_is_never_applied_again(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    h.runner.on_up = lambda stack: (_ for _ in ()).throw(Crash())  # die inside the update
    with pytest.raises(Crash):
        h.start()
    h.runner.on_up = None
    [update] = h.runner.history("a", 10)
    assert update.result == "in-progress" and update.message == f"fluxfleet rollout {h.run_id}: a #1"
    for _ in range(2):  # every resume asks the backend again; none applies the stack a second time
        assert h.resume() is RunStatus.halted
        assert h.runner.applied == {"a": 1}
        message = h.record().stacks["a"].message
        assert message == (
            "the interrupted update is still in progress in the Pulumi backend: wait for it, or if no `pulumi` runs "
            "it any more, run `pulumi cancel -s a` and `pulumi refresh -s a`, then resume"
        )
    h.runner.updates["a"] = [dataclasses.replace(update, result="succeeded", ended=h.clock.now())]
    h.clock.advance(600)
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1}
    assert h.record().stacks["a"].message == "updated"
    assert h.record().stacks["a"].gated_at == h.clock.now().isoformat()  # its gate began once the backend said so


def test_an_interrupted_update_that_failed_is_applied_again_on_resume(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    h.runner.on_up = lambda stack: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        h.start()
    h.runner.on_up = None
    [update] = h.runner.history("a", 10)
    h.runner.updates["a"] = [dataclasses.replace(update, result="failed", ended=h.clock.now())]
    assert h.resume() is RunStatus.halted
    assert h.record().stacks["a"].message == "the interrupted update failed: see `pulumi stack history -s a`"
    assert h.resume() is RunStatus.done  # its outcome is known: a resume retries it as it retries any failure
    assert h.runner.applied == {"a": 2}


def test_an_update_of_another_run_in_the_history_is_not_taken_for_this_runs(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    h.run_id = record.run_id
    record.stacks["a"].state = StackState.running
    record.stacks["a"].update_id = f"fluxfleet rollout {record.run_id}: a #1"  # died before `pulumi up` started
    Journal.create(h.runs, record)
    h.runner.updates["a"] = [UpdateRecord("update", "succeeded", h.clock.now(), h.clock.now(), "someone else")]
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1}


def test_a_stack_another_process_is_updating_waits_for_it_and_is_failed_unstarted_past_the_limit(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"], failures=1)))
    orphan = FileLock(h.runs / "locks" / "a.lock")  # an update of `a` outliving a killed run still holds this
    assert orphan.try_acquire("process 4242 (fluxfleet rollout 20260101T000000Z-0000)")
    assert h.start() is RunStatus.done
    assert h.runner.applied == {"b": 1}
    assert h.record().stacks["a"].message == (
        "not started: process 4242 (fluxfleet rollout 20260101T000000Z-0000) still holds the stack's update lock "
        f"(locks/a in {h.runs})"
    )
    assert h.clock.now() - FakeClock().now() >= STACK_LOCK_WAIT  # it waited that long first
    orphan.release()
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1, "b": 1}


def test_ctrl_c_while_a_stack_waits_for_another_processs_update_leaves_it_untouched(tmp_path):
    stop = threading.Event()
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    orphan = FileLock(h.runs / "locks" / "a.lock")
    assert orphan.try_acquire("process 4242 (fluxfleet rollout 20260101T000000Z-0000)")

    class CtrlCWhileWaiting(Observer):
        def stack_progress(self, stack, line):
            assert line == "waiting: process 4242 (fluxfleet rollout 20260101T000000Z-0000) is updating this stack"
            stop.set()

    assert h.start(stop=stop, observer=CtrlCWhileWaiting()) is RunStatus.interrupted
    assert h.states() == {"a": "pending"} and h.runner.applied == {}


def test_the_update_carries_its_id_and_holds_the_stacks_lock(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    seen = {}

    def up(stack, *, message=None, lock_fd=None, **options):
        seen.update(message=message, held=not FileLock(h.runs / "locks" / "a.lock").try_acquire("test"))
        os.fstat(lock_fd)  # an open descriptor the update's process can keep
        return OperationResult(stack, ok=True)

    h.runner.up = up
    assert h.start() is RunStatus.done
    assert seen == {"message": f"fluxfleet rollout {h.run_id}: a #1", "held": True}
    assert FileLock(h.runs / "locks" / "a.lock").try_acquire("test")  # released after the update


def test_pending_operations_fail_the_stack_with_the_refresh_command(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    h.run_id = record.run_id
    record.stacks["a"].state = StackState.running  # the journal says running; the backend never saw an update
    record.stacks["a"].started_at = h.clock.now().isoformat()
    Journal.create(h.runs, record)
    h.runner.pending["a"] = ["urn:pulumi:a::fluxfleet::azure-native:containerservice:ManagedCluster::aks-a"]
    assert h.resume() is RunStatus.halted
    assert h.runner.applied == {}
    assert "pulumi refresh -s a --import-pending-creates" in h.record().stacks["a"].message


def test_a_failed_update_that_left_pending_operations_is_retried_only_after_a_refresh(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])), failing={"a": "error: the provider crashed"})
    assert h.start() is RunStatus.halted
    h.runner.failing = {}
    h.runner.pending["a"] = ["urn:pulumi:a::fluxfleet::azure-native:kubernetesconfiguration:Extension::flux"]
    assert h.resume() is RunStatus.halted
    assert h.runner.applied == {"a": 1}
    assert "pulumi refresh -s a --import-pending-creates" in h.record().stacks["a"].message
    h.runner.pending["a"] = []  # `pulumi refresh` ran
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 2}


# --------------------------------------------------------------------------------------------- Ctrl-C


def test_first_ctrl_c_stops_scheduling_and_lets_running_updates_end(tmp_path):
    stop = threading.Event()
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b", "c", "d"], concurrency=2)), default_wall_seconds=0.05)
    h.runner.on_up = lambda stack: stop.set() if stack == "b" else None
    assert h.start(stop=stop) is RunStatus.interrupted
    assert h.states() == {"a": "succeeded", "b": "succeeded", "c": "pending", "d": "pending"}
    h.runner.on_up = None
    assert h.resume() is RunStatus.done
    assert h.runner.applied == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_second_ctrl_c_cancels_running_updates(tmp_path):
    stop, cancel = threading.Event(), threading.Event()
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b"], concurrency=1)), default_wall_seconds=30)

    def ctrl_c_twice(stack):
        stop.set()
        cancel.set()

    h.runner.on_up = ctrl_c_twice
    assert h.start(stop=stop, cancel=cancel) is RunStatus.halted  # the cancelled update failed: budget 0
    assert h.states() == {"a": "failed", "b": "skipped"}
    assert h.record().stacks["a"].message == "cancelled"


# --------------------------------------------------------------------------------------------- health gate


def test_a_stack_is_done_only_when_flux_is_healthy(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b"], failures=1)))
    flux = FakeFlux(
        lambda cluster: (
            [compliant(when=h.clock.now())] if cluster == "a" else [compliant("Non-Compliant", h.clock.now())]
        )
    )
    gate = FluxHealthGate(flux, h.clock, timeout=600, poll_interval=30)
    assert h.start(gate=gate) is RunStatus.done
    record = h.record()
    assert record.stacks["a"].state is StackState.succeeded
    assert record.stacks["a"].message == "1 Flux configuration(s) Compliant"
    assert record.stacks["b"].state is StackState.failed
    assert record.stacks["b"].message.startswith("health gate: demo: Non-Compliant: Kustomization demo-apps:")


def test_the_journal_says_when_a_stacks_update_ended_and_its_gate_began(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a"])))
    h.runner.on_up = lambda stack: h.clock.advance(120)  # the update takes two minutes
    began = h.clock.now()
    reads = []

    def flux(cluster):  # Flux reports on the new revision at the third read, a minute into the gate
        reads.append(cluster)
        return [compliant(when=h.clock.now() if len(reads) >= 3 else began - timedelta(hours=1))]

    gate = FluxHealthGate(FakeFlux(flux), h.clock, timeout=600, poll_interval=30)
    assert h.start(gate=gate) is RunStatus.done
    a = h.record().stacks["a"]
    assert (a.started_at, a.gated_at, a.ended_at) == tuple(
        (began + timedelta(seconds=seconds)).isoformat() for seconds in (0, 120, 180)
    )


# --------------------------------------------------------------------------------------------- journal and estimates


def test_journal_is_valid_json_after_every_write_and_leaves_no_temporary_files(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b"], concurrency=2)))
    assert h.start() is RunStatus.done
    [path] = list(h.runs.glob("*.json"))
    assert not list(h.runs.glob(".*"))
    data = json.loads(path.read_text())
    assert data["status"] == "done" and data["stacks"]["a"]["state"] == "succeeded"


def test_resume_of_an_unknown_run_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"runs/20260101T000000Z-dead\.json: no such run"):
        Journal.load(tmp_path / "runs", "20260101T000000Z-dead")
    with pytest.raises(ValueError, match=r"runs/20260101T000000Z-dead\.json: no such run"):
        Journal.load(tmp_path / "runs", "20260101T000000Z-dead")


def test_estimates_use_earlier_runs(tmp_path):
    h = Harness(tmp_path, fleet(stage("wave", ["a", "b", "c"], concurrency=2, wait=300), stage("prod", ["p"])))
    h.start()
    durations = history(h.runs)
    assert set(durations) == {"a", "b", "c", "p"}
    plan = Selection().plan(h.fleet)
    [wave, prod] = estimate(plan, {"a": [100.0], "b": [300.0], "c": [200.0]})
    assert wave.seconds == 300.0 and wave.wait_after == 300  # max(600 / 2, 300)
    assert prod.seconds == 200.0 and prod.wait_after == 0  # p unknown: the fleet's median


def test_an_unreadable_pulumi_state_fails_the_interrupted_stack_instead_of_guessing(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    h.run_id = record.run_id
    record.stacks["a"].state = StackState.running
    record.stacks["a"].started_at = h.clock.now().isoformat()
    Journal.create(h.runs, record)

    def backend_down(stack):
        raise RunnerError("a: error: failed to load checkpoint: blob not found")

    h.runner.history = lambda stack, limit: backend_down(stack)
    assert h.resume() is RunStatus.halted
    assert h.runner.applied == {}
    assert h.record().stacks["a"].message == (
        "cannot tell what the interrupted update did: a: error: failed to load checkpoint: blob not found"
    )


def test_an_offline_arc_cluster_is_deferred_not_failed_and_resume_only_regates_it(tmp_path):
    h = Harness(tmp_path, fleet(stage("edge", ["store-1", "store-2"], failures=0), stage("next", ["z"])))
    h.specs["store-1"] = arc_spec("store-1")
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())], connectivity="Offline")
    gate = FluxHealthGate(flux, h.clock, timeout=600, poll_interval=30)
    assert h.start(gate=gate) is RunStatus.done  # budget 0, yet the offline store did not halt the run
    assert h.states() == {"store-1": "deferred", "store-2": "succeeded", "z": "succeeded"}
    assert h.record().stacks["store-1"].message.startswith("Arc cluster Offline")
    flux.connectivity = "Connected"
    assert h.resume(gate=gate) is RunStatus.done
    assert h.states()["store-1"] == "succeeded"
    assert h.runner.applied == {"store-1": 1, "store-2": 1, "z": 1}  # the gate ran again, the update did not


CLUSTER_REPLACEMENT = OperationResult(
    "a",
    ok=True,
    changes=(
        ResourceChange(
            "urn:pulumi:a::fluxfleet::fluxfleet:cluster:AksCluster$azure-native:containerservice:ManagedCluster::aks-a",
            "azure-native:containerservice:ManagedCluster",
            "aks-a",
            "replace",
            ("networkProfile",),
        ),
    ),
)


def test_an_update_that_would_replace_the_cluster_is_refused_before_anything_is_applied(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"], failures=1)))
    h.runner.previews["a"] = CLUSTER_REPLACEMENT
    assert h.start() is RunStatus.done
    assert h.runner.applied == {"b": 1}
    assert h.record().stacks["a"].message == (
        "refused: the update would replace cluster aks-a (networkProfile); apply it by hand if that is intended"
    )


def test_refusal_can_be_turned_off_in_the_fleet(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    h.runner.previews["a"] = CLUSTER_REPLACEMENT
    assert h.start(refuse_cluster_replacement=False) is RunStatus.done
    assert h.runner.applied == {"a": 1}


def flux_replacement(stack: str, type_: str, name: str, op: str, diffs: tuple[str, ...]) -> OperationResult:
    urn = f"urn:pulumi:{stack}::fluxfleet::fluxfleet:flux:Configuration${type_}::{name}"
    return OperationResult(stack, ok=True, changes=(ResourceChange(urn, type_, name, op, diffs),))


FLUX = "azure-native:kubernetesconfiguration:FluxConfiguration"
EXTENSION = "azure-native:kubernetesconfiguration:Extension"


def test_an_update_that_would_replace_flux_is_refused_naming_the_property(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b", "c"], failures=3)))
    h.runner.previews["a"] = flux_replacement("a", FLUX, "platform", "replace", ("namespace",))
    h.runner.previews["b"] = flux_replacement("b", EXTENSION, "flux", "delete-replaced", ("extensionType", "scope"))
    h.runner.previews["c"] = flux_replacement("c", FLUX, "platform", "update", ("kustomizations",))  # not destructive
    assert h.start() is RunStatus.done
    assert h.runner.applied == {"c": 1}
    record = h.record()
    assert record.stacks["a"].message == (
        "refused: the update would replace Flux configuration platform (namespace): with prune on, that deletes "
        "everything Flux applied; apply it by hand if that is intended"
    )
    assert record.stacks["b"].message.startswith(
        "refused: the update would delete-replaced the Flux extension flux (extensionType, scope)"
    )


def test_flux_replacement_refusal_can_be_turned_off_on_its_own(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"], failures=1)))
    h.runner.previews["a"] = flux_replacement("a", FLUX, "platform", "replace", ("scope",))
    h.runner.previews["b"] = CLUSTER_REPLACEMENT
    assert h.start(refuse_flux_replacement=False) is RunStatus.done
    assert h.runner.applied == {"a": 1}  # the cluster replacement is still refused


def test_two_processes_of_one_run_see_each_others_changes_and_lose_none(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    first = Journal.create(h.runs, record)
    second = Journal.load(h.runs, record.run_id)
    first.update(h.clock.now(), "a", state=StackState.succeeded)
    second.update(h.clock.now(), "b", state=StackState.failed)
    second.save()  # folds both processes' lines into the snapshot
    first.update(h.clock.now(), "a", message="after the fold")
    first.refresh()
    assert first.record.stacks["b"].state is StackState.failed
    third = Journal.load(h.runs, record.run_id)
    assert (third.record.stacks["a"].state, third.record.stacks["a"].message) == (
        StackState.succeeded,
        "after the fold",
    )
    assert third.record.stacks["b"].state is StackState.failed


def test_a_run_id_is_never_a_path_and_reading_a_run_changes_nothing(tmp_path):
    runs = tmp_path / "deep" / "runs"
    outside = tmp_path / "x.json"
    outside.write_text("{}")
    for run_id in ("../../x", "../x", "/etc/passwd", "20260101T000000Z-ab12/../../x"):
        with pytest.raises(ValueError, match=r"is not a run id: a run id is a name of letters, digits"):
            Journal.load(runs, run_id)
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    journal = Journal.create(h.runs, record)
    journal.update(h.clock.now(), "a", message="logged")
    before = {path.name: path.read_bytes() for path in h.runs.iterdir() if path.is_file()}
    assert Journal.load(h.runs, record.run_id).record.stacks["a"].message == "logged"
    assert {path.name: path.read_bytes() for path in h.runs.iterdir() if path.is_file()} == before


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            '{"stack": "ghost", "set": {"state": "succeeded"}}\n',
            "line 1 of {id}.log changes stack 'ghost', which the run does not have",
        ),
        ('{"stack": "a", "set": {"shell": "rm -rf /"}}\n', "stacks.a.shell: Unexpected keyword argument"),
        ('{"stack": "a", "set": {"state": "exploded"}}\n', "stacks.a.state: Input should be"),
        (
            '{"stack": null, "set": {"stages": [{"name": "one", "stacks": ["../../etc"], "max_concurrency": 1, "max_failures": 0, "after_stage_wait": 0, "approval": false}]}}\n',
            "stages.0.stacks.0: String should match pattern",
        ),
        (
            '{"stack": null, "set": {"stages": [{"name": "one", "stacks": ["a"], "max_concurrency": 1, "max_failures": 0, "after_stage_wait": 999999999999999999999999, "approval": false}]}}\n',
            "stages.0.after_stage_wait: Input should be less than or equal to",
        ),
        ("[" * 100_000 + "\n", "not a fluxfleet run journal"),
    ],
    ids=["unknown-stack", "unknown-field", "bad-state", "stack-path", "huge-wait", "deep"],
)
def test_a_damaged_journal_is_one_line_not_a_traceback(tmp_path, damage, message):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    Journal.create(h.runs, record)
    (h.runs / f"{record.run_id}.log").write_text(damage)
    with pytest.raises(ValueError) as caught:
        Journal.load(h.runs, record.run_id)
    assert message.format(id=record.run_id) in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
    (h.runs / f"{record.run_id}.log").unlink()
    Journal.load(h.runs, record.run_id)  # a refused journal did not keep the run taken


def test_a_stack_whose_cluster_is_busy_waits_and_one_busy_too_long_fails_unstarted(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "b"], failures=1)))
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())])
    flux.cluster_states = {"a": ["Updating", "Succeeded"], "b": ["Updating"] * 30}  # a: one wait; b: busy throughout
    gate = FluxHealthGate(flux, h.clock, timeout=300, poll_interval=30)
    assert h.start(gate=gate) is RunStatus.done
    assert h.runner.applied == {"a": 1}
    assert h.record().stacks["b"].message == (
        "not started: cluster b Updating after 300s: another operation is running"
    )


def pinned(cluster: str, version: str) -> StackSpec:
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"]["name"] = cluster
    raw["flux"]["extension"] = {"autoUpgradeMinorVersion": False, "version": version}
    return parse_spec(raw, file=f"Pulumi.{cluster}.yaml")


def test_a_pin_that_would_skip_the_required_hop_fails_unstarted_and_the_others_go_on(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["old", "ready"], failures=1)))
    h.specs = {name: pinned(name, "1.23.0") for name in ("old", "ready")}
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())])
    flux.installed = {"old": "1.20.4", "ready": "1.21.0"}
    assert h.start(gate=FluxHealthGate(flux, h.clock, timeout=300, poll_interval=30)) is RunStatus.done
    assert h.runner.applied == {"ready": 1} and "old" not in h.runner.started  # nothing previewed, nothing applied
    assert h.states() == {"old": "failed", "ready": "succeeded"}
    assert h.record().stacks["old"].message == (
        "not started: installed 1.20.4; pinned 1.23.0 skips 1.21.x: upgrade to 1.21.0 first (pin version: 1.21.0, "
        "roll out, then 1.23.0)"
    )
    assert h.record().stacks["old"].update_id is None  # settled: a resume retries it, no doubt to clear


def test_the_hop_itself_and_unpinned_stacks_are_applied(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["hop", "auto"])))
    h.specs = {"hop": pinned("hop", "1.21.0"), "auto": spec("auto")}
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())])
    flux.installed = {"hop": "1.20.4", "auto": "1.19.5"}  # auto-upgrade: Azure takes the path
    assert h.start(gate=FluxHealthGate(flux, h.clock, timeout=300, poll_interval=30)) is RunStatus.done
    assert h.runner.applied == {"hop": 1, "auto": 1}


def test_the_hop_and_busy_cluster_checks_run_without_the_flux_health_gate(tmp_path):
    # fleet.yaml's `fluxCompliance: false` turns off the wait for Flux after an update, not the checks before it.
    h = Harness(tmp_path, fleet(stage("one", ["old", "busy", "ready"], failures=2)))
    h.specs = {name: pinned(name, "1.23.0") for name in ("old", "busy", "ready")}
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())])
    flux.installed = {"old": "1.20.4", "busy": "1.21.0", "ready": "1.21.0"}
    idle = flux.managed_cluster
    flux.managed_cluster = lambda sub, rg, name: dataclasses.replace(
        idle(sub, rg, name), provisioning_state="Updating" if name == "busy" else "Succeeded"
    )
    gate = FluxHealthGate(flux, h.clock, timeout=300, poll_interval=30)
    assert h.start(gate=gate, health_gate=False) is RunStatus.done
    assert h.runner.applied == {"ready": 1}
    assert h.record().stacks["old"].message.startswith("not started: installed 1.20.4; pinned 1.23.0 skips 1.21.x")
    assert h.record().stacks["busy"].message.startswith("not started: cluster busy Updating after 300s")
    assert h.states()["ready"] == "succeeded" and flux.reads == 0  # no Flux configuration read: no health gate


def test_a_pinned_stack_without_a_subscription_to_check_its_upgrade_path_in_is_not_started(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a", "auto"], failures=1)))
    h.specs = {"a": pinned("a", "1.23.0"), "auto": spec("auto")}
    gate = FluxHealthGate(FakeFlux(lambda cluster: []), h.clock, timeout=300, poll_interval=30)
    assert h.start(gate=gate, health_gate=False, subscription_of=lambda spec: None) is RunStatus.done
    assert h.runner.applied == {"auto": 1}
    assert h.record().stacks["a"].message == (
        "not started: the extension's upgrade path cannot be checked: no Azure subscription for stack a: set "
        "fluxfleet:cluster.subscriptionId in its stack file, set AZURE_SUBSCRIPTION_ID, or choose one with "
        "`az account set --subscription ID`"
    )


def test_a_pinned_stack_whose_installed_version_cannot_be_read_is_not_started(tmp_path):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    h.specs = {"a": pinned("a", "1.23.0")}
    flux = FakeFlux(lambda cluster: [compliant(when=h.clock.now())])
    flux.installed = {"a": AzureError("extensions of a: 403 for ci@contoso.com")}
    assert h.start(gate=FluxHealthGate(flux, h.clock, timeout=300, poll_interval=30)) is RunStatus.halted
    assert h.runner.applied == {}
    assert h.record().stacks["a"].message == (
        "not started: cannot read the installed microsoft.flux version to check the upgrade path: "
        "extensions of a: 403 for ci@contoso.com"
    )


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_journal_file_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path, kind):
    h = Harness(tmp_path, fleet(stage("one", ["a"])))
    record = new_run(h.fleet, Selection(), h.clock.now())
    Journal.create(h.runs, record)
    log = h.runs / f"{record.run_id}.log"
    if kind == "fifo":
        os.mkfifo(log)  # a read would wait for a writer forever
    elif kind == "device":
        log.symlink_to("/dev/zero")  # a read would never end
    else:
        log.mkdir()
    with pytest.raises(ValueError, match=r"not a fluxfleet run journal \((not a regular file|cannot read: .*)\)"):
        Journal.load(h.runs, record.run_id)
    (h.runs / "other.json").symlink_to("/dev/zero")
    assert history(h.runs) == {}  # estimates skip what is not a journal
