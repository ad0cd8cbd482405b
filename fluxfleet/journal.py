"""The rollout journal: everything a run decided, in `.fluxfleet/runs/<run-id>.json`, rewritten atomically after
every change so that a crash or Ctrl-C loses nothing and `--resume` knows exactly where the run stopped."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, field
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
        self._lock = threading.Lock()

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
        return cls(path, record)

    def update(self, now: datetime, stack: str | None = None, **fields: Any) -> None:
        """Set fields of a stack's entry (or of the run when `stack` is None) and save."""
        with self._lock:
            target: Any = self.record.stacks[stack] if stack else self.record
            for key, value in fields.items():
                setattr(target, key, value)
            self.record.updated_at = now.isoformat()
            self.save()

    def save(self) -> None:
        """Write to a temporary file beside the journal, then rename over it: never a half-written journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(self.record), indent=2) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


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
