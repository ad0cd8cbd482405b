"""Benchmark: exactly once under races, at the size the issue measured it (30 stacks, 3 stages, 30 trials a race).

Each trial is a real `fluxfleet rollout` over the scripted pulumi CLI with a persistent backend, killed with SIGKILL
at a random point of its work (seeded) and then resumed: at once, while the updates it started still run
(`orphans`), or by two resumes started together, the first of them killed too (`two-resumes`); see
tests/tools/races.py. Counts, over all trials, stacks applied more than once, updates of one stack that overlapped,
updates killed half-way, and runs that did not end done. Target: all four 0. The last line is one JSON object with
trials, stacks, applied_twice, overlapping, torn, not_done, seconds.

    .venv/bin/python benchmarks/exactly_once.py [TRIALS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tools.races import RACES, Shape, trial  # noqa: E402

SHAPE = Shape(stacks=30, stages=3, concurrency=5, up_seconds=0.2)


def main(trials: int) -> dict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as root, ThreadPoolExecutor(2) as pool:
        cases = [(race, seed) for race in RACES for seed in range(trials)]
        results = list(pool.map(lambda case: trial(Path(root) / f"{case[0]}-{case[1]}", SHAPE, *case), cases))
    for race in RACES:
        of_race = [result for result in results if result.race == race]
        bad = sum(1 for r in of_race if r.applied_twice or r.overlaps or r.torn or not r.done)
        print(f"{race}: {len(of_race)} trials, {bad} with a stack applied twice, overlapping, torn or not done")
    figures = {
        "trials": len(results),
        "stacks": SHAPE.stacks,
        "applied_twice": sum(r.applied_twice for r in results),
        "overlapping": sum(r.overlaps for r in results),
        "torn": sum(r.torn for r in results),
        "not_done": sum(1 for r in results if not r.done),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
