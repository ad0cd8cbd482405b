"""The rollout journal: everything a run decided, so that a crash or Ctrl-C loses nothing and `--resume` (or
another machine's leg of the same run) knows exactly where the run stands.

A run lives in the run-state store (fluxfleet/runstate: `.fluxfleet/runs/` on this machine, or Azure Blob Storage
beside Pulumi's state): `<run-id>.json`, a snapshot replaced whole, and `<run-id>.log`, the changes since, one JSON
line each (see `Journal`). Both survive the process dying at any point; local files are not fsynced, so an
operating-system crash may lose the last changes (resume then re-checks those stacks against the Pulumi backend).
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fluxfleet.runstate.local import LocalStore
from fluxfleet.runstate.store import Conflict, Entry, StateStore, StoreError, Unreadable
from modules.spec import DURATION_MAX, STACK_NAME, Stage, bounded, shown
from modules.spec.fleet import failure_budget, success_needed
from modules.spec.windows import WindowSpec

# A run id is a name, never a path: new_run_id's (20260101T000000Z-ab12) or one given (github-1234).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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
    partial = "partial"  # the stacks this process was given are done; others of the run are not (yet)


SourceRefs = dict[str, dict[str, str]]  # configuration -> its ref keys ({"tag": "v1.3.0"}, {"digest": ...})


@dataclass
class Attempt:
    """One direction of a stack's work in a run: its update to the fleet's refs, or its rollback."""

    __pydantic_config__ = _STRICT

    state: StackState = StackState.pending
    started_at: Timestamp = None
    # When its update succeeded and its health gate began; None while it has not, or in a journal from before
    # fluxfleet recorded it.
    gated_at: Timestamp = None
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
    # While the stack waits for a deployment window (its stage's, its own): when one opens. None once started.
    window_opens: Timestamp = None
    # What its stage's soak saw of it: "" not watched (yet), else "healthy throughout" or "turned unhealthy at T: why"
    soak: str = ""
    # A decommission's steps (fluxfleet/decommission), in order, each with its state (pending, running: started and
    # in doubt until its end is journaled, succeeded, failed); {} in a rollout.
    steps: dict[str, StackState] = field(default_factory=dict)

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
    max_failures: Count  # the stage's budget in stacks (a percentage of its stacks resolved, rounded down)
    after_stage_wait: Annotated[int, Field(ge=0, le=DURATION_MAX)]
    approval: bool
    bake_until: Timestamp = None
    rollback: bool = False  # a stack whose gate fails returns to its previous refs; past maxFailures, the stage
    # the refs the stage pins in fleet.yaml, as the run began (kubernetes, flux-extension: {"version": "1.36"})
    pins: SourceRefs = field(default_factory=dict)
    rolling_back: str | None = None  # why the whole stage is being rolled back, once it is
    pins_restored: list[str] | None = None  # what became of the stage's pins in fleet.yaml, once handled
    max_failures_percent: str | None = None  # fleet.yaml's `maxFailures: 10%`, when it was a percentage
    min_success: str | None = None  # fleet.yaml's `minSuccess: 95%`
    min_succeeded: Count = 0  # ... as stacks that must succeed (rounded up)
    windows: list[WindowSpec] = field(default_factory=list)  # when its stacks' updates may start; [] any time
    # The soak (the bake, watching the stage's stacks): how far it has watched, and whether it has ended
    soaked_until: Timestamp = None
    soak_ended: bool = False

    @staticmethod
    def of(stage: Stage, stacks: list[str], max_concurrency: int, rollback: bool = False) -> StagePlan:
        percent = stage.max_failures if isinstance(stage.max_failures, str) else None
        return StagePlan(
            stage.name,
            stacks,
            max_concurrency,
            failure_budget(stage.max_failures, len(stacks)),
            stage.after_stage_wait,
            stage.approval,
            rollback=rollback or stage.rollback,
            pins={
                **{config: pin.ref_keys for config, pin in stage.pins.items()},
                **{name: {"version": version} for name, version in stage.platform_pins.items()},
            },
            max_failures_percent=percent,
            min_success=stage.min_success,
            min_succeeded=success_needed(stage.min_success, len(stacks)),
            windows=list(stage.windows),
        )

    @property
    def budget_text(self) -> str:
        """`maxFailures 1 (10% of 15)`, `minSuccess 95% (29 of 30)`: the stage's budget as fleet.yaml set it."""
        text = f"maxFailures {self.max_failures}"
        if self.max_failures_percent:
            text += f" ({self.max_failures_percent} of {len(self.stacks)}, rounded down)"
        if self.min_success:
            text += f", minSuccess {self.min_success} ({self.min_succeeded} of {len(self.stacks)})"
        return text


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
    kind: Literal["rollout", "decommission"] = "rollout"  # what the run does to its stacks


_RECORD = TypeAdapter(RunRecord)
# A stage has ended when each of its stacks has: a deferred one was updated, its gate waits for the cluster to be back.
ENDED = frozenset({StackState.succeeded, StackState.failed, StackState.deferred})


@dataclass(frozen=True)
class StageProgress:
    """Where a stage of a run stands, across every process that records into the run."""

    name: str
    stacks: int
    succeeded: int
    failed: int
    open: list[str]  # stacks not ended (pending, running, gating, skipped)
    max_failures: int
    bake_until: str | None
    min_succeeded: int = 0
    min_success: str | None = None

    @staticmethod
    def of(record: RunRecord, stage: StagePlan) -> StageProgress:
        states = [record.stacks[name].state for name in stage.stacks]
        return StageProgress(
            stage.name,
            len(states),
            states.count(StackState.succeeded),
            states.count(StackState.failed),
            [name for name, state in zip(stage.stacks, states, strict=True) if state not in ENDED],
            stage.max_failures,
            stage.bake_until,
            stage.min_succeeded,
            stage.min_success,
        )

    @property
    def passed(self) -> bool:
        """Every stack ended, within the stage's failure budget and over its minSuccess: the next stage may start
        once it has baked."""
        return not self.open and self.failure is None

    @property
    def failure(self) -> str | None:
        """Why the stage failed, as far as it went: more failures than its maxFailures, or (once every stack ended)
        fewer successes than its minSuccess; None: it has not failed."""
        if self.failed > self.max_failures:
            return f"{self.failed} stack(s) failed, more than its maxFailures {self.max_failures}"
        if not self.open and self.succeeded < self.min_succeeded:
            return (
                f"{self.succeeded} of {self.stacks} stack(s) succeeded, under its minSuccess {self.min_success} "
                f"({self.min_succeeded})"
            )
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stacks": self.stacks,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": len(self.open),
            "maxFailures": self.max_failures,
            "minSuccess": self.min_success,
            "minSucceeded": self.min_succeeded,
            "finished": self.passed,
            "failure": self.failure,
            "bakeUntil": self.bake_until,
        }


class RunExists(ValueError):
    """A new run's id is taken already."""


class Journal:
    """One run's record, kept in a state store (fluxfleet/runstate): a snapshot `<run-id>.json` rewritten when the
    run starts, ends or finishes a stage, plus `<run-id>.log`, one JSON line appended per change in between.
    Appending keeps a change cheap at fleet scale (rewriting the snapshot of 1,000 stacks costs ~40 ms; a line,
    microseconds) and safe from any number of writers: every matrix leg of a rollout, on any machine, records into
    one run. Replaying the lines over the snapshot gives the record back.

    Writers never lose each other's changes: each change is its own line, and folding the log into the snapshot
    (`save`) writes the snapshot only if no one rewrote it since it was read (its ETag), then deletes the log only
    if no one appended since. A line folded but left in the log sets again what it set: harmless.

    A stack's entry is changed only by the process that holds the stack's lock, which reads the run again
    (`refresh`) after taking it: what another process did to that stack is all there before it decides."""

    def __init__(self, store: StateStore, record: RunRecord, seen: _Seen | None = None):
        self.store = store
        self.record = record
        # One change at a time from the worker threads, and a refresh is one of them: a read of the store that a
        # change of this process overtook would set that change back when applied.
        self._lock = threading.Lock()
        self._seen = seen or _Seen()  # what of the store the record holds: a refresh reads only what is new

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def where(self) -> str:
        """The snapshot, for messages."""
        return f"{self.store.where.rstrip('/')}/{self.run_id}.json"

    @staticmethod
    def new_run_id(now: datetime) -> str:
        return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"

    @classmethod
    def create(cls, runs: StateStore | Path, record: RunRecord) -> Journal:
        """A new run (RunExists when its id is taken; StoreError when the store cannot be used)."""
        store = _store(runs)
        try:
            etag = store.write(_snapshot_name(record.run_id), _snapshot(record), new=True)
        except Conflict:
            raise RunExists(f"run {record.run_id} exists already in {store.where}") from None
        return cls(store, record, _Seen(etag))

    @classmethod
    def load(cls, runs: StateStore | Path, run_id: str) -> Journal:
        """A run as its store says now (ValueError in one line when it is missing or not a journal)."""
        store = _store(runs)
        return cls(store, *_read(store, check_run_id(run_id, store)))

    @classmethod
    def find(cls, runs: StateStore | Path, run_id: str) -> Journal | None:
        """`load`, but None when there is no such run."""
        store = _store(runs)
        found = store.read(_snapshot_name(check_run_id(run_id, store)))
        return None if found is None else cls(store, *_read(store, run_id, found))

    @classmethod
    def join(cls, runs: StateStore | Path, record: RunRecord, stage_order: Sequence[str] = ()) -> Journal:
        """The run of `record.run_id`, created as `record` if there is none, else with `record`'s stages and stacks
        added where it lacks them (a stage it has keeps its rules; a stack it has keeps its entry), its stages in
        `stage_order` (fleet.yaml's)."""
        store = _store(runs)
        for _ in range(CONFLICT_RETRIES):
            try:
                return cls.create(store, record)
            except RunExists:
                pass
            found = store.read(_snapshot_name(record.run_id))
            if found is None:
                continue  # deleted meanwhile: create it again
            current, seen = _read(store, record.run_id, found)
            if not _extend(current, record, stage_order):
                return cls(store, current, seen)
            try:
                etag = store.write(_snapshot_name(record.run_id), _snapshot(current), etag=seen.snapshot)
            except Conflict:
                continue  # another writer changed it: read it again
            return cls(store, current, dataclasses.replace(seen, snapshot=etag))
        raise StoreError(f"{store.where}: run {record.run_id} kept changing under this process: try again")

    def refresh(self) -> None:
        """Read the run again, taking in what other processes recorded; the record's objects are updated in place,
        so what holds one of its stages or entries sees the news. While the snapshot is the one read last, only the
        lines appended to the log since are read and applied: a refresh costs what changed, not the run's size."""
        with self._lock:
            seen = self._seen
            if seen.snapshot is not None:
                log = self.store.read(_log_name(self.run_id), offset=seen.log_bytes)
                # The log read goes with the snapshot read last only if that snapshot is still current after it: a
                # save by another writer writes its snapshot before it deletes the log it folded in, so a new log
                # (whose lines at this offset are not the ones that follow ours) comes only after a new snapshot.
                if self.store.head(_snapshot_name(self.run_id)) == seen.snapshot:
                    if log is None and seen.log_bytes == 0:
                        return  # no log yet: nothing new
                    if log is not None and log.etag == seen.log:
                        return
                    if log is not None:
                        whole = log.data[: log.data.rfind(b"\n") + 1]  # a line still being written waits
                        if _apply_logged(self.record, whole):
                            self._seen = dataclasses.replace(seen, log=log.etag, log_bytes=seen.log_bytes + len(whole))
                            return
            fresh, self._seen = _read(self.store, self.run_id)
            _merge(self.record, fresh)

    def update(self, now: datetime, stack: str | None = None, *, stage: str | None = None, **fields: Any) -> None:
        """Set fields of a stack's entry, of a stage's plan, or of the run (neither given), and append the change
        to the log."""
        with self._lock:
            _apply(self.record, stack, stage, fields)
            self.record.updated_at = now.isoformat()
            change = {"stack": stack, "set": fields, "updated_at": self.record.updated_at}
            if stage is not None:
                change["stage"] = stage
            self.store.append(_log_name(self.run_id), (json.dumps(change, default=_jsonable) + "\n").encode())

    def save(self) -> None:
        """Fold the log into the snapshot: the snapshot rewritten (only if no one rewrote it since it was read),
        then the log deleted (only if no one appended since). Dying between the two is harmless: replaying a change
        twice sets the same values."""
        with self._lock:
            for _ in range(CONFLICT_RETRIES):
                snapshot = self.store.read(_snapshot_name(self.run_id))
                if snapshot is None:
                    raise ValueError(f"{self.where}: the run's journal is gone")
                record, seen = _read(self.store, self.run_id, snapshot)
                try:
                    etag = self.store.write(_snapshot_name(self.run_id), _snapshot(record), etag=seen.snapshot)
                except Conflict:
                    continue
                self._seen = _Seen(etag)
                if seen.log is not None:
                    try:
                        self.store.delete(_log_name(self.run_id), etag=seen.log)
                    except Conflict:
                        # Appended to since: the lines stay, replayed over the new snapshot as before; the next
                        # refresh reads the run whole.
                        self._seen = _Seen()
                _merge(self.record, record)
                return
            raise StoreError(f"{self.where}: the run kept changing under this process: try again")


CONFLICT_RETRIES = 20


@dataclass(frozen=True)
class _Seen:
    """What of a run's store entries a record holds: the snapshot's ETag, and how much of the log (bytes, ETag)."""

    snapshot: str | None = None  # None: unknown, read the run whole
    log: str | None = None
    log_bytes: int = 0


def check_run_id(run_id: str, store: StateStore | Path | None = None) -> str:
    """`run_id` when it is a run id; ValueError for what is not (a path, say)."""
    if not RUN_ID.fullmatch(run_id):
        where = f" (runs are in {_store(store).where})" if store is not None else ""
        raise ValueError(
            f"{shown(run_id)} is not a run id: a run id is a name of letters, digits, `-`, `_` and `.` "
            f"(as 20260101T000000Z-ab12, or github-1234){where}"
        )
    return run_id


def _store(runs: StateStore | Path) -> StateStore:
    return LocalStore(runs) if isinstance(runs, Path) else runs


def _snapshot_name(run_id: str) -> str:
    return f"{run_id}.json"


def _log_name(run_id: str) -> str:
    return f"{run_id}.log"


def _snapshot(record: RunRecord) -> bytes:
    # Compact, and built from the dataclasses' own dicts: the snapshot of 1,000 stacks is written between stages,
    # while nothing runs, so it must take milliseconds (dataclasses.asdict + indent took 170 ms).
    return (json.dumps(_plain(record), separators=(",", ":"), default=_jsonable) + "\n").encode()


def _extend(record: RunRecord, more: RunRecord, stage_order: Sequence[str]) -> bool:
    """`more`'s stages and stacks added to `record` where it lacks them, stages in `stage_order` (those it does not
    name after, as they were); whether any was added."""
    changed = False
    stages = {stage.name: stage for stage in record.stages}
    for stage in more.stages:
        if stage.name not in stages:
            stages[stage.name] = dataclasses.replace(stage, stacks=[])
            record.stages.append(stages[stage.name])
        for name in stage.stacks:
            if name not in record.stacks:
                stages[stage.name].stacks.append(name)
                record.stacks[name] = more.stacks[name]
                changed = True
    order = {name: index for index, name in enumerate(stage_order)}
    record.stages.sort(key=lambda stage: order.get(stage.name, len(order)))  # stable
    return changed


def _merge(into: RunRecord, fresh: RunRecord) -> None:
    for key, value in vars(fresh).items():
        if key not in ("stages", "stacks"):
            setattr(into, key, value)
    known = {stage.name: stage for stage in into.stages}
    stages = []
    for stage in fresh.stages:
        if stage.name in known:
            vars(known[stage.name]).update(vars(stage))
            stages.append(known[stage.name])
        else:
            stages.append(stage)
    into.stages[:] = stages
    for name, entry in fresh.stacks.items():
        if name in into.stacks:
            vars(into.stacks[name]).update(vars(entry))
        else:
            into.stacks[name] = entry


def _plain(record: RunRecord) -> dict[str, Any]:
    return vars(record) | {
        "stages": [vars(stage) for stage in record.stages],
        "stacks": {name: _jsonable(entry) for name, entry in record.stacks.items()},
    }


def _read(store: StateStore, run_id: str, snapshot: Entry | None = None) -> tuple[RunRecord, _Seen]:
    """The record of a run: its snapshot (`snapshot`, or read now) with the changes logged since replayed over it,
    validated whole, and what of the store it holds. ValueError with one line when it is missing or not a journal;
    StoreError when the store cannot be read."""
    where = f"{store.where.rstrip('/')}/{_snapshot_name(run_id)}"
    try:
        snapshot, log = _read_consistent(store, run_id, snapshot)
    except Unreadable as error:
        raise ValueError(f"{where}: not a fluxfleet run journal ({error})") from None
    if snapshot is None:
        raise ValueError(f"{where}: no such run (runs are in {store.where})")
    try:
        data = json.loads(snapshot.data.decode("utf-8"))
        if log is not None:
            _replay(data, log.data.decode("utf-8", errors="replace"), _log_name(run_id))
        record = _RECORD.validate_python(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        place = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{where}: not a fluxfleet run journal ({bounded(place, 160)}: {first['msg']})") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise ValueError(f"{where}: not a fluxfleet run journal ({bounded(str(error), 160)})") from None
    if record.run_id != run_id:
        raise ValueError(f"{where}: not a fluxfleet run journal (it is run {shown(record.run_id)}'s)")
    for stage in record.stages:
        for name in stage.stacks:
            if name not in record.stacks:
                raise ValueError(
                    f"{where}: not a fluxfleet run journal (stage {shown(stage.name)} lists {name}, which has no entry)"
                )
    if log is None:
        return record, _Seen(snapshot.etag)
    return record, _Seen(snapshot.etag, log.etag, log.data.rfind(b"\n") + 1)


def _read_consistent(store: StateStore, run_id: str, snapshot: Entry | None) -> tuple[Entry | None, Entry | None]:
    """A snapshot and the log that goes with it. Another writer's `save` between the two reads (its snapshot
    written, the log it folded in deleted, new lines appended) would pair this older snapshot with a log that lacks
    what was folded: changes lost, a stack's attempt among them. A save writes the snapshot before it deletes the
    log, so a snapshot still current after the log was read was current while it was read: read again until so."""
    for _ in range(CONFLICT_RETRIES):
        snapshot = snapshot or store.read(_snapshot_name(run_id))
        if snapshot is None:
            return None, None
        log = store.read(_log_name(run_id))
        if store.head(_snapshot_name(run_id)) == snapshot.etag:
            return snapshot, log
        snapshot = None
    raise StoreError(f"{store.where}: run {run_id} kept changing under this process: try again")


def _replay(data: dict[str, Any], log: str, log_name: str) -> None:
    """Apply the logged changes, in order, to the snapshot's data. A line that is not whole (its writer died
    writing it) is a change never made."""
    for number, line in enumerate(log.splitlines(keepends=True), 1):
        try:
            change = json.loads(line)
        except ValueError:
            continue
        stack, stage, fields = change["stack"], change.get("stage"), change["set"]
        if stage is not None:
            target = next((plan for plan in data["stages"] if plan.get("name") == stage), None)
        else:
            target = data if stack is None else data["stacks"].get(stack)
        if not isinstance(target, dict) or not isinstance(fields, dict):
            what = f"stage {shown(stage)}" if stage is not None else f"stack {shown(stack)}"
            raise ValueError(f"line {number} of {log_name} changes {what}, which the run does not have")
        target.update(fields)
        data["updated_at"] = change.get("updated_at", data.get("updated_at", ""))


_ENTRY = TypeAdapter(StackEntry)
_STAGE = TypeAdapter(StagePlan)


def _apply_logged(record: RunRecord, lines: bytes) -> bool:
    """Logged changes applied to the record's objects, each target validated as a whole journal's would be. False
    when one cannot be applied so (a change of the run itself, of what the record lacks, or not valid): the caller
    reads the run whole, which applies or refuses it as `_read` does."""
    for line in lines.decode("utf-8", errors="replace").splitlines():
        try:
            change = json.loads(line)
        except ValueError:
            continue  # not a whole line: its writer died writing it, as `_replay` skips it
        try:
            stack, stage, fields = change["stack"], change.get("stage"), change["set"]
            if stage is not None:
                plan = next(plan for plan in record.stages if plan.name == stage)
                vars(plan).update(vars(_STAGE.validate_python(vars(plan) | fields)))
            elif stack is not None:
                entry = record.stacks[stack]
                vars(entry).update(vars(_ENTRY.validate_python(_jsonable(entry) | fields)))
            else:
                return False
        except (KeyError, TypeError, AttributeError, StopIteration, ValueError):  # ValueError: ValidationError too
            return False
        record.updated_at = change.get("updated_at", record.updated_at)
    return True


def _apply(record: RunRecord, stack: str | None, stage: str | None, fields: dict[str, Any]) -> None:
    if stage is not None:
        target: Any = next(plan for plan in record.stages if plan.name == stage)
    else:
        target = record.stacks[stack] if stack else record
    for key, value in fields.items():
        setattr(target, key, value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):  # a stage's deployment window
        return value.model_dump(mode="json")
    if isinstance(value, StagePlan | Rollback):
        return vars(value)
    if isinstance(value, StackEntry):
        return vars(value) | {"rollback": vars(value.rollback) if value.rollback else None}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def history(runs: StateStore | Path) -> dict[str, list[float]]:
    """Seconds each stack's update plus gate took in earlier rollouts (succeeded ones), for estimates."""
    store = _store(runs)
    durations: dict[str, list[float]] = {}
    try:
        names = [name for name in store.names() if name.endswith(".json")]
    except StoreError:
        return durations  # an estimate without history is still an estimate
    for name in names:
        try:
            found = store.read(name)
            data = json.loads(found.data.decode("utf-8")) if found else {"stacks": {}}
            if data.get("kind", "rollout") != "rollout":
                continue  # a decommission's steps say nothing about how long an update takes
            for stack, entry in data["stacks"].items():
                if entry["state"] == StackState.succeeded and entry["started_at"] and entry["ended_at"]:
                    took = datetime.fromisoformat(entry["ended_at"]) - datetime.fromisoformat(entry["started_at"])
                    durations.setdefault(stack, []).append(took.total_seconds())
        except (StoreError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue  # a foreign or damaged entry says nothing about durations
    return durations
