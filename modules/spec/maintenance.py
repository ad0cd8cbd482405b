"""AKS's maintenance windows (`cluster.upgrade.windows`): a deployment window (modules/spec/windows.py) as the
`maintenanceWindow` of an AKS maintenance configuration, or the one line that says why AKS cannot take it.

AKS's planned maintenance (https://learn.microsoft.com/azure/aks/planned-maintenance, and the swagger's
`MaintenanceWindow`, tests/fixtures/arm-examples) takes one schedule per configuration: weekly on one weekday,
monthly on a day of the month or on the first to fourth weekday of the month, or daily (for the node OS schedule
only); a start time in a fixed UTC offset; and a duration of whole hours, 4 to 24.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from croniter import croniter

from modules.spec.errors import shown
from modules.spec.windows import WindowSpec

AUTO_UPGRADE_SCHEDULE = "aksManagedAutoUpgradeSchedule"
NODE_OS_UPGRADE_SCHEDULE = "aksManagedNodeOSUpgradeSchedule"
ConfigName = Literal["aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"]

MIN_HOURS = 4  # the docs' minimum, and the swagger's `durationHours` minimum
MAX_HOURS = 24  # the swagger's maximum
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # cron's 0-6
WEEK_INDEX = {1: "First", 2: "Second", 3: "Third", 4: "Fourth"}
LAST_SAFE_DAY = 28  # every month has it: cron skips a month without the 31st, and AKS documents nothing for it
# The year whose daylight-saving rules decide a time zone's offsets (tzdata is pinned): fixed, so that a plan is
# the same whatever day it runs.
OFFSET_YEAR = 2026

WHAT_AKS_TAKES = (
    "AKS takes one start time (minute and hour) on every day (node OS schedule only), on one weekday ('0 22 * * 6'), "
    "on a day of the month 1-28 ('0 22 15 * *') or on the first to fourth weekday of the month ('0 22 * * 6#1')"
)


class NotAnAksWindow(ValueError):
    """A window AKS cannot take, and the window's key (`cron` or `duration`) that says why."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class AksWindow:
    """A `maintenanceWindow` as ARM takes it: `schedule` one of daily, weekly, absoluteMonthly, relativeMonthly."""

    schedule: dict[str, dict[str, Any]]
    start_time: str  # HH:MM in utc_offset
    utc_offset: str  # +HH:MM
    duration_hours: int


def aks_window(window: WindowSpec, config: ConfigName) -> AksWindow:
    """`window` as AKS's maintenance window of `config`; NotAnAksWindow, one line, when AKS cannot express it."""
    schedule, hour, minute = _schedule(window.cron, config)
    low, high = zone_offsets(window.timezone)
    # AKS takes a fixed UTC offset, and a zone with daylight saving has two. The window is declared at the zone's
    # lower offset (its standard time, or the winter one) from the cron's wall-clock start, and shortened by the
    # daylight-saving shift: that is the part of the window open at the same UTC times all year, so an upgrade AKS
    # starts lands inside the window in summer and in winter (docs/config.md, `cluster.upgrade.windows[]`).
    # AKS takes whole hours: the rest of a window's last hour is left out, and AKS's window stays inside it.
    shift = int((high - low).total_seconds())
    usable = max(0, window.duration - shift)
    hours = usable // 3600
    if hours < MIN_HOURS:
        dst = f" ({window.timezone} shifts by {_hours(shift)} for daylight saving)" if shift else ""
        raise NotAnAksWindow(
            "duration",
            f"AKS needs a window of at least {MIN_HOURS} whole hours, and this one gives it "
            f"{_hours(usable)}{dst}: make it at least {_hours(MIN_HOURS * 3600 + shift)}",
        )
    if hours > MAX_HOURS:
        raise NotAnAksWindow("duration", f"AKS takes a window of at most {MAX_HOURS}h")
    return AksWindow(schedule, f"{hour:02d}:{minute:02d}", _offset(low), hours)


def _schedule(cron: str, config: ConfigName) -> tuple[dict[str, dict[str, Any]], int, int]:
    (minutes, hours, days, months, weekdays), nth = croniter.expand(cron)
    if len(minutes) != 1 or len(hours) != 1 or months != ["*"] or "*" in minutes or "*" in hours:
        raise NotAnAksWindow("cron", f"{shown(cron)}: {WHAT_AKS_TAKES}")
    minute, hour = int(minutes[0]), int(hours[0])
    if days == ["*"] and weekdays == ["*"]:
        if config != NODE_OS_UPGRADE_SCHEDULE:
            raise NotAnAksWindow(
                "cron",
                f"{shown(cron)}: a daily window schedules only node OS upgrades; AKS's cluster upgrades "
                "(aksManagedAutoUpgradeSchedule) take a weekly or monthly one",
            )
        return {"daily": {"intervalDays": 1}}, hour, minute
    if days == ["*"] and len(weekdays) == 1 and isinstance(weekdays[0], int):
        day = WEEKDAYS[int(weekdays[0]) % 7]
        if not nth:
            return {"weekly": {"dayOfWeek": day, "intervalWeeks": 1}}, hour, minute
        [(_, indexes)] = nth.items()
        if len(indexes) == 1 and (index := next(iter(indexes))) in WEEK_INDEX:
            return (
                {"relativeMonthly": {"dayOfWeek": day, "weekIndex": WEEK_INDEX[index], "intervalMonths": 1}},
                hour,
                minute,
            )
    if weekdays == ["*"] and len(days) == 1 and isinstance(days[0], int) and days[0] <= LAST_SAFE_DAY:
        return {"absoluteMonthly": {"dayOfMonth": days[0], "intervalMonths": 1}}, hour, minute
    raise NotAnAksWindow("cron", f"{shown(cron)}: {WHAT_AKS_TAKES}")


def zone_offsets(timezone: str) -> tuple[timedelta, timedelta]:
    """The lowest and highest UTC offsets `timezone` has in OFFSET_YEAR (equal where it has no daylight saving)."""
    start = datetime(OFFSET_YEAR, 1, 1, 12, tzinfo=ZoneInfo(timezone))
    offsets = [offset for day in range(366) if (offset := (start + timedelta(days=day)).utcoffset()) is not None]
    return min(offsets), max(offsets)


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _hours(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if rest else f"{hours}h"
