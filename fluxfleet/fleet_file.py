"""Every write of fleet.yaml (a promotion's pin, a rollback's restore of one): one writer at a time, none lost.

A writer takes the file's writer lock, re-reads the file under it and applies its edit to what it holds now, not to
what it read before (another writer may have written since). It writes a temporary file beside the file, fsyncs it,
renames it over the file and fsyncs the directory: a reader never sees half a file, and a crash leaves the old file
or the new one. A symlinked fleet.yaml is edited at its target and stays a link.

The lock is a lock of the run-state store (fluxfleet/runstate): an flock for the writers of one machine, a blob
lease for writers anywhere when the runs are kept in Azure Blob Storage.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from fluxfleet.runstate.backends import fleet_lock_store
from fluxfleet.runstate.store import StoreLock
from modules.spec.files import read_text

LOCK_TIMEOUT = 60.0  # seconds a writer waits for another: a write holds the lock for well under one
POLL_SECONDS = 0.1  # a blob lease is asked for as often: a few requests a second at most


class FleetFileBusy(Exception):
    """The writer lock could not be had in time: one line saying who holds it."""


class WriterLock(Protocol):
    def held(self, holder: str) -> AbstractContextManager[None]:
        """The lock, held for the `with` block (`holder` says who, for those who wait); FleetFileBusy when it cannot
        be had in time."""
        ...


class StoreWriterLock:
    """A lock of the run-state store, waited for up to `timeout` seconds."""

    def __init__(self, lock: StoreLock, timeout: float | None = None):
        self.lock = lock
        self.timeout = LOCK_TIMEOUT if timeout is None else timeout

    @contextmanager
    def held(self, holder: str) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        while not self.lock.try_acquire(holder):
            if time.monotonic() >= deadline:
                raise FleetFileBusy(
                    f"waited {self.timeout:g}s for {self.lock.holder()} to finish writing it: try again"
                )
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self.lock.release()


def writer_lock(target: Path) -> WriterLock:
    """The writer lock of the fleet file `target`: a lease in Pulumi's azblob container when the runs are kept there
    (every writer, on any machine), else `.fluxfleet/<name>.lock` beside it (a directory fluxfleet's users keep out
    of git), so every writer on this machine, whatever its working directory or the link it came through, takes the
    same one."""
    return StoreWriterLock(fleet_lock_store(target.parent, os.environ).lock(target.name))


def rewrite_fleet(
    path: Path, display: str, edit: Callable[[str], str | None], holder: str, lock: WriterLock | None = None
) -> str | None:
    """fleet.yaml replaced by `edit(its text now)`, under the writer lock; None from `edit`: left as it is. Returns
    what was written (None: nothing). SpecError when the file cannot be read, FleetFileBusy, OSError."""
    target = Path(os.path.realpath(path))  # a symlink's target: the link stays, the file it names changes
    with (lock or writer_lock(target)).held(holder):
        text = read_text(target, display)
        written = edit(text)
        if written is None or written == text:
            return None
        _replace(target, written)
        return written


def _replace(target: Path, text: str) -> None:
    """`target` replaced whole by `text`, durably: a temporary file beside it, fsynced, renamed over it, and the
    directory fsynced so that the rename survives a crash. The file keeps its permissions."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))  # bytes as they are: CRLF and a BOM stay
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, target.stat().st_mode & 0o777)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
