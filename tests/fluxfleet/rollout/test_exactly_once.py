"""Exactly once, under races: `fluxfleet rollout` killed with SIGKILL at random points of its work (seeded), and
resumed while the updates it started still run, or resumed twice at once, applies every stack exactly once and never
runs two updates of one stack at the same time (tests/tools/races.py runs the command line over the scripted pulumi
CLI with a persistent backend; benchmarks/exactly_once.py runs the same at a fleet's size)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.tools.races import RACES, Shape, trial

TRIALS = 30
SHAPE = Shape(stacks=2, stages=2, concurrency=1, up_seconds=0.2)


@pytest.mark.parametrize("race", RACES)
def test_every_stack_is_applied_exactly_once_however_runs_are_killed_and_resumed(tmp_path, race):
    with ThreadPoolExecutor(4) as pool:  # trials are independent projects; most of their time is waiting
        trials = list(pool.map(lambda seed: trial(tmp_path / str(seed), SHAPE, race, seed), range(TRIALS)))
    failed = [
        f"seed {t.seed}: done={t.done} applied={dict(t.applied)} overlaps={t.overlaps} torn={t.torn}"
        for t in trials
        if not t.done
        or t.applied != dict.fromkeys(t.applied, 1)
        or len(t.applied) != SHAPE.stacks
        or t.overlaps
        or t.torn
    ]
    assert not failed, "\n".join(failed)
