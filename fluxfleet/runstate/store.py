"""Where a rollout's state lives: its journals, its locks (one per run, one per stack, one per fleet.yaml) and the
durations of earlier runs. One interface, two backends: files on this machine (`LocalStore`, the default) and a
container of Azure Blob Storage beside Pulumi's own state (`BlobStore`, chosen as Pulumi's backend is, by
PULUMI_BACKEND_URL=azblob://CONTAINER). The run logic (fluxfleet/rollout/journal.py, the orchestrator) is written
once, against this interface.

An entry is named by a relative path ("runs/20260101T000000Z-ab12.json"). Every write of a whole entry can be
conditional on what the writer read (its ETag): two writers never lose each other's update, the second is told
(`Conflict`) and reads again. A log is appended to, never rewritten, so appends from any number of writers are all
kept. A lock is exclusive across every process that uses the store, on any machine, and dies with its holders.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import threading

    from fluxfleet.clock import Clock


class StoreError(Exception):
    """The store cannot be used: one line saying which store and why (unreachable, refused, no such container)."""


class Unreadable(StoreError):
    """An entry is there but cannot be read as one (not a regular file, say)."""


class Conflict(StoreError):
    """A conditional write or delete found the entry changed (or present, or gone) since it was read: read again."""


@dataclass(frozen=True)
class Entry:
    data: bytes
    etag: str  # changes with every write or append; what a conditional write compares


class StoreLock(Protocol):
    def try_acquire(self, holder: str) -> bool:
        """Take the lock if it is free, recording `holder` (who, for the messages of those who wait); False when
        another holds it."""
        ...

    def holder(self) -> str:
        """Who holds the lock, as they described themselves."""
        ...

    def still_held(self) -> bool:
        """Whether this holder still holds the lock: a lease can be lost while held (broken by another, or expired
        while it could not be renewed), an flock cannot."""
        ...

    @property
    def fd(self) -> int:
        """A descriptor whose last close releases the lock: handed to a child process (`pulumi up`) it keeps the
        lock held for as long as the child runs, even when this process dies first."""
        ...

    def release(self) -> None:
        """Let the lock go (it stays held while a child given `fd` runs)."""
        ...


LOCK_POLL_SECONDS = 1.0
# Longer than any update or destroy: a stack's lock held longer is a hung process's.
STACK_LOCK_WAIT = timedelta(hours=3)


def acquire(
    lock: StoreLock,
    holder: str,
    clock: Clock,
    waiting: Callable[[str], None],
    stop: threading.Event | None = None,
    patience: timedelta = STACK_LOCK_WAIT,
) -> Literal["held", "stopped", "timed out"]:
    """Take `lock` as `holder`, waiting while another holds it (`waiting(who)` is told once, when the wait begins):
    "held"; "stopped" when `stop` is set meanwhile; "timed out" past `patience`."""
    deadline = clock.now() + patience
    told = False
    while not lock.try_acquire(holder):
        if not told:
            waiting(lock.holder())
            told = True
        if clock.now() >= deadline:
            return "timed out"
        if clock.sleep(LOCK_POLL_SECONDS, stop):
            return "stopped"
    return "held"


class StateStore(Protocol):
    @property
    def where(self) -> str:
        """The store, for messages: a directory, or azblob://CONTAINER/.fluxfleet."""
        ...

    def read(self, name: str, *, offset: int = 0) -> Entry | None:
        """The entry (its bytes from `offset` on: what was appended since a reader read that much) and its ETag;
        None when there is none."""
        ...

    def head(self, name: str) -> str | None:
        """The entry's ETag, without its bytes; None when there is none."""
        ...

    def write(self, name: str, data: bytes, *, etag: str | None = None, new: bool = False) -> str:
        """Replace the entry whole (readers see the old one or the new one, never half). `etag`: only if the entry
        is still that one; `new`: only if there is none. Conflict otherwise. Returns the new ETag."""
        ...

    def append(self, name: str, data: bytes) -> None:
        """Add `data` at the end of the entry (created empty first when there is none), in one piece: appends of
        several writers are all kept, each whole."""
        ...

    def delete(self, name: str, *, etag: str | None = None) -> None:
        """Remove the entry (none: nothing to do). `etag`: only if it is still that one, else Conflict."""
        ...

    def names(self, prefix: str = "") -> list[str]:
        """The names of the store's own entries that begin with `prefix`, sorted (locks, and what is in folders
        below the store, are not among them)."""
        ...

    def lock(self, name: str) -> StoreLock:
        """The lock of that name ("locks/STACK"); not taken yet."""
        ...


def this_process(what: str) -> str:
    """How a lock's holder describes itself: the process, its machine, and what it does."""
    return f"process {os.getpid()} on {socket.gethostname()} ({what})"
