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

import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError

from fluxfleet.rollout.locks import FileLock, this_process
from modules.spec import DURATION_MAX, STACK_NAME, SpecError, Stage, bounded, read_text, shown

RUNS_DIR = Path(".fluxfleet") / "runs"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")  # what new_run_id makes: a run id is never a path


def _timestamp(value: str | None) -> str | None:
    if value is not None:
        datetime.fromisoformat(value)  # ValueError: not a time
    return value


Timestamp = Annotated[str | None, AfterValidator(_timestamp)]
StackName = Annotated[str, Field(pattern=f"^{STACK_NAME.pattern}$")]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
# A journal is read back strictly: a file edited by hand or damaged is refused, not half-understood.
_STRICT = ConfigDict(extra="forbid")


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
    rolled_back = "rolled-back"  # ... and that stage, which rolls back, was returned to the refs it ran before
    awaiting_approval = "awaiting-approval"
    interrupted = "interrupted"  # Ctrl-C: stopped scheduling; resumable


SourceRefs = dict[str, dict[str, str]]  # configuration -> its ref keys ({"tag": "v1.3.0"}, {"digest": ...})


@dataclass
class Attempt:
    """One direction of a stack's work in a run: its update to the fleet's refs, or its rollback."""

    __pydantic_config__ = _STRICT

    state: StackState = StackState.pending
    started_at: Timestamp = None
    ended_at: Timestamp = None
    message: str = ""
    changes: dict[str, Count] = field(default_factory=dict)
    attempts: Count = 0  # updates started in this direction
    # The update this run started last and whose outcome it has not learnt yet (it is the update's message in the
    # stack's Pulumi history). While it is set the stack is in doubt: nothing is applied to it before the backend
    # has said what became of that update.
    update_id: str | None = None


@dataclass
class Rollback(Attempt):
    """A stack's return to the refs it ran before the run updated it: applied once, never retried by itself."""

    refs: SourceRefs = field(default_factory=dict)  # the configurations rolled back, at the refs they return to
    reason: str = ""  # why: the stack's failed gate, or its stage's halt


@dataclass
class StackEntry(Attempt):
    stage: str = field(default="", kw_only=True)
    # What the stack ran before this run updated it (its `fluxConfigurationRefs` output), read before the update of
    # a stage that rolls back; {} when it exported none. None: not read.
    previous_refs: SourceRefs | None = None
    refs: SourceRefs | None = None  # what its update deploys
    rollback: Rollback | None = None

    @property
    def runs(self) -> SourceRefs | None:
        """The refs the stack runs now as far as this run knows: None when its last update's outcome is not known."""
        if self.rollback is not None and self.rollback.state is StackState.succeeded:
            return {**(self.refs or {}), **self.rollback.refs}
        if self.rollback is None and self.state in (StackState.succeeded, StackState.deferred):
            return self.refs
        return None


@dataclass
class StagePlan:
    """A stage as the run fixed it when it began: a resumed run keeps its plan."""

    __pydantic_config__ = _STRICT

    name: str
    stacks: list[StackName]
    max_concurrency: Annotated[int, Field(ge=1, le=1000)]
    max_failures: Count
    after_stage_wait: Annotated[int, Field(ge=0, le=DURATION_MAX)]
    approval: bool
    bake_until: Timestamp = None
    rollback: bool = False  # a stack whose gate fails returns to its previous refs; past maxFailures, the stage
    pins: SourceRefs = field(default_factory=dict)  # the refs the stage pins in fleet.yaml, as the run began
    rolling_back: str | None = None  # why the whole stage is being rolled back, once it is
    pins_restored: list[str] | None = None  # what became of the stage's pins in fleet.yaml, once handled

    @staticmethod
    def of(stage: Stage, stacks: list[str], max_concurrency: int, rollback: bool = False) -> StagePlan:
        return StagePlan(
            stage.name,
            stacks,
            max_concurrency,
            stage.max_failures,
            stage.after_stage_wait,
            stage.approval,
            rollback=rollback or stage.rollback,
            pins={config: pin.ref_keys for config, pin in stage.pins.items()},
        )


@dataclass
class RunRecord:
    __pydantic_config__ = _STRICT

    run_id: Annotated[str, Field(pattern=f"^{RUN_ID.pattern}$")]
    fleet_file: str
    started_at: Timestamp
    status: RunStatus
    stages: list[StagePlan]
    stacks: dict[StackName, StackEntry]
    approved: list[str] = field(default_factory=list)
    reason: str = ""
    updated_at: str = ""


_RECORD = TypeAdapter(RunRecord)


class RunTaken(ValueError):
    """Another process is running the run."""


class Journal:
    """One run's record and its file. Every mutation goes through `update`, which saves under a lock.

    A run is taken by one process at a time: `create` and `open` take the run's lock before they read or write
    anything, so what a process reads is what the last holder wrote. `load` only reads (a dry run, a report)."""

    def __init__(self, path: Path, record: RunRecord):
        self.path = path
        self.record = record
        self._lock = threading.Lock()  # one change at a time from the worker threads
        self._run_lock: FileLock | None = None  # held while this process runs the run

    @staticmethod
    def new_run_id(now: datetime) -> str:
        return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"

    @classmethod
    def create(cls, runs_dir: Path, record: RunRecord) -> Journal:
        journal = cls(runs_dir / f"{record.run_id}.json", record)
        journal._take()
        journal.save()
        return journal

    @classmethod
    def open(cls, runs_dir: Path, run_id: str) -> Journal:
        """A run to continue, taken for this process first and read after (ValueError in one line when another
        process has it, or it is missing or unreadable)."""
        path = run_path(runs_dir, run_id)
        journal = cls(path, None)  # type: ignore[arg-type] - read below, once the run is ours
        journal._take()
        try:
            journal.record, logged = _read(path, runs_dir)
        except ValueError:
            journal.release()
            raise
        if logged:
            journal.save()  # fold the log into a fresh snapshot, so nothing is ever appended after a torn line
        return journal

    @classmethod
    def load(cls, runs_dir: Path, run_id: str) -> Journal:
        """A run as its files say now, changing nothing (not even folding its log)."""
        path = run_path(runs_dir, run_id)
        return cls(path, _read(path, runs_dir)[0])

    @property
    def log_path(self) -> Path:
        return self.path.with_suffix(".log")

    def _take(self) -> None:
        """Take the run for this process (released when the process ends, however it ends): two processes
        resuming one run would apply its stacks twice. ValueError, in one line, when another process has it."""
        lock = FileLock(self.path.with_suffix(".lock"))
        try:
            taken = lock.try_acquire(this_process(f"fluxfleet rollout {self.path.stem}"))
        except OSError as error:
            raise ValueError(f"{self.path.parent}: cannot keep runs there: {error.strerror}") from None
        if not taken:
            raise RunTaken(f"run {self.path.stem} is in progress in {lock.holder()}: wait for it to end")
        self._run_lock = lock

    def release(self) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

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
            text = json.dumps(_plain(self.record), separators=(",", ":")) + "\n"
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self.log_path.unlink(missing_ok=True)


def run_path(runs_dir: Path, run_id: str) -> Path:
    """Where a run's journal is; ValueError for what is no run id (a path, say)."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"{shown(run_id)} is not a run id: a run id looks like 20260101T000000Z-ab12 (runs are in {runs_dir})"
        )
    return runs_dir / f"{run_id}.json"


def _plain(record: RunRecord) -> dict[str, Any]:
    return vars(record) | {
        "stages": [vars(stage) for stage in record.stages],
        "stacks": {name: _jsonable(entry) for name, entry in record.stacks.items()},
    }


def _read(path: Path, runs_dir: Path) -> tuple[RunRecord, bool]:
    """The record of a run: its snapshot with the changes logged since replayed over it, validated whole.
    Returns it and whether there was a log. ValueError with one line when it is missing or not a journal."""
    if not path.exists():
        raise ValueError(f"{path}: no such run (runs are in {runs_dir})")
    try:
        data = json.loads(_text(path))
        logged = _replay(data, path.with_suffix(".log"))
        record = _RECORD.validate_python(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: not a fluxfleet run journal ({bounded(where, 160)}: {first['msg']})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise ValueError(f"{path}: not a fluxfleet run journal ({bounded(str(error), 160)})") from None
    for stage in record.stages:
        for name in stage.stacks:
            if name not in record.stacks:
                raise ValueError(
                    f"{path}: not a fluxfleet run journal (stage {shown(stage.name)} lists {name}, which has no entry)"
                )
    return record, logged


def _text(path: Path) -> str:
    """A journal file's text, read as any input is (a FIFO or a device in its place cannot hang a run)."""
    try:
        return read_text(path, str(path))
    except SpecError as error:
        raise ValueError(error.issues[0].message) from None


def _replay(data: dict[str, Any], log_path: Path) -> bool:
    """Apply the changes logged since the snapshot, in order, to the snapshot's data; a torn last line is a change
    never made. Returns whether there was a log."""
    if not log_path.exists():
        return False
    lines = _text(log_path).splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        try:
            change = json.loads(line)
        except ValueError:
            break  # the process died writing this line: nothing after it was written either
        stack, fields = change["stack"], change["set"]
        target = data if stack is None else data["stacks"].get(stack)
        if not isinstance(target, dict) or not isinstance(fields, dict):
            raise ValueError(
                f"line {number} of {log_path.name} changes stack {shown(stack)}, which the run does not have"
            )
        target.update(fields)
        data["updated_at"] = change.get("updated_at", data.get("updated_at", ""))
    return True


def _apply(record: RunRecord, stack: str | None, fields: dict[str, Any]) -> None:
    target: Any = record.stacks[stack] if stack else record
    for key, value in fields.items():
        setattr(target, key, value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, StagePlan | Rollback):
        return vars(value)
    if isinstance(value, StackEntry):
        return vars(value) | {"rollback": vars(value.rollback) if value.rollback else None}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def history(runs_dir: Path) -> dict[str, list[float]]:
    """Seconds each stack's update plus gate took in earlier runs (succeeded ones), for estimates."""
    durations: dict[str, list[float]] = {}
    for path in sorted(runs_dir.glob("*.json")):
        try:
            stacks = json.loads(_text(path))["stacks"]
            for name, entry in stacks.items():
                if entry["state"] == StackState.succeeded and entry["started_at"] and entry["ended_at"]:
                    took = datetime.fromisoformat(entry["ended_at"]) - datetime.fromisoformat(entry["started_at"])
                    durations.setdefault(name, []).append(took.total_seconds())
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue  # a foreign or damaged file says nothing about durations
    return durations
