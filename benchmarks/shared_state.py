"""Benchmark: one rollout across machines, over a real Blob service (Azurite), as issue 22 measures it.

Each trial is two machines — two projects, each its own working directory and `fluxfleet rollout --run-id` processes
— recording into one run in one Blob container beside one Pulumi backend (the scripted `pulumi` CLI): one machine
starts the run and is killed with SIGKILL at a random moment (seeded), both take it up at once and one of them is
killed too, then either side resumes it until it is done (tests/tools/races.py, `machines_trial`). Counts, over all
trials, stacks applied more than once and updates of one stack that overlapped. Then writers of one journal, each in
a process of its own on the same container, change it at once, folding its log as they go: the changes missing at
the end are the lost journal writes. Target: all three 0. The last line is one JSON object with trials, machines,
duplicate_applies, overlaps, lost_journal_writes (and not_done, seconds).

    .venv/bin/python benchmarks/shared_state.py [TRIALS]
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

from fluxfleet.runstate.azblob import container_client_from_connection_string  # noqa: E402
from tests.tools.azurite.server import start_azurite  # noqa: E402
from tests.tools.races import Shape, journal_writers, machines_trial  # noqa: E402

SHAPE = Shape(stacks=12, stages=3, concurrency=3, up_seconds=0.2)
MACHINES = 2
JOURNAL_WRITERS, JOURNAL_CHANGES = 8, 50


def main(trials: int) -> dict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        azurite = start_azurite(Path(root) / "azurite")
        try:

            def store_of(name: str) -> dict[str, str]:
                container_client_from_connection_string(azurite.connection_string(), name).create_container()
                return {
                    "PULUMI_BACKEND_URL": f"azblob://{name}",
                    "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(),
                    "FLUXFLEET_LEASE_SECONDS": "15",
                }

            stores = [store_of(f"trial-{seed}") for seed in range(trials)]
            with ThreadPoolExecutor(2) as pool:
                results = list(
                    pool.map(
                        lambda seed: machines_trial(Path(root) / str(seed), SHAPE, seed, lambda: (stores[seed], [])),
                        range(trials),
                    )
                )
            lost = journal_writers(store_of("journal-writers"), None, "writers", JOURNAL_WRITERS, JOURNAL_CHANGES)
        finally:
            azurite.stop()
    bad = [r.seed for r in results if r.applied_twice or r.overlaps or r.torn or not r.done]
    print(f"machines: {len(results)} trials of {SHAPE.stacks} stacks in {SHAPE.stages} stages, {len(bad)} bad: {bad}")
    print(f"journal: {JOURNAL_WRITERS} writers x {JOURNAL_CHANGES} changes, {lost} lost")
    figures = {
        "trials": len(results),
        "machines": MACHINES,
        "duplicate_applies": sum(r.applied_twice for r in results),
        "overlaps": sum(r.overlaps for r in results),
        "lost_journal_writes": lost,
        "not_done": sum(1 for r in results if not r.done),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
