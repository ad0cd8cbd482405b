"""Time for the rollout and its health gate, behind an interface so tests and simulations run on a fake clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait `seconds`; True when the wait ended early because `stop` was set."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(seconds, 0))
            return False
        return stop.wait(max(seconds, 0))
