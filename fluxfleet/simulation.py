"""A fake Pulumi and a fake clock, for simulating rollouts: the tests' scheduling checks and the makespan benchmark.

`FakeRunner` implements `StackRunner` without Pulumi: each `up` takes the time it is given (a real sleep, so
concurrency is real), succeeds or fails as scripted, keeps a history like a Pulumi backend's, and records what ran
at once. `FakeClock` is a `Clock` whose sleeps return at once and move time forward.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fluxfleet.clock import Clock
from fluxfleet.runner import NoSuchStack, OnProgress, OperationResult, RunnerError, UpdateRecord


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)):
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        self.sleeps.append(seconds)
        self.advance(seconds)
        return False


@dataclass
class FakeRunner:
    clock: Clock
    wall_seconds: Mapping[str, float] = field(default_factory=dict)  # real time an `up` of a stack takes
    default_wall_seconds: float = 0.0
    failing: Mapping[str, str] = field(default_factory=dict)  # stack -> the error its update fails with
    pending: dict[str, list[str]] = field(default_factory=dict)  # stack -> pending operation URNs
    previews: dict[str, OperationResult] = field(default_factory=dict)  # stack -> what its preview finds
    stack_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack -> its outputs
    on_up: Callable[[str], None] | None = None  # called as an update starts (tests stop or crash a run there)
    applied: Counter[str] = field(default_factory=Counter)
    rollbacks: list[tuple[str, dict[str, dict[str, str]]]] = field(default_factory=list)  # (stack, refs) per rollback
    updates: dict[str, list[UpdateRecord]] = field(default_factory=dict)  # stack -> its history, newest first
    started: list[str] = field(default_factory=list)
    max_in_flight: int = 0
    cluster_of: Callable[[str], str] | None = None  # to check that no two updates run on one cluster
    cluster_overlaps: list[str] = field(default_factory=list)
    resources: dict[str, list[str]] = field(default_factory=dict)  # stack -> the URNs its state lists
    destroyed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (stack, URNs) per destroy
    removed: list[str] = field(default_factory=list)  # stacks `remove_stack` removed
    _in_flight: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def up(
        self,
        stack: str,
        *,
        refresh: bool = False,
        message: str | None = None,
        lock_fd: int | None = None,  # an in-process update cannot outlive its caller: nothing to hold
        on_progress: OnProgress | None = None,
        cancel: threading.Event | None = None,
        rollback_refs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> OperationResult:
        started = self.clock.now()
        if rollback_refs is not None:
            self.rollbacks.append((stack, {name: dict(ref) for name, ref in rollback_refs.items()}))
        with self._lock:
            cluster = self.cluster_of(stack) if self.cluster_of else stack
            if any((self.cluster_of(other) if self.cluster_of else other) == cluster for other in self._in_flight):
                self.cluster_overlaps.append(stack)
            self._in_flight.add(stack)
            self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
            self.started.append(stack)
            self.applied[stack] += 1
            history = self.updates.setdefault(stack, [])
            running = UpdateRecord("update", "in-progress", started, None, message or "")
            history.insert(0, running)
        if self.on_up:
            self.on_up(stack)
        if on_progress:
            on_progress(f"updating {stack}")
        # An unset Event's wait is a sleep; a set one (a second Ctrl-C) ends the update early, as SIGINT would.
        cancelled = (cancel or threading.Event()).wait(self.wall_seconds.get(stack, self.default_wall_seconds))
        error = "cancelled" if cancelled else self.failing.get(stack)
        with self._lock:
            self._in_flight.discard(stack)
            result = "failed" if error else "succeeded"
            history[history.index(running)] = UpdateRecord("update", result, started, self.clock.now(), message or "")
        if error:
            return OperationResult(stack, ok=False, error=error, cancelled=cancelled, summary={"update": 1})
        return OperationResult(stack, ok=True, summary={"update": 1, "same": 7})

    def preview(self, stack: str, *, refresh: bool = True, on_progress: OnProgress | None = None) -> OperationResult:
        return self.previews.get(stack) or OperationResult(stack, ok=True, summary={"same": 8})

    def history(self, stack: str, limit: int) -> list[UpdateRecord]:
        return list(self.updates.get(stack, ())[:limit])

    def pending_operations(self, stack: str) -> list[str]:
        return list(self.pending.get(stack, ()))

    def outputs(self, stack: str) -> dict[str, Any]:
        return dict(self.stack_outputs.get(stack, {}))

    def destroy(
        self,
        stack: str,
        *,
        targets: Sequence[str] | None = None,
        message: str | None = None,
        lock_fd: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> OperationResult:
        """As Pulumi: the targets (every resource, for none) leave the state; a target the state does not list is
        nothing to do; the destroy is recorded in the history."""
        started = self.clock.now()
        with self._lock:
            if stack in self.removed:
                return OperationResult(stack, ok=False, error=f"no stack named '{stack}' found")
            state = self.resources.setdefault(stack, [])
            gone = tuple(urn for urn in state if targets is None or urn in targets)
            state[:] = [urn for urn in state if urn not in gone]
            self.destroyed.append((stack, gone))
            error = self.failing.get(stack)
            record = UpdateRecord("destroy", "failed" if error else "succeeded", started, started, message or "")
            self.updates.setdefault(stack, []).insert(0, record)
        if error:
            return OperationResult(stack, ok=False, error=error)
        return OperationResult(stack, ok=True, summary={"delete": len(gone)} if gone else {})

    def managed_resources(self, stack: str) -> list[str] | None:
        return None if stack in self.removed else list(self.resources.get(stack, ()))

    def remove_stack(self, stack: str) -> None:
        with self._lock:
            if stack in self.removed:
                raise NoSuchStack(f"{stack}: no stack named '{stack}' found")
            if self.resources.get(stack):
                raise RunnerError(f"{stack}: 'stack' still has resources; use --force")
            self.removed.append(stack)
