"""The rollout's schedule beyond order and concurrency: budgets that scale (`maxFailures: 10%`, `minSuccess`),
soaks that watch a stage's stacks through the fleet read after it, and deployment windows that hold a stack's start.
Over the fake runner, the fake clock and recorded-shape Flux statuses."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fluxfleet.azure.fleet_graph import ClusterSnapshot, FleetSnapshot
from fluxfleet.rollout.gate import FleetFluxReads, FluxHealthGate
from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from fluxfleet.rollout.orchestrator import Observer, Selection, estimate, window_start
from fluxfleet.rollout.report import render_summary
from fluxfleet.runstate.local import FileLock
from modules.spec import PinSpec, Stage, parse_spec
from modules.spec.windows import WindowSpec
from tests.conftest import BASE_STACK
from tests.fluxfleet.rollout.test_gate import FakeFlux, compliant
from tests.fluxfleet.rollout.test_orchestrator import Harness, fleet

BEFORE, PROMOTED = "v1.3.0", "v1.4.0"
SOAK = 1800  # afterStageWait: 30 minutes
START = datetime(2026, 1, 1, tzinfo=UTC)  # FakeClock's; a Thursday


def pinned_spec(cluster: str, windows: list[dict] | None = None):
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"]["name"] = cluster
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["branch"]
    git["tag"] = PROMOTED
    if windows is not None:
        raw["windows"] = windows
    return parse_spec(raw, file=f"Pulumi.{cluster}.yaml")


class Graph:
    """Resource Graph's stand-in: every cluster asked for, from the same answers as ARM (no lag)."""

    def __init__(self, answer):
        self.answer, self.reads, self.sizes = answer, 0, []

    def read(self, targets):
        self.reads += 1
        self.sizes.append(len(targets))
        clusters = {
            t: ClusterSnapshot(t, True, "graph", flux_configurations=tuple(self.answer(t.name))) for t in targets
        }
        return FleetSnapshot(clusters, (), {}, 1, START)


class Soak:
    """A stage `wave` promoted from BEFORE to PROMOTED that soaks 30 minutes before `prod`; a stack of `turns` goes
    Non-Compliant at its time (after its gate passed), and is Compliant again once rolled back."""

    def __init__(self, tmp_path: Path, wave: list[str], failures: int | str = 0, rollback: bool = True):
        pins = {"demo": PinSpec(tag=PROMOTED)}
        wave_stage = Stage("wave", tuple(wave), 1, failures, SOAK, False, pins, rollback)
        self.h = Harness(tmp_path, fleet(wave_stage, Stage("prod", ("p",), 1, 0, 0, False)))
        for name in self.h.specs:
            self.h.specs[name] = pinned_spec(name)
            self.h.runner.stack_outputs[name] = {"fluxConfigurationRefs": {"demo": {"tag": BEFORE}}}
        self.turns: dict[str, datetime] = {}
        self.graph = Graph(self._flux)
        self.gate = FluxHealthGate(FakeFlux(self._flux), self.h.clock, 600, 60, FleetFluxReads(self.graph))
        self.findings: list[tuple[str, str]] = []

    def _flux(self, cluster: str):
        now = self.h.clock.now()
        rolled_back = cluster in [stack for stack, _ in self.h.runner.rollbacks]
        bad = cluster in self.turns and now >= self.turns[cluster] and not rolled_back
        tag = BEFORE if rolled_back else PROMOTED
        return [compliant("Non-Compliant" if bad else "Compliant", now, commit=f"{tag}/0ba6f0d2e7ac")]

    def start(self, **options) -> RunStatus:
        test = self

        class Findings(Observer):
            def soak_finding(self, stack: str, finding: str) -> None:
                test.findings.append((stack, finding))

        options.setdefault("observer", Findings())
        return self.h.start(gate=self.gate, **options)


# --------------------------------------------------------------------------------------------- soaks that watch


def test_a_soak_catches_a_stack_turning_unhealthy_and_rolls_it_back(tmp_path):
    soak = Soak(tmp_path, ["a", "b", "c"], failures=1)
    soak.turns["b"] = START + timedelta(minutes=10)  # well after its gate passed, inside the 30-minute soak
    assert soak.start() is RunStatus.done  # one failure: within maxFailures 1, so prod goes on
    record = soak.h.record()
    b = record.stacks["b"]
    assert b.state is StackState.failed and b.message.startswith("soak: turned unhealthy at 2026-01-01T00:1")
    assert "demo: " in b.message and "Non-Compliant" in b.message  # the reason the Flux status gave
    assert b.rollback is not None and b.rollback.state is StackState.succeeded
    assert soak.h.runner.rollbacks == [("b", {"demo": {"tag": BEFORE}})]
    assert [stack for stack, _ in soak.findings] == ["b"]
    assert record.stacks["a"].soak.startswith("healthy throughout")
    assert record.stacks["c"].soak.startswith("healthy throughout")
    wave = record.stages[0]
    assert wave.soak_ended and wave.soaked_until is not None and wave.soaked_until >= wave.bake_until
    # prod started once the soak was over, never before
    [p_update] = soak.h.runner.updates["p"]
    assert p_update.started >= datetime.fromisoformat(wave.bake_until)
    # the stage's stacks in one fleet read a poll: ~31 looks of 3 (then 2) stacks, never a read per stack
    assert soak.graph.reads <= SOAK // 60 + 2 and max(soak.graph.sizes) == 3
    text = render_summary(record, "text")
    assert "soak: turned unhealthy at" in text and "healthy throughout" in text
    markdown = render_summary(record, "markdown")
    assert "## Soaks" in markdown and "b: turned unhealthy at" in markdown
    json_stack = {
        s["stack"]: s for s in __import__("json").loads(render_summary(record, "json"))["stages"][0]["stacks"]
    }
    assert json_stack["b"]["soak"].startswith("turned unhealthy at") and json_stack["a"]["soak"].startswith("healthy")


def test_a_soak_past_the_budget_halts_the_run_before_the_next_stage(tmp_path):
    soak = Soak(tmp_path, ["a", "b"], failures=0, rollback=False)
    soak.turns["a"] = START + timedelta(minutes=5)
    assert soak.start() is RunStatus.halted
    record = soak.h.record()
    assert record.reason.startswith("stage wave (in its soak): 1 stack(s) failed, more than its maxFailures 0")
    assert "p" not in soak.h.runner.applied and record.stacks["p"].state is StackState.pending
    assert soak.h.runner.rollbacks == []  # the stage does not roll back


def test_a_soak_interrupted_is_resumed_where_it_was_with_what_it_saw(tmp_path):
    soak = Soak(tmp_path, ["a", "b"], failures=1)
    soak.turns["a"] = START + timedelta(minutes=3)
    real_sleep = soak.h.clock.sleep
    stop_at = START + timedelta(minutes=15)

    def ctrl_c_in_the_soak(seconds, stop=None):
        if soak.h.clock.now() + timedelta(seconds=seconds) < stop_at:
            return real_sleep(seconds, stop)
        return True

    soak.h.clock.sleep = ctrl_c_in_the_soak
    assert soak.start() is RunStatus.interrupted
    record = soak.h.record()
    bake_until = record.stages[0].bake_until
    assert record.stacks["a"].soak.startswith("turned unhealthy") and not record.stages[0].soak_ended
    assert record.stages[0].soaked_until is not None
    soak.h.clock.sleep = real_sleep
    assert soak.h.resume(gate=soak.gate) is RunStatus.done
    record = soak.h.record()
    assert record.stages[0].bake_until == bake_until  # the soak's end is the one first recorded
    assert record.stacks["b"].soak.startswith("healthy throughout")
    assert soak.h.runner.rollbacks == [("a", {"demo": {"tag": BEFORE}})]  # once, across the resume


# --------------------------------------------------------------------------------------------- budgets that scale


def test_a_percentage_budget_is_rounded_down_from_the_stages_stacks(tmp_path):
    names = [f"s{i:02d}" for i in range(15)]  # 10% of 15: 1.5, so 1
    h = Harness(tmp_path, fleet(Stage("wave", tuple(names), 1, "10%", 0, False), Stage("prod", ("p",), 1, 0, 0, False)))
    h.runner.failing = {"s00": "boom", "s01": "boom"}
    assert h.start() is RunStatus.halted
    record = h.record()
    assert record.stages[0].max_failures == 1 and record.stages[0].max_failures_percent == "10%"
    assert record.reason == "stage wave: 2 stack(s) failed, more than its maxFailures 1"
    assert "maxFailures 1 (10% of 15, rounded down)" in record.stages[0].budget_text


def test_a_stage_under_its_min_success_fails_though_within_max_failures(tmp_path):
    names = [f"s{i}" for i in range(10)]  # minSuccess 95% of 10: all 10 must succeed
    wave = Stage("wave", tuple(names), 1, 2, 0, False, min_success="95%")
    h = Harness(tmp_path, fleet(wave, Stage("prod", ("p",), 1, 0, 0, False)))
    h.runner.failing = {"s9": "boom"}  # one failure: within maxFailures 2
    assert h.start() is RunStatus.halted
    record = h.record()
    assert record.stages[0].min_succeeded == 10
    assert record.reason == "stage wave: 9 of 10 stack(s) succeeded, under its minSuccess 95% (10)"
    assert "p" not in h.runner.applied


def test_a_min_success_out_of_reach_starts_no_more_stacks(tmp_path):
    names = [f"s{i}" for i in range(10)]  # 80%: 8 must succeed; 3 failed, so at most 7 can
    wave = Stage("wave", tuple(names), 1, 5, 0, False, min_success="80%")
    h = Harness(tmp_path, fleet(wave))
    h.runner.failing = {"s0": "x", "s1": "x", "s2": "x"}
    assert h.start() is RunStatus.halted
    assert h.runner.started == ["s0", "s1", "s2"]
    assert "too few stacks can still succeed for its minSuccess 80% (8 of 10)" in h.record().reason


# --------------------------------------------------------------------------------------------- deployment windows


def window(cron: str, duration: str, timezone: str = "UTC") -> WindowSpec:
    return WindowSpec.model_validate({"cron": cron, "duration": duration, "timezone": timezone})


class Waits(Observer):
    def __init__(self):
        self.waits: list[tuple[str, datetime]] = []

    def waiting_for_window(self, stack: str, opens: datetime) -> None:
        self.waits.append((stack, opens))


def test_a_window_defers_a_stack_and_an_update_started_runs_past_its_close(tmp_path):
    nightly = (window("0 22 * * *", "1h"),)  # 22:00-23:00 UTC
    h = Harness(tmp_path, fleet(Stage("wave", ("a", "b", "c"), 1, 0, 0, False, windows=nightly)))
    h.runner.on_up = lambda stack: h.clock.advance(40 * 60)  # each update takes 40 minutes
    observer = Waits()
    assert h.start(observer=observer) is RunStatus.done
    started = {name: h.runner.updates[name][0].started for name in "abc"}
    assert started["a"] == START.replace(hour=22)  # not at midnight, when the run began: at the window
    assert started["b"] == START.replace(hour=22, minute=40)  # inside the window still
    # b ended at 23:20, after the window closed: never interrupted; c waited for the next night's
    assert started["c"] == START.replace(day=2, hour=22)
    assert observer.waits[0] == ("a", START.replace(hour=22))
    assert ("c", START.replace(day=2, hour=22)) in observer.waits
    record = h.record()
    assert all(record.stacks[name].window_opens is None for name in "abc")  # started: no longer waiting


def test_a_stack_starts_only_where_its_stage_windows_and_its_own_meet(tmp_path):
    stage_windows = (window("0 20 * * *", "4h"),)  # 20:00-00:00
    h = Harness(tmp_path, fleet(Stage("wave", ("a", "b"), 1, 0, 0, False, windows=stage_windows)))
    h.specs["b"] = pinned_spec("b", windows=[{"cron": "30 23 * * *", "duration": "2h"}])  # 23:30-01:30
    assert h.start() is RunStatus.done
    assert h.runner.updates["a"][0].started == START.replace(hour=20)
    assert h.runner.updates["b"][0].started == START.replace(hour=23, minute=30)  # inside both


def test_a_run_waiting_for_a_window_journals_until_when(tmp_path):
    nightly = (window("0 22 * * 4", "4h", "Europe/Amsterdam"),)  # Thursdays
    h = Harness(tmp_path, fleet(Stage("wave", ("a",), 1, 0, 0, False, windows=nightly)))
    stopped, ctrl_c = [], threading.Event()

    def stop_at_the_first_wait(seconds, stop=None):  # Ctrl-C while it waits
        stopped.append(seconds)
        ctrl_c.set()
        return True

    h.clock.sleep = stop_at_the_first_wait
    assert h.start(stop=ctrl_c) is RunStatus.interrupted
    entry = h.record().stacks["a"]
    assert entry.state is StackState.pending and entry.window_opens == "2026-01-01T21:00:00+00:00"  # 22:00 CET
    assert entry.message.startswith("waiting for its deployment window: opens 2026-01-01T21:00:00+00:00")
    assert "(stage: 0 22 * * 4 for 4h (Europe/Amsterdam))" in entry.message
    assert stopped == [21 * 3600]


def test_windows_that_never_meet_fail_the_stack_without_starting_it(tmp_path):
    h = Harness(tmp_path, fleet(Stage("wave", ("a",), 1, 0, 0, False, windows=(window("0 1 * * *", "1h"),))))
    h.specs["a"] = pinned_spec("a", windows=[{"cron": "0 12 * * *", "duration": "1h"}])
    assert h.start() is RunStatus.halted
    assert "never open together within a year" in h.record().stacks["a"].message
    assert h.runner.started == []


def test_window_start_is_inside_every_set_and_the_dry_run_places_each_start():
    stage_windows = [window("0 20 * * *", "4h")]  # 20:00-00:00
    own = [window("30 23 * * *", "1h")]  # 23:30-00:30
    assert window_start(START, [stage_windows, own]) == START.replace(hour=23, minute=30)
    assert window_start(START, [[], []]) == START
    wave = Stage("wave", ("a", "b"), 1, 0, 0, False, windows=tuple(stage_windows))
    [plan] = Selection().plan(fleet(wave))
    [e] = estimate([plan], {"a": [3600.0], "b": [3600.0]}, start=START, windows_of={"b": own})
    assert e.starts == {"a": START.replace(hour=20), "b": START.replace(hour=23, minute=30)}
    assert e.seconds == (START.replace(day=2, minute=30) - START).total_seconds()  # from the run's start to b's end


def test_the_journal_keeps_a_stages_windows_and_budget(tmp_path):
    nightly = (window("0 22 * * *", "1h", "Europe/Amsterdam"),)
    h = Harness(tmp_path, fleet(Stage("wave", ("a",), 1, "50%", 0, False, min_success="50%", windows=nightly)))
    h.runner.on_up = lambda stack: None
    h.start()
    plan = Journal.load(h.runs, h.run_id).record.stages[0]
    assert plan.windows == list(nightly) and plan.min_success == "50%" and plan.min_succeeded == 1


def soak_leg(tmp_path: Path):
    """A run whose stage wave a first leg worked (only its stacks: it leaves the soak to whoever works the next
    stage), and the soak's lock held by another process of the run, as when it watches the soak."""
    soak = Soak(tmp_path, ["a", "b"], failures=1)
    assert soak.start(only=frozenset({"a", "b"})) is RunStatus.partial
    other = FileLock(soak.h.runs / "locks" / f"soak-{soak.h.run_id}-wave.lock")
    assert other.try_acquire("the other process")
    return soak, other


def test_a_soak_is_watched_once_the_other_processes_of_the_run_wait_for_what_it_records(tmp_path):
    soak, other = soak_leg(tmp_path)
    released: list[bool] = []
    real_sleep = soak.h.clock.sleep

    def the_other_process_ends_the_soak(seconds, stop=None):
        if not released:  # while it holds the soak: it watched, saw b turn, and recorded it
            journal = Journal.load(soak.h.runs, soak.h.run_id)
            now = soak.h.clock.now() + timedelta(seconds=SOAK)
            journal.update(now, "b", state=StackState.failed, soak="turned unhealthy at T: demo: Non-Compliant")
            journal.update(now, stage="wave", soaked_until=now.isoformat(), soak_ended=True)
            other.release()
            released.append(True)
        return real_sleep(seconds, stop)

    soak.h.clock.sleep = the_other_process_ends_the_soak
    reads = soak.graph.reads
    assert soak.h.resume(gate=soak.gate, only=frozenset({"p"})) is RunStatus.partial
    assert soak.graph.reads == reads  # this process never looked: the soak was the other's
    record = soak.h.record()
    assert record.stacks["p"].state is StackState.succeeded  # within maxFailures 1: the next stage went on
    assert record.stacks["b"].soak.startswith("turned unhealthy")


def test_a_soak_whose_watcher_died_is_taken_over(tmp_path):
    soak, other = soak_leg(tmp_path)
    soak.turns["b"] = START + timedelta(minutes=20)
    released: list[bool] = []
    real_sleep = soak.h.clock.sleep

    def the_other_process_dies(seconds, stop=None):
        if not released:
            other.release()  # its process ended: the lock is free, the soak not ended
            released.append(True)
        return real_sleep(seconds, stop)

    soak.h.clock.sleep = the_other_process_dies
    assert soak.h.resume(gate=soak.gate, only=frozenset({"p"})) is RunStatus.partial
    record = soak.h.record()
    assert record.stages[0].soak_ended and record.stacks["b"].soak.startswith("turned unhealthy")
    assert soak.h.runner.rollbacks == [("b", {"demo": {"tag": BEFORE}})]
