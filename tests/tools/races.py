"""Races: `fluxfleet rollout` killed with SIGKILL at random moments, then resumed, over the scripted `pulumi` CLI
with a persistent backend (tests/tools/fake_pulumi). The fake's `up` runs in a session of its own, as the real CLI
does under fluxfleet, so killing fluxfleet leaves it running as an orphan; its backend records every update's start
and end, so a trial can count how often each stack was applied and whether two updates of one stack overlapped.

Two races, as an adversarial tester runs them:
- `orphans`: the run is killed, and resumed at once while the updates it started still run;
- `two-resumes`: the run is killed, two resumes of it start close together, the first is killed too, and the run is
  then resumed until it is done.

fluxfleet runs as its real command line (typer app, journal, locks, AutomationRunner). Each run is a process forked
from a server that has already imported fluxfleet, so a trial costs the runs' work, not their imports. Used by
tests/fluxfleet/rollout/test_exactly_once.py (small, in seconds) and benchmarks/exactly_once.py (the issue's size).

`together` races writers of fleet.yaml (promotions, a rollback's restore of pins), each in a process of its own,
released at once: tests/fluxfleet/test_promote.py and tests/fluxfleet/rollout/test_rollback.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.tools.fake_pulumi.wrapper import pulumi_wrapper

ROOT = Path(__file__).resolve().parents[2]
RACES = ("orphans", "two-resumes")
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(
    [
        "fluxfleet.cli",
        "fluxfleet.automation",
        "fluxfleet.azure.arm",
        "fluxfleet.rollout.orchestrator",
        "fluxfleet.promote",
    ]
)


@dataclass(frozen=True)
class Shape:
    stacks: int = 30
    stages: int = 3
    concurrency: int = 5
    up_seconds: float = 0.2  # how long the fake's update takes: the window in which an orphan runs


@dataclass
class Trial:
    race: str
    seed: int
    applied: Counter[str] = field(default_factory=Counter)  # stack -> updates started
    overlaps: int = 0  # pairs of updates of one stack that ran at the same time
    torn: int = 0  # updates whose process died half-way (a CLI killed with its parent)
    done: bool = False  # the run ended `done` with every stack succeeded

    @property
    def applied_twice(self) -> int:
        return sum(count - 1 for count in self.applied.values() if count > 1)


class Project:
    """A project directory: stack files, fleet.yaml (no Azure gate), the fake CLI and its backend. `backend` (a
    Pulumi backend shared with other projects) and `store` (the environment that names a run-state store shared with
    them, with the options that choose it) make it one machine of several."""

    def __init__(
        self, root: Path, shape: Shape, backend: Path | None = None, store: tuple[dict, list[str]] | None = None
    ):
        self.root = root
        self.shape = shape
        self.names = [f"store-{index:03d}" for index in range(shape.stacks)]
        stacks = root / "stacks"
        stacks.mkdir(parents=True)
        for name in self.names:
            (stacks / f"Pulumi.{name}.yaml").write_text(_STACK.format(name=name), encoding="utf-8")
        per_stage = -(-shape.stacks // shape.stages)
        stages = [
            f"  - name: wave-{index}\n    maxConcurrency: {shape.concurrency}\n    stacks: "
            + json.dumps(self.names[index * per_stage : (index + 1) * per_stage])
            for index in range(shape.stages)
        ]
        (stacks / "fleet.yaml").write_text(_FLEET + "\n".join(stages) + "\n", encoding="utf-8")
        up = {"events": [{"summaryEvent": {"resourceChanges": {"update": 1}}}], "seconds": shape.up_seconds}
        scenario = {"backend": str(backend or "backend"), "stacks": {name: {"up": up} for name in self.names}}
        self.backend = backend or root / "backend"
        (root / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        bin_dir = pulumi_wrapper(root / "bin").parent
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_PULUMI_SCENARIO": str(root / "scenario.json"),
            **(store[0] if store else {}),
        }
        self.store_options = store[1] if store else []
        self.runs = root / ".fluxfleet" / "runs"
        self._count = 0

    def start(self, *args: str) -> multiprocessing.process.BaseProcess:
        """`fluxfleet rollout ARGS` in a process of its own."""
        self._count += 1
        log = self.root / f"fluxfleet-{self._count}.log"
        argv = ["rollout", *args, *self.store_options]
        process = _CONTEXT.Process(target=_fluxfleet, args=(str(self.root), self.env, argv, str(log)))
        process.start()
        return process

    def run_id(self) -> str | None:
        runs = sorted(self.runs.glob("*.json")) if self.runs.is_dir() else []
        return runs[0].stem if runs else None

    def status(self) -> tuple[str, set[str]]:
        data = json.loads((self.runs / f"{self.run_id()}.json").read_text(encoding="utf-8"))
        log = self.runs / f"{self.run_id()}.log"
        states = {name: entry["state"] for name, entry in data["stacks"].items()}
        status = data["status"]
        for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else ():
            change = json.loads(line)
            if change["stack"]:
                states[change["stack"]] = change["set"].get("state", states[change["stack"]])
            status = change["set"].get("status", status)
        return status, set(states.values())

    def applies(self) -> list[dict]:
        path = self.backend / "applies.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    def settle(self, timeout: float = 30) -> None:
        """Wait for the orphans left by killed runs to end (or die)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = {(r["stack"], r["pid"]) for r in self.applies() if r["event"] == "end"}
            running = [
                r["pid"] for r in self.applies() if r["event"] == "start" and (r["stack"], r["pid"]) not in ended
            ]
            if not any(_alive(pid) for pid in running):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.root}: updates still running after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _fluxfleet(root: str, env: dict[str, str], argv: list[str], log: str) -> None:
    os.chdir(root)
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import fluxfleet.azure.arm as arm
    from fluxfleet.cli import app

    real = arm.ArmReader
    arm.ArmReader = lambda: _idle_azure(real)  # the checks before each update read Azure: nothing runs there
    code = 0
    try:
        app(argv, prog_name="fluxfleet")
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _idle_azure(arm_reader):
    """An ArmReader over ARM as it answers for an Arc cluster that has no extension yet (no operation running)."""
    from tests.azure_transport import FakeCredential, ScriptedTransport

    def respond(request):
        if "/extensions" in request.url:
            return 200, {"value": []}, {}
        return 404, {"error": {"code": "NotFound", "message": request.url}}, {}

    return arm_reader(FakeCredential(), transport=ScriptedTransport(respond), retry_total=0)


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    if process.pid is not None and process.exitcode is None:
        os.kill(process.pid, signal.SIGKILL)
    process.join()


def _finish(project: Project) -> None:
    """Resume the run (or start one, if the first died before it wrote its journal) until it is done."""
    for _ in range(10):
        run_id = project.run_id()
        process = project.start("--resume", run_id) if run_id else project.start()
        process.join()
        if project.run_id() and project.status()[0] == "done":
            return
        time.sleep(0.1)  # a resume still holding the run: let it end


def _kill_after_updates(project: Project, process: multiprocessing.process.BaseProcess, rng: random.Random) -> None:
    """SIGKILL `process` at a random point of its work: once a random number of further updates has started
    (none: at once), a random part of an update later."""
    started = sum(1 for record in project.applies() if record["event"] == "start")
    target = started + rng.randint(0, project.shape.stacks // 2)
    while process.exitcode is None and sum(r["event"] == "start" for r in project.applies()) < target:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, project.shape.up_seconds))
    _kill(process)


def trial(root: Path, shape: Shape, race: str, seed: int) -> Trial:
    rng = random.Random(seed)
    project = Project(root, shape)
    _kill_after_updates(project, project.start(), rng)
    if race == "two-resumes" and project.run_id():
        second = project.start("--resume", project.run_id())
        time.sleep(rng.uniform(0, 0.2))
        third = project.start("--resume", project.run_id())
        _kill_after_updates(project, second, rng)
        third.join()
    _finish(project)
    project.settle()
    status, states = project.status() if project.run_id() else ("none", set())
    return _counted(Trial(race, seed), project.applies(), status == "done" and states == {"succeeded"})


def machines_trial(root: Path, shape: Shape, seed: int, store: Callable[[], tuple[dict, list[str]]]) -> Trial:
    """Two machines — two projects of their own, each its working directory and processes — with one Pulumi backend
    and one run-state store (`store()`: the environment and options that name it). One starts the run of an id and
    is killed at a random moment; then both take the run up at once, one of them (at random) is killed too; then
    either side, at random, takes it up until it is done. Each `fluxfleet rollout --run-id` joins the same run."""
    rng = random.Random(seed)
    backend = root / "backend"
    machines = [Project(root / side, shape, backend, store()) for side in ("a", "b")]
    run = ["--run-id", f"race-{seed}"]
    _kill_after_updates(machines[0], machines[0].start(*run), rng)
    both = [machine.start(*run) for machine in machines]
    victim = rng.randrange(2)
    _kill_after_updates(machines[victim], both[victim], rng)
    both[1 - victim].join()
    for _ in range(10):
        side = machines[rng.randrange(2)]
        side.start(*run).join()
        status, states = _run_state(f"race-{seed}", side)
        if status == "done":
            break
    machines[0].settle()
    return _counted(Trial("machines", seed), machines[0].applies(), status == "done" and states == {"succeeded"})


def _run_state(run_id: str, project: Project) -> tuple[str, set[str]]:
    """The run's status and its stacks' states, as the run-state store the project uses has them."""
    from fluxfleet.rollout.journal import Journal
    from fluxfleet.runstate.backends import run_store

    options = project.store_options
    runs_dir = Path(options[options.index("--runs-dir") + 1]) if "--runs-dir" in options else None
    record = Journal.load(run_store(runs_dir, project.env), run_id).record
    return record.status.value, {entry.state.value for entry in record.stacks.values()}


def _counted(result: Trial, applies: list[dict], done: bool) -> Trial:
    """The trial's figures from the backend's record of every update's start and end."""
    result.done = done
    spans: dict[str, list[tuple[float, float]]] = {}
    started = {}
    for record in applies:
        key = (record["stack"], record["pid"])
        if record["event"] == "start":
            result.applied[record["stack"]] += 1
            started[key] = record["time"]
        else:
            spans.setdefault(record["stack"], []).append((started.pop(key), record["time"]))
    result.torn = len(started)
    for intervals in spans.values():
        intervals.sort()
        result.overlaps += sum(1 for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False) if start < end)
    return result


_STACK = """config:
  fluxfleet:cluster:
    kind: arc
    name: {name}
    resourceGroup: rg-stores
    subscriptionId: 00000000-0000-0000-0000-000000000000
  fluxfleet:flux:
    configurations:
      platform:
        git:
          url: https://github.com/fluxcd/flux2-kustomize-helm-example
          tag: v1.0.0
        kustomizations:
          apps: {{path: ./apps/production}}
"""

_FLEET = """gate:
  fluxCompliance: false
refuseClusterReplacement: false
refuseFluxReplacement: false
stages:
"""


# --------------------------------------------------------------------------------------------- writers of fleet.yaml


def together(calls: list[tuple[Callable[..., int], tuple]], timeout: float = 60) -> list[int | None]:
    """Each `function(barrier, *args)` in a process of its own, forked from the server that has imported fluxfleet;
    each calls `barrier.wait()` where it is to start racing the others. Their exit codes, in order (None: still
    running after `timeout`, then killed)."""
    barrier = _CONTEXT.Barrier(len(calls))
    processes = [_CONTEXT.Process(target=_released, args=(barrier, function, args)) for function, args in calls]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        code = process.exitcode
        _kill(process)
        codes.append(code)
    return codes


def _released(barrier: Any, function: Callable[..., int], args: tuple) -> None:
    code = 1
    try:
        code = function(barrier, *args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def fluxfleet_command(barrier: Any, root: str, argv: list[str], log: str) -> int:
    """`fluxfleet ARGV` in `root`, its output in `log`, started at the barrier: its exit code."""
    os.chdir(root)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from fluxfleet.cli import app

    barrier.wait()
    try:
        app(argv, prog_name="fluxfleet")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


# --------------------------------------------------------------------------------------------- writers of one journal


def journal_writers(env: dict[str, str], runs_dir: Path | None, run_id: str, writers: int, changes: int) -> int:
    """`writers` processes, released at once, each making `changes` changes to a stack of its own of one run in the
    store `runs_dir` and `env` name (and folding the log into the snapshot every few changes, as a run does between stages).
    Returns how many of the last changes are missing from the run read afterwards: the writes lost."""
    from fluxfleet.rollout.journal import Journal, RunRecord, RunStatus, StackEntry, StagePlan
    from fluxfleet.runstate.backends import run_store

    names = [f"writer-{index}" for index in range(writers)]
    stage = StagePlan("wave", names, writers, 0, 0, False)
    record = RunRecord(
        run_id,
        "stacks/fleet.yaml",
        "2026-01-01T00:00:00+00:00",
        RunStatus.running,
        [stage],
        {name: StackEntry(stage="wave") for name in names},
    )
    Journal.create(run_store(runs_dir, env), record)
    codes = together([(_write_changes, (env, runs_dir, run_id, name, changes)) for name in names], timeout=300)
    if codes != [0] * writers:
        raise RuntimeError(f"a journal writer failed: exit codes {codes}")
    stacks = Journal.load(run_store(runs_dir, env), run_id).record.stacks
    return sum(1 for name in names if stacks[name].message != f"{name} change {changes}")


def _write_changes(
    barrier: Any, env: dict[str, str], runs_dir: Path | None, run_id: str, name: str, changes: int
) -> int:
    from datetime import UTC, datetime

    from fluxfleet.rollout.journal import Journal
    from fluxfleet.runstate.backends import run_store

    journal = Journal.load(run_store(runs_dir, env), run_id)
    barrier.wait()
    for change in range(1, changes + 1):
        journal.update(datetime.now(UTC), name, message=f"{name} change {change}")
        if change % 5 == 0:
            journal.save()
            journal.refresh()
    return 0


# --------------------------------------------------------------------------------------------- a decommission killed


@dataclass
class DecommissionTrial:
    seed: int
    destroys: Counter[tuple[str, str]] = field(default_factory=Counter)  # (stack, step) -> destroys started
    removes: Counter[str] = field(default_factory=Counter)  # stack -> `stack rm`s that removed it
    deleted: Counter[str] = field(default_factory=Counter)  # URN -> times Azure was asked to delete it
    torn: int = 0  # destroys whose process died half-way
    resumes: int = 0
    done: bool = False  # the run ended `done`, every stack file and fleet.yaml name gone

    def problems(self, stacks: list[str]) -> list[str]:
        wanted = {(stack, step): 1 for stack in stacks for step in ("configurations", "extension", "destroy")}
        found = []
        if dict(self.destroys) != wanted:
            found.append(f"destroys {dict(self.destroys)}")
        if dict(self.removes) != dict.fromkeys(stacks, 1):
            found.append(f"stack rm {dict(self.removes)}")
        if any(count != 1 for count in self.deleted.values()):
            found.append(f"deleted {dict(self.deleted)}")
        if self.torn or not self.done:
            found.append(f"torn={self.torn} done={self.done}")
        return [f"seed {self.seed} ({self.resumes} resumes): {line}" for line in found]


def decommission_trial(root: Path, kinds: dict[str, str], seed: int, destroy_seconds: float = 0.2) -> DecommissionTrial:
    """`fluxfleet decommission STACKS --yes` in a process of its own, SIGKILLed at a random step (once a random
    number of its Pulumi commands have started or ended, a random part of a destroy later), then resumed until done,
    each resume killed too with even odds. What the scripted backend saw is counted."""
    from fluxfleet.rollout.journal import Journal
    from fluxfleet.runstate.local import LocalStore
    from tests.tools.decommission_project import make_project

    rng = random.Random(seed)
    project = make_project(root, kinds, destroy_seconds=destroy_seconds, extra_stacks=("stays",))
    runs = root / ".fluxfleet" / "runs"
    run_id = f"race-{seed}"

    def start(*args: str) -> multiprocessing.process.BaseProcess:
        log = root / f"fluxfleet-{time.monotonic_ns()}.log"
        process = _CONTEXT.Process(target=_fluxfleet, args=(str(root), project.env, ["decommission", *args], str(log)))
        process.start()
        return process

    def kill_at_random(process: multiprocessing.process.BaseProcess) -> None:
        # A stack's steps leave 7 records (3 destroys, a start and an end each; a stack rm): stop before the last.
        target = len(project.applies()) + rng.randint(0, 7 * len(kinds) - 1)
        while process.exitcode is None and len(project.applies()) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, destroy_seconds))
        _kill(process)

    def status() -> str | None:
        if not (runs / f"{run_id}.json").exists():
            return None
        return Journal.load(LocalStore(runs), run_id).record.status.value

    kill_at_random(start(*kinds, "--yes", "--run-id", run_id))
    result = DecommissionTrial(seed)
    for _ in range(12):
        if status() == "done":
            break
        process = start(*kinds, "--yes", "--run-id", run_id) if status() is None else start("--resume", run_id)
        result.resumes += 1
        if rng.random() < 0.5:
            kill_at_random(process)
        else:
            process.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the orphans of killed runs end
        starts = Counter((r["stack"], r["pid"]) for r in project.applies() if r["event"] == "start")
        ends = Counter((r["stack"], r["pid"]) for r in project.applies() if r["event"] == "end")
        if not any(_alive(pid) for (_, pid), count in starts.items() if ends[(_, pid)] < count):
            break
        time.sleep(0.05)
    open_destroys: Counter[tuple[str, int]] = Counter()
    for record in project.applies():
        if record.get("kind") == "rm":
            result.removes[record["stack"]] += 1
        elif record["event"] == "start":
            step = record["message"].rsplit(" ", 2)[-2]  # "fluxfleet decommission RUN: STACK STEP #N"
            result.destroys[(record["stack"], step)] += 1
            open_destroys[(record["stack"], record["pid"])] += 1
        else:
            open_destroys[(record["stack"], record["pid"])] -= 1
    result.torn = sum(open_destroys.values())
    result.deleted.update(project.deleted())
    files = {path.name for path in project.stacks_dir.glob("Pulumi.*.yaml")}
    fleet = (project.stacks_dir / "fleet.yaml").read_text(encoding="utf-8")
    result.done = status() == "done" and files == {"Pulumi.stays.yaml"} and not any(s in fleet for s in kinds)
    return result
