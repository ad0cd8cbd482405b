"""Benchmark: how close `fluxfleet rollout` schedules a large fleet to the ideal makespan.

1,000 simulated stacks in 4 stages (concurrency 10, 20, 30, 50; a 1 s bake after each of the first three). The
fake runner's updates really sleep 20-200 ms (seeded), and the real orchestrator runs them: threads, the journal
written atomically after every state change, the one-operation-per-cluster rule. The ideal makespan comes from the
same durations: per stage max(total / concurrency, longest), plus the bakes. Target: ratio <= 1.10.

Then a fleet with windows and soaks, on a clock that runs SCALE times faster than the wall (so that cron windows of
minutes pass in seconds): a canary stage whose soak watches its stacks through one fleet read a poll (each stack
gated on Flux first), then a stage that may start only inside a nightly window that opens after the soak has ended.
Its ideal, computed here from the durations and the window alone: the canary's max(total / concurrency, longest),
its soak, the wait until the window opens, and the second stage's max(total / concurrency, longest).

Prints the figures; the last line is one JSON object with stacks, makespan_s, ideal_s, ratio,
overhead_ms_per_stack, and the windowed run's windowed_stacks, windowed_makespan_s, windowed_ideal_s (simulated
seconds), windowed_ratio and windowed_soak_reads.

    .venv/bin/python benchmarks/rollout_makespan.py [STACKS]
"""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fluxfleet.azure.fleet_graph import ClusterSnapshot, FleetSnapshot  # noqa: E402
from fluxfleet.azure.status import FluxConfigurationStatus  # noqa: E402
from fluxfleet.clock import SystemClock  # noqa: E402
from fluxfleet.rollout.gate import FleetFluxReads, FluxHealthGate  # noqa: E402
from fluxfleet.rollout.journal import Journal, RunStatus  # noqa: E402
from fluxfleet.rollout.orchestrator import Rollout, Selection, new_run  # noqa: E402
from fluxfleet.simulation import FakeRunner  # noqa: E402
from modules.spec import Fleet, GateSpec, Stage, parse_spec  # noqa: E402
from modules.spec.windows import WindowSpec  # noqa: E402

CONCURRENCY = (10, 20, 30, 50)
BAKE_SECONDS = 1


def main(count: int) -> dict:
    rng = random.Random(20261125)
    names = [f"store-{i:04d}" for i in range(count)]
    wall = {name: rng.uniform(0.020, 0.200) for name in names}
    per_stage = -(-count // len(CONCURRENCY))
    stages = tuple(
        Stage(f"wave-{i + 1}", tuple(names[i * per_stage : (i + 1) * per_stage]), c, 0, BAKE_SECONDS, False)
        for i, c in enumerate(CONCURRENCY)
    )
    template = {
        "cluster": {"kind": "arc", "name": "x", "resourceGroup": "rg-stores"},
        "flux": {"configurations": {}},
    }
    specs = {}
    for name in names:
        raw = copy.deepcopy(template)
        raw["cluster"]["name"] = name
        specs[name] = parse_spec(raw, file=f"Pulumi.{name}.yaml")

    ideal = 0.0
    for index, stage in enumerate(stages):
        durations = [wall[name] for name in stage.stacks]
        ideal += max(sum(durations) / stage.max_concurrency, max(durations))
        ideal += BAKE_SECONDS if index + 1 < len(stages) else 0
    scheduling_ideal = ideal - BAKE_SECONDS * (len(stages) - 1)

    clock = SystemClock()
    runner = FakeRunner(clock, wall_seconds=wall)
    fleet = Fleet("fleet.yaml", GateSpec(), stages, ())
    with tempfile.TemporaryDirectory() as runs:
        journal = Journal.create(Path(runs), new_run(fleet, Selection(), clock.now()))
        start = time.perf_counter()
        status = Rollout(journal, specs, runner, clock).run()
        makespan = time.perf_counter() - start
    assert status is RunStatus.done and sum(runner.applied.values()) == count and runner.cluster_overlaps == []
    scheduling = makespan - BAKE_SECONDS * (len(stages) - 1)
    figures = {
        "stacks": count,
        "makespan_s": round(makespan, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(makespan / ideal, 4),
        "overhead_ms_per_stack": round((makespan - ideal) * 1000 / count, 3),
    }
    print(f"stacks: {count} in {len(stages)} stages, concurrency {', '.join(map(str, CONCURRENCY))}")
    shortest, longest = min(wall.values()) * 1000, max(wall.values()) * 1000
    print(f"update durations: {shortest:.0f}-{longest:.0f} ms, sum {sum(wall.values()):.1f} s")
    print(f"measured makespan: {makespan:.3f} s; ideal: {ideal:.3f} s (bakes {BAKE_SECONDS * (len(stages) - 1)} s)")
    print(f"ratio: {makespan / ideal:.4f} (scheduling alone, bakes excluded: {scheduling / scheduling_ideal:.4f})")
    print(f"orchestrator overhead: {(makespan - ideal) * 1000 / count:.3f} ms per stack")
    figures |= windowed(rng, count)
    print(json.dumps(figures))
    return figures


SCALE = 600  # the windowed run's clock: 1 s of wall time is 10 minutes
CANARY, STORES = (20, 50)  # concurrency
SOAK_SECONDS = 10 * 60
WINDOW = {"cron": "30 22 * * *", "duration": "2h", "timezone": "Europe/Amsterdam"}  # 22:30-00:30 in Amsterdam
START = datetime(2026, 1, 5, 20, 50, tzinfo=UTC)  # 21:50 in Amsterdam: the window opens 40 minutes in


class ScaledClock:
    """A Clock SCALE times faster than the wall: its sleeps really sleep, for 1/SCALE of the time."""

    def __init__(self, start: datetime):
        self.start, self.origin = start, time.perf_counter()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.perf_counter() - self.origin) * SCALE)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(seconds, 0) / SCALE)
            return False
        return stop.wait(max(seconds, 0) / SCALE)


class HealthyFlux:
    """Azure as the gate and the soak read it: every Arc cluster connected, its Flux configuration Compliant now."""

    def __init__(self, clock: ScaledClock):
        self.clock = clock

    def status(self) -> FluxConfigurationStatus:
        now = self.clock.now()
        return FluxConfigurationStatus(
            "apps", "flux-system", "cluster", "GitRepository", False, "Succeeded", "Compliant", None, "main/0ba6f0d2",
            now, now, (),
        )  # fmt: skip

    def flux_configurations(self, subscription_id, cluster):
        return [self.status()]

    def extensions(self, subscription_id, cluster):
        return []

    def connected_cluster(self, subscription_id, resource_group, name):
        return None

    def read(self, targets):  # Resource Graph: one read for every cluster asked
        clusters = {t: ClusterSnapshot(t, True, "graph", flux_configurations=(self.status(),)) for t in targets}
        return FleetSnapshot(clusters, (), {}, 1, self.clock.now())


def windowed(rng: random.Random, count: int) -> dict:
    """The fleet with a soak and a window: its makespan on the scaled clock against the ideal the window allows."""
    names = [f"shop-{i:04d}" for i in range(max(count // 4, 2))]
    simulated = {name: rng.uniform(0.020, 0.200) * SCALE for name in names}  # 12 s to 2 min an update
    canary, stores = names[: len(names) // 4], names[len(names) // 4 :]
    window = WindowSpec.model_validate(WINDOW)
    stages = (
        Stage("canary", tuple(canary), CANARY, 0, SOAK_SECONDS, False),
        Stage("stores", tuple(stores), STORES, 0, 0, False, windows=(window,)),
    )
    template = {
        "cluster": {"kind": "arc", "name": "x", "resourceGroup": "rg-shops", "subscriptionId": SUBSCRIPTION},
        "flux": {
            "configurations": {
                "apps": {
                    "git": {"url": "https://github.com/fluxcd/flux2-kustomize-helm-example", "branch": "main"},
                    "kustomizations": {"apps": {"path": "./apps"}},
                }
            }
        },
    }
    specs = {}
    for name in names:
        raw = copy.deepcopy(template)
        raw["cluster"]["name"] = name
        specs[name] = parse_spec(raw, file=f"Pulumi.{name}.yaml")

    # The ideal, from the durations and the window alone: the canary, its soak, then the stores once the window
    # is open (it stays open for two hours: every start fits in it).
    def work(stage: tuple[str, ...], concurrency: int) -> float:
        seconds = [simulated[name] for name in stage]
        return max(sum(seconds) / concurrency, max(seconds))

    canary_done = START + timedelta(seconds=work(stages[0].stacks, CANARY) + SOAK_SECONDS)
    opens = datetime(2026, 1, 5, 21, 30, tzinfo=UTC)  # 22:30 in Amsterdam (CET, UTC+1) on the run's day
    ideal = (max(canary_done, opens) - START).total_seconds() + work(stages[1].stacks, STORES)

    clock = ScaledClock(START)
    flux = HealthyFlux(clock)
    reads = FleetFluxReads(flux)
    gate = FluxHealthGate(flux, clock, timeout=900, poll_interval=60, fleet=reads)
    runner = FakeRunner(clock, wall_seconds={name: seconds / SCALE for name, seconds in simulated.items()})
    fleet = Fleet("fleet.yaml", GateSpec(), stages, ())
    with tempfile.TemporaryDirectory() as runs:
        clock.origin = time.perf_counter()
        journal = Journal.create(Path(runs), new_run(fleet, Selection(), clock.now()))
        status = Rollout(journal, specs, runner, clock, gate=gate, subscription_of=lambda spec: SUBSCRIPTION).run()
        makespan = (clock.now() - START).total_seconds()
        record = journal.record
    assert status is RunStatus.done, record.reason
    assert runner.cluster_overlaps == [] and sum(runner.applied.values()) == len(names)
    first_store = min(runner.updates[name][0].started for name in stores)
    assert first_store >= opens, first_store  # the window held the stores
    assert record.stages[0].soak_ended and all(record.stacks[n].soak.startswith("healthy") for n in canary)
    print(
        f"windowed: {len(names)} stacks ({len(canary)} canary, soak {SOAK_SECONDS // 60}m; {len(stores)} in a window "
        f"opening {opens:%H:%M} UTC), clock x{SCALE}"
    )
    print(
        f"windowed makespan: {makespan:.0f} s simulated; ideal the window allows: {ideal:.0f} s; "
        f"ratio {makespan / ideal:.4f}; first store started {first_store:%H:%M:%S} UTC; soak reads {reads.reads}"
    )
    return {
        "windowed_stacks": len(names),
        "windowed_makespan_s": round(makespan, 1),
        "windowed_ideal_s": round(ideal, 1),
        "windowed_ratio": round(makespan / ideal, 4),
        "windowed_soak_reads": reads.reads,
    }


SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
