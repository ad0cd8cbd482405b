"""Benchmark: how close `fluxfleet rollout` schedules a large fleet to the ideal makespan.

1,000 simulated stacks in 4 stages (concurrency 10, 20, 30, 50; a 1 s bake after each of the first three). The
fake runner's updates really sleep 20-200 ms (seeded), and the real orchestrator runs them: threads, the journal
written atomically after every state change, the one-operation-per-cluster rule. The ideal makespan comes from the
same durations: per stage max(total / concurrency, longest), plus the bakes. Prints the figures; the last line is
one JSON object with stacks, makespan_s, ideal_s, ratio, overhead_ms_per_stack. Target: ratio <= 1.10.

    .venv/bin/python benchmarks/rollout_makespan.py [STACKS]
"""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fluxfleet.clock import SystemClock  # noqa: E402
from fluxfleet.rollout.journal import Journal, RunStatus  # noqa: E402
from fluxfleet.rollout.orchestrator import Rollout, Selection, new_run  # noqa: E402
from fluxfleet.simulation import FakeRunner  # noqa: E402
from modules.spec import Fleet, GateSpec, Stage, parse_spec  # noqa: E402

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
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
