"""Run state in files on this machine: the default store, a directory (`.fluxfleet/runs`, or `--runs-dir`).

An entry is a file; its ETag is a hash of its bytes. A whole write goes to a temporary file renamed over the entry;
it and a conditional delete hold the store's write lock exclusively while they compare and replace, and appends
hold it shared (O_APPEND puts each append, one write, at the end whatever other appenders do), so a conditional
delete never drops an append it did not see.

A lock is an `flock` on a file. The kernel ties it to the open file, not to the process, and releases it when the
last descriptor of that file closes, however its holders end: a killed fluxfleet frees its locks at once, and a
`pulumi up` given the descriptor holds it until it ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fluxfleet.runstate.store import Conflict, Entry, StoreError, Unreadable

WRITES_LOCK = "locks/.writes.lock"  # a name no stack has: a stack name begins with a letter or digit


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._file: Any = None

    @property
    def fd(self) -> int:
        return self._file.fileno()

    def try_acquire(self, holder: str) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open as long as the lock
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        file.seek(0)
        file.truncate()
        file.write(holder)
        file.flush()
        self._file = file
        return True

    def holder(self) -> str:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as file:
                return file.read(200).strip() or "another process"
        except OSError:
            return "another process"

    def still_held(self) -> bool:
        return self._file is not None  # an flock is never taken from its holder

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the last descriptor releases the flock
            self._file = None


class LocalStore:
    def __init__(self, root: Path):
        self.root = root

    @property
    def where(self) -> str:
        return str(self.root)

    def read(self, name: str, *, offset: int = 0) -> Entry | None:
        path = self._path(name)
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device in its place must not hang a run
                raise Unreadable("not a regular file")
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise Unreadable(f"cannot read: {error.strerror}") from None
        return Entry(data[offset:], _etag(data))

    def head(self, name: str) -> str | None:
        found = self.read(name)  # a hash of the bytes: reading them is the cost, under a millisecond for a run
        return None if found is None else found.etag

    def write(self, name: str, data: bytes, *, etag: str | None = None, new: bool = False) -> str:
        path = self._path(name)
        with self._writes(fcntl.LOCK_EX):
            if etag is not None or new:
                _expect(path, etag, new)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return _etag(data)

    def append(self, name: str, data: bytes) -> None:
        with self._writes(fcntl.LOCK_SH), open(self._path(name), "ab") as file:
            file.write(data)  # one write of O_APPEND: whole, at the end

    def delete(self, name: str, *, etag: str | None = None) -> None:
        path = self._path(name)
        with self._writes(fcntl.LOCK_EX):
            if etag is not None:
                _expect(path, etag, new=False)
            path.unlink(missing_ok=True)

    def names(self, prefix: str = "") -> list[str]:
        try:
            return sorted(
                path.name
                for path in self.root.glob(f"{_glob_escaped(prefix)}*")
                if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".lock")
            )
        except OSError:
            return []

    def lock(self, name: str) -> FileLock:
        return FileLock(self.root / f"{name}.lock")

    def _path(self, name: str) -> Path:
        return self.root / name

    @contextmanager
    def _writes(self, mode: int) -> Iterator[None]:
        try:
            (self.root / WRITES_LOCK).parent.mkdir(parents=True, exist_ok=True)
            file = open(self.root / WRITES_LOCK, "a")  # noqa: SIM115 - closed below
        except OSError as error:
            raise StoreError(f"{self.root}: cannot keep runs there: {error.strerror}") from None
        try:
            fcntl.flock(file, mode)
            yield
        finally:
            file.close()


def _etag(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _expect(path: Path, etag: str | None, new: bool) -> None:
    try:
        current = _etag(path.read_bytes())
    except FileNotFoundError:
        current = None
    if new and current is not None:
        raise Conflict(f"{path}: exists already")
    if etag is not None and current != etag:
        raise Conflict(f"{path}: changed since it was read" if current else f"{path}: gone since it was read")


def _glob_escaped(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)
