"""A journey's world and its steps: a project copy (Pulumi.yaml, stacks/, fleet.yaml), the scripted `pulumi` with a
persistent backend whose program changes the simulated Azure (pulumi_program.py), and that Azure (world.py). Each
step is `fluxfleet ...` run as a user types it, in a process of its own (launcher.py), so a step can be killed.

`Journey.world()` is the whole world at the end, in one comparable value: the stack files and fleet.yaml, the
Pulumi backend (each stack's update results and outputs) and Azure's state, with what no two runs share (times)
left out.
"""

from __future__ import annotations

import difflib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.journeys.world import WORLD_ENV, World
from tests.tools.fake_pulumi.wrapper import pulumi_wrapper

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("launcher.py")
PROGRAM = Path(__file__).with_name("pulumi_program.py")
SUBSCRIPTION = "8f5b2a4c-6d1e-4f3a-9b7c-2e8d0a1f3c5b"  # the signed-in identity's default (AZURE_SUBSCRIPTION_ID)
UP_SECONDS = 0.15  # how long each scripted update takes: the window a kill can land in
STEP_TIMEOUT = 120


@dataclass
class Step:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"fluxfleet {shlex.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


class Journey:
    """One fleet's world in `root`, and the steps taken in it."""

    def __init__(
        self,
        root: Path,
        azure: dict[str, Any],
        fleet: str,
        *,
        stacks: tuple[str, ...] = (),
        files: dict[str, str] | None = None,
        kill: tuple[int, int] | None = None,
    ):
        """`stacks`: the repository's stack files to copy; `files`: more stack files (name -> text); `kill`: (the
        index of the step to SIGKILL, the seed of when)."""
        self.root = root
        self.project = root / "project"
        stacks_dir = self.project / "stacks"
        (stacks_dir / "profiles").mkdir(parents=True)
        shutil.copy(ROOT / "Pulumi.yaml", self.project / "Pulumi.yaml")
        for profile in (ROOT / "stacks" / "profiles").glob("*.yaml"):
            shutil.copy(profile, stacks_dir / "profiles")
        for stack in stacks:
            shutil.copy(ROOT / "stacks" / f"Pulumi.{stack}.yaml", stacks_dir)
        for name, text in (files or {}).items():
            (stacks_dir / name).write_text(text, encoding="utf-8")
        (stacks_dir / "fleet.yaml").write_text(fleet, encoding="utf-8")
        self.azure = World(root / "azure.json")
        self.azure.write(azure)
        self.backend = root / "backend"
        scenario = {"backend": str(self.backend), "program": {"file": str(PROGRAM), "seconds": UP_SECONDS}}
        (root / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        # With site-packages: the program reads stacks through the project's own modules/spec (pydantic, ruamel.yaml).
        bin_dir = pulumi_wrapper(root / "bin", site_packages=True).parent
        (root / "azure-cli").mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ARM_", "PULUMI_", "FLUXFLEET_"))},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_PULUMI_SCENARIO": str(root / "scenario.json"),
            "FAKE_PULUMI_LOG": str(root / "pulumi-calls.jsonl"),  # every invocation, for a failing journey
            WORLD_ENV: str(self.azure.path),
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_CONFIG_DIR": str(root / "azure-cli"),  # no az login of the machine running the tests
            "PYTHONHASHSEED": "0",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        self.steps: list[Step] = []
        self.kill_at, seed = kill or (None, 0)
        self.rng = random.Random(seed)
        self._count = 0

    # ------------------------------------------------------------------ steps

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(LAUNCHER), *args],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # as a terminal's job: a kill of it leaves the updates it started running
        )

    def run(self, *args: str) -> Step:
        """`fluxfleet ARGS` to its end."""
        process = self.start(*args)
        stdout, stderr = process.communicate(timeout=STEP_TIMEOUT)
        step = Step(args, process.returncode, stdout, stderr)
        self.steps.append(step)
        return step

    def expect(self, code: int, *args: str) -> Step:
        """`fluxfleet ARGS`, which exits `code`."""
        step = self.run(*args)
        assert step.code == code, f"expected exit {code}: {step}"
        return step

    def together(self, code: int, *commands: tuple[str, ...]) -> list[Step]:
        """Steps started at once (two people, two CI jobs), each of which exits `code`."""
        processes = [(args, self.start(*args)) for args in commands]
        steps = []
        for args, process in processes:
            stdout, stderr = process.communicate(timeout=STEP_TIMEOUT)
            steps.append(Step(args, process.returncode, stdout, stderr))
        self.steps += steps
        for step in steps:
            assert step.code == code, f"expected exit {code}: {step}"
        return steps

    def step(self, code: int, *args: str) -> Step:
        """A step of the story: `fluxfleet ARGS`, which exits `code`. The step the journey kills is SIGKILLed at a
        random moment and then resumed as a user would: a rollout that left its run behind with `rollout --resume
        RUN` (the stages it approved approved again), which must end as the rollout would have; any other command
        (drift --remediate too) run again, which may find its work done and say so with 0."""
        index, self._count = self._count, self._count + 1
        if index != self.kill_at:
            return self.expect(code, *args)
        runs = self.run_ids()
        step = self.killed(self.rng, *args)
        print(f"journey step {index}: {step}", file=sys.stderr)  # shown with a failure: where the kill landed
        if step.code != -signal.SIGKILL:  # it ended before the kill came
            assert step.code == code, f"expected exit {code}: {step}"
            return step
        left = [run for run in self.run_ids() if run not in runs]
        if left and args[0] == "rollout":
            approved = [a for i, a in enumerate(args) if i and args[i - 1] == "--approve"]
            step = self.run("rollout", "--resume", left[-1], *(x for a in approved for x in ("--approve", a)))
            assert step.code == code, f"resumed after a SIGKILL, expected exit {code}: {step}"
        else:
            step = self.run(*args)
            assert step.code in (code, 0), f"run again after a SIGKILL, expected exit {code} (or 0): {step}"
        return step

    def killed(self, rng: random.Random, *args: str) -> Step:
        """`fluxfleet ARGS`, SIGKILLed at a random moment of its work: a rollout once none or one more of its
        updates has started (at random), a random part of an update later (as tests/tools/races.py kills them); any other
        command after a random 0.3 to 1.5 s (it starts up in about 1 s, and works for one to a few more). A step
        that ends before is not killed."""
        process = self.start(*args)
        if args[0] == "rollout":
            target = len(self.applies()) + rng.randint(0, 1)
            deadline = time.monotonic() + STEP_TIMEOUT
            while process.poll() is None and len(self.applies()) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 2 * UP_SECONDS))
        else:
            time.sleep(rng.uniform(0.3, 1.5))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        step = Step(args, process.returncode, stdout, stderr)
        self.steps.append(step)
        self.settle()
        return step

    # ------------------------------------------------------------------ the backend

    def applies(self) -> list[dict[str, Any]]:
        path = self.backend / "applies.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if json.loads(line)["event"] == "start"]

    def settle(self, timeout: float = 30) -> None:
        """Wait for the updates a killed step left running (as orphans) to end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            path = self.backend / "applies.jsonl"
            records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            ended = {(r["stack"], r["pid"]) for r in records if r["event"] == "end"}
            running = [r["pid"] for r in records if r["event"] == "start" and (r["stack"], r["pid"]) not in ended]
            if not any(_alive(pid) for pid in running):
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.root}: updates still running after {timeout}s")

    def run_ids(self) -> list[str]:
        """The rollout runs journaled so far, oldest first."""
        runs = self.project / ".fluxfleet" / "runs"
        return sorted(p.stem for p in runs.glob("*.json")) if runs.is_dir() else []

    # ------------------------------------------------------------------ the whole world

    def world(self) -> dict[str, Any]:
        """Stack files and fleet.yaml as text; per stack, its updates' results (newest first) and its outputs;
        Azure's state without its times."""
        stacks_dir = self.project / "stacks"
        files = {
            p.relative_to(stacks_dir).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(stacks_dir.rglob("*.yaml"))
        }
        backend = {}
        for history in sorted(self.backend.glob("*.history.json")):
            stack = history.name[: -len(".history.json")]
            outputs = self.backend / f"{stack}.outputs.json"
            backend[stack] = {
                "updates": [entry["result"] for entry in json.loads(history.read_text(encoding="utf-8"))],
                "outputs": json.loads(outputs.read_text(encoding="utf-8")) if outputs.exists() else None,
            }
        return {"files": files, "backend": backend, "azure": timeless(self.azure.read())}


def assert_world(journey: Journey, expected: dict[str, Any]) -> None:
    """The one comparison a journey ends with: the whole final world against the expected one; on a difference, a
    diff of the two (JSON, keys sorted, files line by line) and every step taken."""
    actual = journey.world()
    if actual != expected:
        shown = (
            json.dumps(
                {**w, "files": {n: t.splitlines() for n, t in w["files"].items()}}, indent=1, sort_keys=True
            ).splitlines()
            for w in (expected, actual)
        )
        diff = "\n".join(difflib.unified_diff(*shown, "expected world", "final world", lineterm="", n=2))
        steps = "\n\n".join(map(str, journey.steps))
        raise AssertionError(f"the final world is not the expected one:\n{diff}\n\nsteps:\n{steps}")


def timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k != "updatedAt"}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
