"""Deployment windows: `windows: [{cron: "0 22 * * 1-4", duration: 4h, timezone: Europe/Amsterdam}]`. A window opens
at each time its cron names, in its time zone's wall-clock time (daylight saving included), and stays open for its
duration. A stage or a profile sets when a rollout may start a stack's update (fluxfleet/rollout), and
`cluster.upgrade.windows` when AKS may upgrade the cluster itself (its maintenance configurations).

The cron is the five fields of crontab(5) (minute, hour, day of month, month, day of week), read by croniter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import AfterValidator, model_validator

from modules.spec.errors import shown
from modules.spec.fields import Duration, SpecModel

MIN_DURATION = 60  # seconds
MAX_DURATION = 7 * 24 * 3600  # a window longer than a week is no window
NEVER_AFTER = timedelta(days=366 * 5)  # a cron that names no time in five years names none ("0 0 30 2 *")


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{shown(value)} is not a cron of five fields (minute hour day-of-month month day-of-week)")
    return " ".join(fields)


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{shown(value)} is not an IANA time zone such as Europe/Amsterdam or UTC") from None
    return value


Cron = Annotated[str, AfterValidator(_cron)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]


class WindowSpec(SpecModel):
    """One recurring window: opens at each `cron` time in `timezone`, open for `duration` seconds."""

    cron: Cron
    duration: Duration
    timezone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _opens(self) -> WindowSpec:
        if not MIN_DURATION <= self.duration <= MAX_DURATION:
            raise ValueError("duration: a window is open for at least a minute and at most a week")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        if self._next_start(start) is None:
            raise ValueError(f"cron {shown(self.cron)} names no time in five years: the window never opens")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _next_start(self, after: datetime) -> datetime | None:
        """The first opening strictly after `after` (UTC), or None within NEVER_AFTER."""
        try:
            found = croniter(self.cron, after.astimezone(self.zone)).get_next(datetime)
        except CroniterBadDateError:
            return None
        found = found.astimezone(UTC)
        return found if found - after <= NEVER_AFTER else None

    def _last_start(self, at: datetime) -> datetime | None:
        """The last opening at or before `at` (UTC)."""
        probe = at + timedelta(seconds=1)  # get_prev is strict: an opening at `at` itself counts
        try:
            found = croniter(self.cron, probe.astimezone(self.zone)).get_prev(datetime)
        except CroniterBadDateError:
            return None
        return found.astimezone(UTC)

    def open_until(self, at: datetime) -> datetime | None:
        """When the window open at `at` closes; None when it is closed at `at`."""
        start = self._last_start(at)
        if start is None:
            return None
        end = start + timedelta(seconds=self.duration)
        return end if at < end else None

    def next_opening(self, at: datetime) -> datetime:
        """`at` when the window is open then, else when it next opens."""
        if self.open_until(at) is not None:
            return at
        found = self._next_start(at)
        assert found is not None, "validated: the window opens"
        return found

    def __str__(self) -> str:
        return f"{self.cron} for {_hours(self.duration)} ({self.timezone})"


def _hours(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if rest else f"{hours}h"


def open_until(windows: Iterable[WindowSpec], at: datetime) -> datetime | None:
    """When the last of the windows open at `at` closes; None when none is open (or there are none: see `opening`)."""
    ends = [end for window in windows if (end := window.open_until(at)) is not None]
    return max(ends, default=None)


def next_opening(windows: Iterable[WindowSpec], at: datetime) -> datetime:
    """The first time at or after `at` that one of the windows is open; `at` itself when there are none (no window:
    always open)."""
    openings = [window.next_opening(at) for window in windows]
    return min(openings, default=at)
