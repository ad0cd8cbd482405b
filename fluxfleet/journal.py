"""The rollout journal: everything a run decided, so that a crash or Ctrl-C loses nothing and `--resume` knows
exactly where the run stopped.

A run is `.fluxfleet/runs/<run-id>.json`, a snapshot rewritten atomically (temporary file, then rename) when the run
starts, ends or finishes a stage, plus `<run-id>.log`, one JSON line appended per change in between. Appending keeps
a change cheap at fleet scale (rewriting the snapshot of 1,000 stacks costs ~40 ms; a line, microseconds); replaying
the lines over the snapshot gives the record back, and a torn last line (the process died mid-write) is ignored.
Both survive the process dying at any point; they are not fsynced, so an operating-system crash may lose the last
changes (resume then re-checks those stacks against the Pulumi backend).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from modules.spec import Stage

RUNS_DIR = Path(".fluxfleet") / "runs"


class StackState(StrEnum):
    pending = "pending"
    running = "running"  # `pulumi up` started
    gating = "gating"  # the update succeeded; waiting for Flux to report healthy
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # not started because the run halted
    deferred = "deferred"  # updated, but the gate cannot judge yet (an Arc cluster offline); resume re-gates it


class RunStatus(StrEnum):
    running = "running"
    done = "done"
    halted = "halted"  # a stage's failure budget was exceeded
    awaiting_approval = "awaiting-approval"
    interrupted = "interrupted"  # Ctrl-C: stopped scheduling; resumable


@dataclass
class StackEntry:
    stage: str
    state: StackState = StackState.pending
    started_at: str | None = None
    ended_at: str | None = None
    message: str = ""
    changes: dict[str, int] = field(default_factory=dict)


@dataclass
class StagePlan:
    """A stage as the run fixed it when it began: a resumed run keeps its plan."""

    name: str
    stacks: list[str]
    max_concurrency: int
    max_failures: int
    after_stage_wait: int
    approval: bool
    bake_until: str | None = None

    @staticmethod
    def of(stage: Stage, stacks: list[str], max_concurrency: int) -> StagePlan:
        return StagePlan(
            stage.name, stacks, max_concurrency, stage.max_failures, stage.after_stage_wait, stage.approval
        )


@dataclass
class RunRecord:
    run_id: str
    fleet_file: str
    started_at: str
    status: RunStatus
    stages: list[StagePlan]
    stacks: dict[str, StackEntry]
    approved: list[str] = field(default_factory=list)
    reason: str = ""
    updated_at: str = ""


class Journal:
    """One run's record and its file. Every mutation goes through `update`, which saves under a lock."""

    def __init__(self, path: Path, record: RunRecord):
        self.path = path
        self.record = record
        self._lock = threading.Lock()  # one change at a time from the worker threads
        self._lock_file: Any = None  # held open (and flock-ed) while this process runs the run

    @staticmethod
    def new_run_id(now: datetime) -> str:
        return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"

    @classmethod
    def create(cls, runs_dir: Path, record: RunRecord) -> Journal:
        journal = cls(runs_dir / f"{record.run_id}.json", record)
        journal.save()
        return journal

    @classmethod
    def load(cls, runs_dir: Path, run_id: str) -> Journal:
        """A run's journal; ValueError with one line when it is missing or unreadable."""
        path = runs_dir / f"{run_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = RunRecord(
                **{
                    **data,
                    "status": RunStatus(data["status"]),
                    "stages": [StagePlan(**stage) for stage in data["stages"]],
                    "stacks": {
                        name: StackEntry(**{**entry, "state": StackState(entry["state"])})
                        for name, entry in data["stacks"].items()
                    },
                }
            )
        except FileNotFoundError:
            raise ValueError(f"{path}: no such run (runs are in {runs_dir})") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a fluxfleet run journal ({type(error).__name__}: {error})") from None
        journal = cls(path, record)
        if journal._replay():
            journal.save()  # fold the log into a fresh snapshot, so nothing is ever appended after a torn line
        return journal

    def _replay(self) -> bool:
        """Apply the changes logged since the snapshot, in order; a torn last line is a change never made.
        Returns whether there was a log."""
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return False
        for line in lines:
            try:
                change = json.loads(line)
            except ValueError:
                break  # the process died writing this line: nothing after it was written either
            stack, fields = change["stack"], change["set"]
            if "state" in fields:
                fields["state"] = StackState(fields["state"]) if stack else fields["state"]
            if not stack and "status" in fields:
                fields["status"] = RunStatus(fields["status"])
            if not stack and "stages" in fields:
                fields["stages"] = [StagePlan(**stage) for stage in fields["stages"]]
            _apply(self.record, stack, fields)
            self.record.updated_at = change.get("updated_at", self.record.updated_at)
        return True

    @property
    def log_path(self) -> Path:
        return self.path.with_suffix(".log")

    def lock(self) -> None:
        """Take the run for this process (released when the process ends, however it ends): two processes
        resuming one run would apply its stacks twice. ValueError, in one line, when another process has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path.with_suffix(".lock"), "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise ValueError(f"run {self.record.run_id} is in progress in {holder}: wait for it to end") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"process {os.getpid()}")
        self._lock_file.flush()

    def update(self, now: datetime, stack: str | None = None, **fields: Any) -> None:
        """Set fields of a stack's entry (or of the run when `stack` is None) and append the change to the log."""
        with self._lock:
            _apply(self.record, stack, fields)
            self.record.updated_at = now.isoformat()
            change = {"stack": stack, "set": fields, "updated_at": self.record.updated_at}
            self._append(json.dumps(change, default=_jsonable) + "\n")

    def _append(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line)  # one write of one line: what a dying process leaves is whole or detectably torn

    def save(self) -> None:
        """Rewrite the snapshot (temporary file beside it, then rename: never half-written), then empty the log it
        now includes. Dying between the two is harmless: replaying a change twice sets the same values."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Compact, and built from the dataclasses' own dicts: the snapshot of 1,000 stacks is written between
            # stages, while nothing runs, so it must take milliseconds (dataclasses.asdict + indent took 170 ms).
            record = vars(self.record) | {
                "stages": [vars(stage) for stage in self.record.stages],
                "stacks": {name: vars(entry) for name, entry in self.record.stacks.items()},
            }
            text = json.dumps(record, separators=(",", ":")) + "\n"
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self.log_path.unlink(missing_ok=True)


def _apply(record: RunRecord, stack: str | None, fields: dict[str, Any]) -> None:
    target: Any = record.stacks[stack] if stack else record
    for key, value in fields.items():
        setattr(target, key, value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, StagePlan):
        return vars(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def history(runs_dir: Path) -> dict[str, list[float]]:
    """Seconds each stack's update plus gate took in earlier runs (succeeded ones), for estimates."""
    durations: dict[str, list[float]] = {}
    for path in sorted(runs_dir.glob("*.json")):
        try:
            stacks = json.loads(path.read_text(encoding="utf-8"))["stacks"]
            for name, entry in stacks.items():
                if entry["state"] == StackState.succeeded and entry["started_at"] and entry["ended_at"]:
                    took = datetime.fromisoformat(entry["ended_at"]) - datetime.fromisoformat(entry["started_at"])
                    durations.setdefault(name, []).append(took.total_seconds())
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a foreign or damaged file says nothing about durations
    return durations
