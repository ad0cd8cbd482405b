"""A decommission killed half-way and resumed: `fluxfleet decommission` SIGKILLed at a random step (seeded), its
resumes killed too at random, over the scripted pulumi with a persistent backend (tests/tools/races.py). Every step
is done once: each destroy started once (one in doubt is settled from the stack's history, never repeated), each
stack removed once, nothing asked to be deleted twice, no destroy torn, and the run ends done with the stack files
and their names in fleet.yaml gone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.tools.races import decommission_trial

TRIALS = 12
KINDS = {"aks-1": "aks", "store-1": "arc"}


def test_a_decommission_killed_at_any_step_and_resumed_does_each_step_once(tmp_path):
    def trial(seed: int):
        # One trial in four has destroys that outlive the killed run: its resume waits on the stack's lock (which
        # the orphaned destroy holds) before it settles the step from the history.
        seconds = 1.5 if seed % 4 == 0 else 0.2
        return decommission_trial(tmp_path / str(seed), KINDS, seed, destroy_seconds=seconds)

    with ThreadPoolExecutor(4) as pool:
        trials = list(pool.map(trial, range(TRIALS)))
    problems = [line for trial in trials for line in trial.problems(list(KINDS))]
    assert not problems, "\n".join(problems)
    assert sum(trial.resumes for trial in trials) >= TRIALS  # every trial was killed and resumed at least once
