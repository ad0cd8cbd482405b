"""Automatic rollback: a stack whose gate fails after its update returns to the refs it ran before; past the stage's
failure budget the whole stage does, and its pin in fleet.yaml with it. Each direction of a stack is applied at most
once per run, through crashes and resumes; a rollback that fails is reported and never retried by itself."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fluxfleet.rollout.gate import FluxHealthGate
from fluxfleet.rollout.journal import Journal, RunStatus, StackState
from fluxfleet.rollout.orchestrator import Selection, new_run
from fluxfleet.rollout.report import render_summary
from fluxfleet.runner import RunnerError
from modules.spec import PinSpec, Stage, parse_spec
from tests.conftest import BASE_STACK
from tests.fluxfleet.rollout.test_gate import FakeFlux, compliant
from tests.fluxfleet.rollout.test_orchestrator import CLUSTER_REPLACEMENT, Crash, Harness, crash_after_writes, fleet

BEFORE, PROMOTED = "v1.3.0", "v1.4.0"
FLEET_YAML = """\
# Stages of the fleet. Promotions edit the pins below (fluxfleet promote).
stages:
  - name: wave
    maxConcurrency: 1
    pins: {demo: {tag: v1.4.0}}  # promoted on Friday
    rollback: true
  - name: prod
    stacks: [p]
"""


def pinned_spec(cluster: str, tag: str = PROMOTED):
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"]["name"] = cluster
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["branch"]
    git["tag"] = tag
    return parse_spec(raw, file=f"Pulumi.{cluster}.yaml")


class Promotion:
    """A fleet whose stage `wave` was promoted from BEFORE to PROMOTED and rolls back. `bad` stacks are Non-Compliant
    at PROMOTED; `bad_before` are Non-Compliant at BEFORE too (their rollback fails its gate)."""

    def __init__(self, tmp_path: Path, wave: list[str], failures: int = 0, concurrency: int = 1, **runner_options):
        pins = {"demo": PinSpec(tag=PROMOTED)}
        wave_stage = Stage("wave", tuple(wave), concurrency, failures, 0, False, pins, True)
        self.h = Harness(tmp_path, fleet(wave_stage, Stage("prod", ("p",), 1, 0, 0, False)), **runner_options)
        for name in self.h.specs:
            self.h.specs[name] = pinned_spec(name)
            self.h.runner.stack_outputs[name] = {"fluxConfigurationRefs": {"demo": {"tag": BEFORE}}}
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.fleet_path = tmp_path / "fleet.yaml"
        self.fleet_path.write_text(FLEET_YAML)
        self.bad: set[str] = set()
        self.bad_before: set[str] = set()
        flux = FakeFlux(self._flux)
        self.gate = FluxHealthGate(flux, self.h.clock, timeout=600, poll_interval=30)

    def _flux(self, cluster: str):
        rolled_back = cluster in self.rolled_back()
        bad = cluster in (self.bad_before if rolled_back else self.bad)
        tag = BEFORE if rolled_back else PROMOTED
        return [compliant("Non-Compliant" if bad else "Compliant", self.h.clock.now(), commit=f"{tag}/0ba6f0d2e7ac")]

    def rolled_back(self) -> list[str]:
        return [stack for stack, _ in self.h.runner.rollbacks]

    def options(self) -> dict:
        return {"gate": self.gate, "fleet_path": self.fleet_path}

    def start(self, selection: Selection | None = None) -> RunStatus:
        return self.h.start(selection, **self.options())

    def resume(self) -> RunStatus:
        return self.h.resume(**self.options())

    def forward_updates(self) -> dict[str, int]:
        rolled = self.rolled_back()
        return {name: count - rolled.count(name) for name, count in self.h.runner.applied.items()}


def test_a_stack_whose_gate_fails_is_rolled_back_alone_within_the_failure_budget(tmp_path):
    p = Promotion(tmp_path, ["a", "b", "c"], failures=1)
    p.bad = {"b"}
    assert p.start() is RunStatus.done
    record = p.h.record()
    b = record.stacks["b"]
    assert b.state is StackState.failed  # it failed: rolled back or not, it counts against the budget
    assert b.message.startswith("health gate: demo: Non-Compliant: Kustomization demo-apps: kustomize build failed")
    assert b.previous_refs == {"demo": {"tag": BEFORE}}
    assert b.rollback.state is StackState.succeeded and b.rollback.refs == {"demo": {"tag": BEFORE}}
    assert b.rollback.reason == b.message  # why, with the failing Flux object
    assert b.rollback.message == "rolled back: 1 Flux configuration(s) Compliant"
    assert p.h.runner.rollbacks == [("b", {"demo": {"tag": BEFORE}})]
    assert p.forward_updates() == {"a": 1, "b": 1, "c": 1, "p": 1}
    assert record.stacks["a"].rollback is None and record.stacks["c"].rollback is None
    assert p.fleet_path.read_text() == FLEET_YAML  # one stack's failure does not move the stage's pin


def test_past_the_budget_the_whole_stage_and_its_pin_go_back_and_no_later_stage_is_touched(tmp_path):
    p = Promotion(tmp_path, ["a", "b", "c", "d"], failures=0)
    p.bad = {"b"}
    assert p.start() is RunStatus.rolled_back
    record = p.h.record()
    states = {
        name: (e.state.value, e.rollback.state.value if e.rollback else None) for name, e in record.stacks.items()
    }
    assert states == {
        "a": ("succeeded", "succeeded"),  # healthy at v1.4.0, yet its stage goes back as one
        "b": ("failed", "succeeded"),
        "c": ("skipped", None),  # never updated: nothing to roll back
        "d": ("skipped", None),
        "p": ("pending", None),
    }
    assert sorted(p.h.runner.rollbacks) == [("a", {"demo": {"tag": BEFORE}}), ("b", {"demo": {"tag": BEFORE}})]
    assert record.stacks["a"].rollback.reason == "stage wave is rolled back"
    assert record.reason == "stage wave: 1 stack(s) failed, more than its maxFailures 0: stage rolled back"
    # fleet.yaml pins the stage back to what it ran, everything else byte for byte as written
    assert p.fleet_path.read_text() == FLEET_YAML.replace("tag: v1.4.0", "tag: v1.3.0")
    [note] = record.stages[0].pins_restored
    assert note == "demo: fleet.yaml pins tag v1.3.0 again (was tag v1.4.0): commit it"
    assert p.resume() is RunStatus.rolled_back  # a rolled-back run has nothing left to apply in either direction
    assert p.forward_updates() == {"a": 1, "b": 1} and len(p.h.runner.rollbacks) == 2


def test_a_pin_changed_since_the_run_began_is_not_overwritten_by_the_rollback(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    p.bad = {"a"}
    newer = FLEET_YAML.replace("tag: v1.4.0", "tag: v1.5.0")
    p.h.runner.on_up = lambda stack: p.fleet_path.write_text(newer)  # someone promoted meanwhile
    assert p.start() is RunStatus.rolled_back
    assert p.fleet_path.read_text() == newer
    assert p.h.record().stages[0].pins_restored == [
        "demo: fleet.yaml pins tag v1.5.0 since the run began: left as it is"
    ]


def test_a_stage_rolled_back_respects_its_concurrency_and_one_operation_per_cluster(tmp_path):
    wave = [f"s{i}" for i in range(8)]
    p = Promotion(tmp_path, wave, failures=2, concurrency=3, default_wall_seconds=0.02)
    p.bad = {"s0", "s1", "s2"}
    assert p.start() is RunStatus.rolled_back
    assert p.h.runner.max_in_flight <= 3 and p.h.runner.cluster_overlaps == []
    updated = [name for name in wave if p.h.record().stacks[name].attempts]
    assert sorted(p.rolled_back()) == sorted(updated)  # every stack the run updated, once


def test_a_rollback_that_fails_is_reported_loudly_and_never_retried(tmp_path):
    p = Promotion(tmp_path, ["a", "b"], failures=0)
    p.bad = p.bad_before = {"b"}  # broken at the old revision too: something else is wrong
    assert p.start() is RunStatus.rolled_back
    record = p.h.record()
    assert record.stacks["b"].rollback.state is StackState.failed
    assert record.stacks["b"].rollback.message.startswith("health gate: demo: Non-Compliant")
    assert "ROLLBACK FAILED for b: fix by hand" in record.reason
    summary = render_summary(record, "text")
    assert "ROLLBACK FAILED for b" in summary and "b: ROLLBACK FAILED (to demo tag v1.3.0): health gate" in summary
    assert "↩ ROLLBACK FAILED" in summary and "↩ rolled back" in summary  # b's row, and a's
    assert "- b: ROLLBACK FAILED (to demo tag v1.3.0)" in render_summary(record, "markdown")
    for _ in range(2):  # resuming reports it again; it applies nothing
        assert p.resume() is RunStatus.rolled_back
    assert p.h.runner.rollbacks.count(("b", {"demo": {"tag": BEFORE}})) == 1


def test_a_rollback_update_that_errors_is_a_failed_rollback(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    p.bad = {"a"}
    p.h.runner.on_up = lambda stack: (
        p.h.runner.failing.update({stack: "error: 409 Conflict"}) if stack in p.rolled_back() else None
    )
    assert p.start() is RunStatus.rolled_back
    rollback = p.h.record().stacks["a"].rollback
    assert (rollback.state, rollback.message) == (StackState.failed, "error: 409 Conflict")


def test_nothing_to_roll_back_is_said_not_guessed(tmp_path):
    p = Promotion(tmp_path, ["a", "b", "c"], failures=3)
    p.bad = {"a", "b", "c"}
    p.h.runner.stack_outputs["a"] = {}  # a program from before the refs were exported
    p.h.runner.stack_outputs["b"] = {"fluxConfigurationRefs": {"demo": {"tag": PROMOTED}}}  # ran it already
    p.h.runner.stack_outputs["c"] = {"fluxConfigurationRefs": "[secret]"}  # not the shape: nothing known
    assert p.start() is RunStatus.done
    record = p.h.record()
    nothing = "; not rolled back: it exported no refs to return to (new, or deployed by an older fluxfleet)"
    assert record.stacks["a"].message.endswith(nothing) and record.stacks["c"].message.endswith(nothing)
    assert record.stacks["b"].message.endswith("; not rolled back: its update changed no git ref")
    assert p.h.runner.rollbacks == []


def test_a_stack_whose_refs_cannot_be_read_is_not_updated(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)

    def unreadable(stack):
        raise RunnerError(f"{stack}: error: failed to decrypt the state")

    p.h.runner.outputs = unreadable
    assert p.start() is RunStatus.rolled_back
    entry = p.h.record().stacks["a"]
    assert entry.message == (
        "not started: cannot read the refs it runs now, so it could not be rolled back: "
        "a: error: failed to decrypt the state; not rolled back: Pulumi never ran its update"
    )
    assert p.h.runner.applied == {}


def test_rollout_rollback_option_rolls_back_a_stage_that_does_not_say_so(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    p.h.fleet = dataclasses.replace(
        p.h.fleet, stages=(dataclasses.replace(p.h.fleet.stages[0], rollback=False), *p.h.fleet.stages[1:])
    )
    p.bad = {"a"}
    assert p.start() is RunStatus.halted and p.h.runner.rollbacks == []
    p2 = Promotion(tmp_path / "again", ["a"], failures=0)
    p2.h.fleet = p.h.fleet
    p2.bad = {"a"}
    assert p2.start(Selection(rollback=True)) is RunStatus.rolled_back and p2.rolled_back() == ["a"]


def test_the_journal_records_both_directions(tmp_path):
    p = Promotion(tmp_path, ["a", "b"], failures=0)
    p.bad = {"b"}
    p.start()
    snapshot = json.loads((p.h.runs / f"{p.h.run_id}.json").read_text())
    a = snapshot["stacks"]["a"]
    assert (a["state"], a["update_id"], a["previous_refs"]) == ("succeeded", None, {"demo": {"tag": BEFORE}})
    assert a["rollback"]["refs"] == {"demo": {"tag": BEFORE}} and a["rollback"]["state"] == "succeeded"
    assert a["rollback"]["attempts"] == 1 and a["rollback"]["update_id"] is None
    history = {u.message for stack in ("a", "b") for u in p.h.runner.history(stack, 10)}
    assert history == {
        f"fluxfleet rollout {p.h.run_id}: a #1",
        f"fluxfleet rollout {p.h.run_id}: a rollback #1",
        f"fluxfleet rollout {p.h.run_id}: b #1",
        f"fluxfleet rollout {p.h.run_id}: b rollback #1",
    }
    summary = json.loads(render_summary(Journal.load(p.h.runs, p.h.run_id).record, "json"))
    [wave] = [stage for stage in summary["stages"] if stage["name"] == "wave"]
    b = next(s for s in wave["stacks"] if s["stack"] == "b")
    assert b["rollback"]["state"] == "succeeded" and b["runs"] == {"demo": {"tag": BEFORE}}
    assert wave["pinsRestored"] == ["demo: fleet.yaml pins tag v1.3.0 again (was tag v1.4.0): commit it"]


def test_an_oci_source_is_rolled_back_to_the_artifact_it_ran(tmp_path):
    """A fleet without long-lived git credentials (OCI artifacts, issue 16) rolls back as a git one does."""
    p = Promotion(tmp_path, ["a"], failures=0)
    for name in ("a", "p"):
        raw = copy.deepcopy(BASE_STACK)
        raw["cluster"]["name"] = name
        demo = raw["flux"]["configurations"]["demo"]
        del demo["git"]
        demo["oci"] = {"url": "oci://ghcr.io/contoso/platform", "tag": PROMOTED}
        p.h.specs[name] = parse_spec(raw, file=f"Pulumi.{name}.yaml")
    p.bad = {"a"}
    assert p.start() is RunStatus.rolled_back
    assert p.h.runner.rollbacks == [("a", {"demo": {"tag": BEFORE}})]
    entry = p.h.record().stacks["a"]
    assert entry.rollback.state is StackState.succeeded and entry.runs == {"demo": {"tag": BEFORE}}
    assert p.fleet_path.read_text() == FLEET_YAML.replace("tag: v1.4.0", "tag: v1.3.0")


def _reference_writes(p: Promotion) -> int:
    """How many journal writes a crash test's run makes, start to end, without a crash."""
    with pytest.MonkeyPatch.context() as patched:
        count = crash_after_writes(patched, 0)  # never crashes: counts
        assert p.start() is RunStatus.rolled_back
    return count["n"]


def crashed_at_every_write(tmp_path: Path, monkeypatch, make) -> Iterator[tuple[int, Promotion]]:
    """For each journal write of the run `make(directory)` prepares, that run crashed right after the write, then
    resumed (or started again, if it died before its journal existed) to its end."""
    writes = _reference_writes(make(tmp_path / "reference"))
    assert writes > 20
    for crash_after in range(1, writes + 1):
        p = make(tmp_path / str(crash_after))
        with monkeypatch.context() as patched:
            crash_after_writes(patched, crash_after)
            with pytest.raises(Crash):
                p.start()
        if p.h.run_id is None or not (p.h.runs / f"{p.h.run_id}.json").exists():
            p.h.run_id = None
            assert p.start() is RunStatus.rolled_back, crash_after
        else:
            assert p.resume() is RunStatus.rolled_back, crash_after
        yield crash_after, p


def one_bad_of_two(directory: Path) -> Promotion:
    p = Promotion(directory, ["a", "b"], failures=0)
    p.bad = {"b"}
    return p


def test_a_crash_at_any_journal_write_then_resume_applies_each_direction_exactly_once(tmp_path, monkeypatch):
    for crash_after, p in crashed_at_every_write(tmp_path, monkeypatch, one_bad_of_two):
        assert p.forward_updates() == {"a": 1, "b": 1}, crash_after
        assert sorted(p.rolled_back()) == ["a", "b"], crash_after
        assert p.fleet_path.read_text() == FLEET_YAML.replace("tag: v1.4.0", "tag: v1.3.0"), crash_after


def test_a_crash_inside_a_rollback_update_is_settled_from_the_backend_before_anything_is_applied(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    p.bad = {"a"}
    p.h.runner.on_up = lambda stack: (_ for _ in ()).throw(Crash()) if p.rolled_back() else None
    with pytest.raises(Crash):
        p.start()
    p.h.runner.on_up = None
    update = p.h.runner.history("a", 1)[0]
    assert update.result == "in-progress" and update.message == f"fluxfleet rollout {p.h.run_id}: a rollback #1"
    assert p.resume() is RunStatus.rolled_back  # still running in the backend: not applied again
    assert "still in progress in the Pulumi backend" in p.h.record().stacks["a"].rollback.message
    assert len(p.h.runner.rollbacks) == 1
    p.h.runner.updates["a"][0] = dataclasses.replace(update, result="succeeded", ended=p.h.clock.now())
    assert p.resume() is RunStatus.rolled_back  # the backend now says it succeeded: gated, never applied again
    rollback = p.h.record().stacks["a"].rollback
    assert (rollback.state, rollback.update_id) == (StackState.succeeded, None)
    assert len(p.h.runner.rollbacks) == 1 and p.forward_updates() == {"a": 1}


def test_a_resumed_run_started_without_rollback_keeps_its_plan(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    record = new_run(p.h.fleet, Selection(), p.h.clock.now())
    assert record.stages[0].rollback is True and record.stages[0].pins == {"demo": {"tag": PROMOTED}}
    assert record.stages[1].rollback is False and record.stages[1].pins == {}


# --------------------------------------------------------------------------------------------- fleet.yaml as written


def test_a_restore_never_changes_a_stage_that_shared_the_pins_through_an_alias(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    shared = FLEET_YAML.replace("pins: {demo: {tag: v1.4.0}}", "pins: &friday {demo: {tag: v1.4.0}}").replace(
        "    stacks: [p]\n", "    stacks: [p]\n    pins: *friday\n"
    )
    p.fleet_path.write_text(shared)
    p.bad = {"a"}
    assert p.start() is RunStatus.rolled_back
    wave, prod = YAML(typ="safe").load(p.fleet_path.read_text())["stages"]
    assert wave["pins"] == {"demo": {"tag": BEFORE}} and prod["pins"] == {"demo": {"tag": PROMOTED}}
    [note] = p.h.record().stages[0].pins_restored
    assert note == (
        "demo: fleet.yaml pins tag v1.3.0 again (was tag v1.4.0) (stages[0].pins were shared with another stage (a "
        "YAML alias or merge key): stage wave now has its own): commit it"
    )


def test_a_restore_edits_a_symlinked_crlf_fleet_yaml_at_its_target_byte_for_byte(tmp_path):
    p = Promotion(tmp_path, ["a"], failures=0)
    target = tmp_path / "repo" / "fleet.yaml"
    target.parent.mkdir()
    text = "\ufeff" + FLEET_YAML.replace("\n", "\r\n") + "...\r\n"
    target.write_bytes(text.encode("utf-8"))
    p.fleet_path.unlink()
    p.fleet_path.symlink_to(target)
    p.bad = {"a"}
    assert p.start() is RunStatus.rolled_back
    assert p.fleet_path.is_symlink()
    assert target.read_bytes() == text.replace("tag: v1.4.0", "tag: v1.3.0").encode("utf-8")


WAVE_STACK = """\
config:
  azure-native:location: eastus
  fluxfleet:cluster: {kind: arc, name: wave-arc, resourceGroup: rg-wave}
  fluxfleet:flux:
    configurations:
      demo:
        git: {url: https://github.com/fluxcd/flux2-kustomize-helm-example, tag: v1.3.0}
        kustomizations:
          apps: {path: ./apps/staging}
"""
WAVE_STAGE = "  - name: wave\n    stacks: [wave-store]\n    pins: {demo: {tag: v1.4.0}}\n    rollback: true\n"
RESTORES = 20
SLOW_EDIT = 0.1  # seconds between a writer's read of fleet.yaml and its write: a loaded machine


def _slow_edits() -> None:
    """Every edit of fleet.yaml in this process takes SLOW_EDIT longer between its read and its write."""
    import time

    import modules.spec.fleet

    original = modules.spec.fleet.yaml_round_trip

    def slow(text: str):
        time.sleep(SLOW_EDIT)
        return original(text)

    modules.spec.fleet.yaml_round_trip = slow


def _restore(barrier, root: str, fleet_path: str, delay: float) -> int:
    """The stage `wave` fails its gate and rolls back, restoring its pin in `fleet_path`, `delay` after the barrier."""
    import time

    _slow_edits()
    p = Promotion(Path(root), ["a"], failures=0)
    p.fleet_path = Path(fleet_path)
    p.bad = {"a"}
    barrier.wait()
    time.sleep(delay)
    return 0 if p.start() is RunStatus.rolled_back else 1


def _promote(barrier, root: str, argv: list[str], log: str) -> int:
    from tests.tools.races import fluxfleet_command

    _slow_edits()
    return fluxfleet_command(barrier, root, argv, log)


def test_a_restore_racing_a_promotion_loses_neither(tmp_path):
    """A rollback's restore of stage wave's pin and a `fluxfleet promote` of another configuration, in processes of
    their own, their edits of fleet.yaml overlapping: both pins are there, each time."""
    import random
    import shutil

    from tests.conftest import ROOT
    from tests.tools.races import together

    project = tmp_path / "project"
    shutil.copytree(ROOT / "stacks", project / "stacks")
    (project / "stacks" / "Pulumi.wave-store.yaml").write_text(WAVE_STACK)
    fleet = project / "stacks" / "fleet.yaml"
    original = fleet.read_text().replace("  - name: edge\n", WAVE_STAGE + "  - name: edge\n")
    rng = random.Random(21)
    for trial in range(RESTORES):
        fleet.write_text(original)
        log = str(tmp_path / "promote.log")
        argv = ["promote", "platform", "--to", f"v{trial}.0.0", "--force"]
        run = tmp_path / f"run-{trial}"
        calls = [(_promote, (str(project), argv, log)), (_restore, (str(run), str(fleet), rng.uniform(0.1, 0.6)))]
        assert together(calls) == [0, 0], Path(log).read_text()
        stages = {stage["name"]: stage for stage in YAML(typ="safe").load(fleet.read_text())["stages"]}
        assert stages["dev"].get("pins") == {"platform": {"tag": f"v{trial}.0.0"}}, f"trial {trial}"
        assert stages["wave"]["pins"] == {"demo": {"tag": BEFORE}}, f"trial {trial}"


# --------------------------------------------------------------------------------------------- refused before Pulumi


def busy(p: Promotion, cluster: str) -> None:
    """`cluster` stays Updating: its stack waits for it past the gate's timeout, then fails unstarted."""
    flux = p.gate.reader
    idle = flux.managed_cluster
    flux.managed_cluster = lambda sub, rg, name: (
        dataclasses.replace(idle(sub, rg, name), provisioning_state="Updating")
        if name == cluster
        else idle(sub, rg, name)
    )


def skips_the_hop(p: Promotion, stack: str) -> None:
    """`stack` pins microsoft.flux 1.23.0 on a cluster that runs 1.20.4: the 1.21 hop would be skipped."""
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"]["name"] = stack
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["branch"]
    git["tag"] = PROMOTED
    raw["flux"]["extension"] = {"autoUpgradeMinorVersion": False, "version": "1.23.0"}
    p.h.specs[stack] = parse_spec(raw, file=f"Pulumi.{stack}.yaml")
    p.gate.reader.installed[stack] = "1.20.4"


def replaces_the_cluster(p: Promotion, stack: str) -> None:
    p.h.runner.previews[stack] = CLUSTER_REPLACEMENT


REFUSALS = {
    "hop skipped": (skips_the_hop, "not started: installed 1.20.4; pinned 1.23.0 skips 1.21.x"),
    "cluster busy": (busy, "not started: cluster r Updating after 600s: another operation is running"),
    "replacement refused": (replaces_the_cluster, "refused: the update would replace cluster aks-a"),
}


def refused_in_a_stage_rolled_back(tmp_path: Path, refuse) -> Promotion:
    """Stage wave, budget 1: a updates fine, r is refused before Pulumi runs, b fails its gate: the stage goes back."""
    p = Promotion(tmp_path, ["a", "r", "b"], failures=1)
    p.bad = {"b"}
    refuse(p, "r")
    return p


@pytest.mark.parametrize("refusal", REFUSALS, ids=list(REFUSALS))
def test_a_stack_refused_before_pulumi_ran_is_never_touched_by_the_stage_rollback(tmp_path, refusal):
    refuse, why = REFUSALS[refusal]
    p = refused_in_a_stage_rolled_back(tmp_path, refuse)
    assert p.start() is RunStatus.rolled_back
    record = p.h.record()
    r = record.stacks["r"]
    assert r.state is StackState.failed and r.rollback is None and r.attempts == 0
    assert r.message.startswith(why) and r.message.endswith("; not rolled back: Pulumi never ran its update")
    assert "r" not in p.h.runner.started  # neither its update nor a rollback applied the refused spec
    assert sorted(p.rolled_back()) == ["a", "b"]  # the stacks whose update reached the backend went back
    assert "not rolled back: Pulumi never ran its update" in render_summary(record, "json")
    assert p.resume() is RunStatus.rolled_back and "r" not in p.h.runner.started


def test_a_crash_between_the_refusal_and_the_rollback_still_leaves_the_refused_stack_alone(tmp_path, monkeypatch):
    def make(directory: Path) -> Promotion:
        return refused_in_a_stage_rolled_back(directory, REFUSALS["hop skipped"][0])

    for crash_after, p in crashed_at_every_write(tmp_path, monkeypatch, make):
        assert "r" not in p.h.runner.started, crash_after
        assert sorted(p.rolled_back()) == ["a", "b"], crash_after


def test_a_stack_whose_update_failed_in_the_backend_is_rolled_back_and_one_that_never_reached_it_is_not(tmp_path):
    p = Promotion(tmp_path, ["a", "f", "n"], failures=1)
    p.h.runner.failing = {"f": "error: 409 Conflict", "n": "error: no Pulumi access token"}
    real_up = p.h.runner.up

    def up(stack, **kwargs):
        result = real_up(stack, **kwargs)
        if stack == "n":  # the CLI failed before the backend took the update: it is in no history
            p.h.runner.updates.pop("n")
        return result

    p.h.runner.up = up
    assert p.start() is RunStatus.rolled_back
    record = p.h.record()
    assert sorted(p.rolled_back()) == ["a", "f"]  # f may have half-applied: back it goes
    assert record.stacks["f"].rollback.refs == {"demo": {"tag": BEFORE}}
    assert record.stacks["n"].rollback is None
    assert record.stacks["n"].message == (
        "error: no Pulumi access token; not rolled back: its update never reached the Pulumi backend"
    )


def test_a_refused_stack_still_counts_for_the_pin_its_stage_goes_back_to(tmp_path):
    p = refused_in_a_stage_rolled_back(tmp_path, REFUSALS["replacement refused"][0])
    p.h.runner.stack_outputs["r"] = {"fluxConfigurationRefs": {"demo": {"tag": "v1.2.0"}}}  # it lags: runs v1.2.0
    assert p.start() is RunStatus.rolled_back
    assert p.h.record().stages[0].pins_restored == [
        "demo: fleet.yaml still pins tag v1.4.0 (its stacks ran different refs before): set the pin by hand"
    ]
    assert p.fleet_path.read_text() == FLEET_YAML  # not v1.3.0: r would be moved to a ref it never ran


PLATFORM_PINNED = FLEET_YAML.replace(
    "pins: {demo: {tag: v1.4.0}}", 'pins: {demo: {tag: v1.4.0}, kubernetes: "1.36", flux-extension: "1.23.0"}'
)


def platform_pinned(tmp_path: Path, stacks: list[str]) -> Promotion:
    """Stage wave, budget 0, pins Kubernetes 1.36 and the extension 1.23.0 over stacks that ran 1.35 and 1.22.2."""
    p = Promotion(tmp_path, stacks, failures=0)
    p.fleet_path.write_text(PLATFORM_PINNED)
    wave = dataclasses.replace(p.h.fleet.stages[0], kubernetes="1.36", flux_extension="1.23.0")
    p.h.fleet = dataclasses.replace(p.h.fleet, stages=(wave, *p.h.fleet.stages[1:]))
    for name in stacks:
        p.h.runner.stack_outputs[name] = {
            "fluxConfigurationRefs": {"demo": {"tag": BEFORE}},
            "platformVersions": {"kubernetes": "1.35", "flux-extension": "1.22.2"},
        }
    return p


def test_past_the_budget_a_stages_extension_pin_goes_back_but_a_kubernetes_version_its_clusters_took_stays(
    tmp_path,
):
    """The platform's versions are pins as configuration refs are: restored to what the stacks' last updates
    declared (their `platformVersions` output), in quotes, the rest of fleet.yaml as written. All but Kubernetes once
    a cluster of the stage was updated to it: AKS never downgrades a control plane, and a pin back at 1.35 would
    fail every next update of those clusters."""
    p = platform_pinned(tmp_path, ["a", "b"])
    text = PLATFORM_PINNED
    p.bad = {"b"}
    assert p.start() is RunStatus.rolled_back
    record = p.h.record()
    assert record.stages[0].pins == {
        "demo": {"tag": PROMOTED},
        "kubernetes": {"version": "1.36"},
        "flux-extension": {"version": "1.23.0"},
    }
    assert p.fleet_path.read_text() == text.replace("tag: v1.4.0", "tag: v1.3.0").replace(
        'kubernetes: "1.36", flux-extension: "1.23.0"', 'kubernetes: "1.36", flux-extension: "1.22.2"'
    )
    assert record.stages[0].pins_restored == [
        "demo: fleet.yaml pins tag v1.3.0 again (was tag v1.4.0): commit it",
        "flux-extension: fleet.yaml pins 1.22.2 again (was version 1.23.0): commit it",
        "kubernetes: fleet.yaml keeps version 1.36: AKS never downgrades a control plane, and 2 cluster(s) of stage "
        "wave were updated to it (a, b): fix forward",
    ]
    assert sorted(p.h.runner.rollbacks) == [("a", {"demo": {"tag": BEFORE}}), ("b", {"demo": {"tag": BEFORE}})]


def test_a_kubernetes_pin_goes_back_when_no_cluster_of_the_stage_was_updated_to_it(tmp_path):
    p = platform_pinned(tmp_path, ["r"])
    REFUSALS["hop skipped"][0](p, "r")  # refused before Pulumi ran: r still runs 1.35
    assert p.start() is RunStatus.rolled_back
    assert p.h.record().stacks["r"].attempts == 0
    assert (
        "kubernetes: fleet.yaml pins 1.35 again (was version 1.36): commit it" in p.h.record().stages[0].pins_restored
    )
    assert 'kubernetes: "1.35"' in p.fleet_path.read_text()
