"""Exclusive locks between processes: one for a run (one process resumes it at a time), one per stack (at most
one update of a stack at any time, from any run on this machine), and one per fleet.yaml (one writer at a time:
fluxfleet/fleet_file.py).

A lock is an `flock` on a file. The kernel ties it to the open file, not to the process, and releases it when the
last descriptor of that file closes, however its holders end: a killed fluxfleet frees its run at once. A stack's
lock is also handed to the `pulumi up` that updates the stack, so that it stays held as long as that update runs,
even when fluxfleet was killed and the CLI, in a session of its own, goes on as an orphan.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._file: Any = None

    @property
    def fd(self) -> int:
        """The descriptor that holds the lock, to hand to a child process that must hold it too."""
        return self._file.fileno()

    def try_acquire(self, holder: str) -> bool:
        """Take the lock if it is free, and record who holds it (`holder`, for the messages of those who wait)."""
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

    def acquire(self, holder: str, timeout: float, poll: float = 0.02) -> bool:
        """Take the lock, waiting for it up to `timeout` seconds; False if it is still held then."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire(holder):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def holder(self) -> str:
        """Who holds the lock, as they described themselves."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as file:
                return file.read(200).strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the last descriptor releases the flock
            self._file = None


def this_process(what: str) -> str:
    return f"process {os.getpid()} ({what})"
