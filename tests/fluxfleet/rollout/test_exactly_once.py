"""Exactly once, under races: `fluxfleet rollout` killed with SIGKILL at random points of its work (seeded), and
resumed while the updates it started still run, or resumed twice at once, applies every stack exactly once and never
runs two updates of one stack at the same time (tests/tools/races.py runs the command line over the scripted pulumi
CLI with a persistent backend; benchmarks/exactly_once.py runs the same at a fleet's size). The same holds across
machines: two projects recording into one run in one Blob container (Azurite), resumed from either side
(benchmarks/shared_state.py at a fleet's size); and writers of one journal in processes of their own lose no write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from fluxfleet.runstate.azblob import container_client_from_connection_string
from tests.tools.races import RACES, Shape, Trial, journal_writers, machines_trial, trial

TRIALS = 30
SHAPE = Shape(stacks=2, stages=2, concurrency=1, up_seconds=0.2)


def not_exactly_once(trials: list[Trial]) -> list[str]:
    """A line for each trial that did not end done with every stack applied once, no two updates of one overlapping
    and none killed half-way."""
    return [
        f"seed {t.seed}: done={t.done} applied={dict(t.applied)} overlaps={t.overlaps} torn={t.torn}"
        for t in trials
        if not t.done
        or t.applied != dict.fromkeys(t.applied, 1)
        or len(t.applied) != SHAPE.stacks
        or t.overlaps
        or t.torn
    ]


@pytest.mark.parametrize("race", RACES)
def test_every_stack_is_applied_exactly_once_however_runs_are_killed_and_resumed(tmp_path, race):
    with ThreadPoolExecutor(4) as pool:  # trials are independent projects; most of their time is waiting
        trials = list(pool.map(lambda seed: trial(tmp_path / str(seed), SHAPE, race, seed), range(TRIALS)))
    assert not (failed := not_exactly_once(trials)), "\n".join(failed)


def test_every_stack_is_applied_exactly_once_across_machines_sharing_one_store_on_azurite(tmp_path, azurite):
    """Two machines (projects of their own, their own processes) record into one run in one Blob container, one
    Pulumi backend beside it; killed and resumed from either side at random moments, seeded."""
    containers = iter(range(TRIALS))

    def store():
        container = container_client_from_connection_string(azurite.connection_string(), f"race-{next(containers)}")
        container.create_container()
        env = {
            "PULUMI_BACKEND_URL": f"azblob://{container.container_name}",
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(),
            "FLUXFLEET_LEASE_SECONDS": "15",  # a killed machine's locks free sooner: the trials wait less
        }
        return lambda: (env, [])

    stores = [store() for _ in range(TRIALS)]
    with ThreadPoolExecutor(4) as pool:
        trials = list(
            pool.map(lambda seed: machines_trial(tmp_path / str(seed), SHAPE, seed, stores[seed]), range(TRIALS))
        )
    assert not (failed := not_exactly_once(trials)), "\n".join(failed)


@pytest.mark.parametrize("kind", ["local", "blob"])
def test_writers_of_one_journal_in_processes_of_their_own_lose_no_write(tmp_path, azurite, kind):
    env, runs_dir = {}, tmp_path / "runs"
    if kind == "blob":
        container = container_client_from_connection_string(azurite.connection_string(), "journal-writers")
        container.create_container()
        env = {"PULUMI_BACKEND_URL": f"azblob://{container.container_name}"}
        env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string()
        runs_dir = None
    assert journal_writers(env, runs_dir, "writers", writers=4, changes=40) == 0
