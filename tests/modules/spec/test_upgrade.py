"""`cluster.upgrade` (modules/spec/cluster.py, modules/spec/maintenance.py): the channels AKS upgrades the cluster on,
and a deployment window as AKS's maintenance window; what AKS cannot take, one line each with the key path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modules.spec import parse_spec
from modules.spec.maintenance import (
    AUTO_UPGRADE_SCHEDULE,
    NODE_OS_UPGRADE_SCHEDULE,
    AksWindow,
    aks_window,
)
from modules.spec.windows import WindowSpec
from tests.modules.test_spec import FILE, errors

UPGRADE = "fluxfleet:cluster.upgrade"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday()


def window(cron: str, duration: str = "4h", timezone: str = "UTC") -> WindowSpec:
    return WindowSpec.model_validate({"cron": cron, "duration": duration, "timezone": timezone})


def with_upgrade(raw: dict[str, Any], **upgrade: Any) -> dict[str, Any]:
    raw["cluster"]["upgrade"] = upgrade
    return raw


@pytest.mark.parametrize(
    ("cron", "timezone", "duration", "schedule", "start", "offset", "hours"),
    [
        ("0 22 * * 6", "UTC", "4h", {"weekly": {"dayOfWeek": "Saturday", "intervalWeeks": 1}}, "22:00", "+00:00", 4),
        (
            "30 1 * * sun",
            "Asia/Kolkata",
            "6h",
            {"weekly": {"dayOfWeek": "Sunday", "intervalWeeks": 1}},
            "01:30",
            "+05:30",
            6,
        ),
        ("0 3 * * 7", "UTC", "24h", {"weekly": {"dayOfWeek": "Sunday", "intervalWeeks": 1}}, "03:00", "+00:00", 24),
        ("0 3 15 * *", "UTC", "5h", {"absoluteMonthly": {"dayOfMonth": 15, "intervalMonths": 1}}, "03:00", "+00:00", 5),
        (
            "0 2 * * 6#1",
            "UTC",
            "8h",
            {"relativeMonthly": {"dayOfWeek": "Saturday", "weekIndex": "First", "intervalMonths": 1}},
            "02:00",
            "+00:00",
            8,
        ),
        # daylight saving: the zone's lower offset, the window shortened by the shift (the hour it moves)
        (
            "0 22 * * 6",
            "Europe/Amsterdam",
            "5h",
            {"weekly": {"dayOfWeek": "Saturday", "intervalWeeks": 1}},
            "22:00",
            "+01:00",
            4,
        ),
        (
            "0 3 15 * *",
            "America/New_York",
            "6h",
            {"absoluteMonthly": {"dayOfMonth": 15, "intervalMonths": 1}},
            "03:00",
            "-05:00",
            5,
        ),
        # AKS takes whole hours: the rest of the last hour is left out
        ("0 22 * * 1", "UTC", "4h30m", {"weekly": {"dayOfWeek": "Monday", "intervalWeeks": 1}}, "22:00", "+00:00", 4),
    ],
)
def test_a_window_becomes_the_schedule_aks_takes(cron, timezone, duration, schedule, start, offset, hours):
    for config in (AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE):
        assert aks_window(window(cron, duration, timezone), config) == AksWindow(schedule, start, offset, hours)


def test_a_daily_window_schedules_node_os_upgrades_only():
    daily = window("0 3 * * *")
    assert aks_window(daily, NODE_OS_UPGRADE_SCHEDULE) == AksWindow(
        {"daily": {"intervalDays": 1}}, "03:00", "+00:00", 4
    )
    with pytest.raises(ValueError, match="a daily window schedules only node OS upgrades"):
        aks_window(daily, AUTO_UPGRADE_SCHEDULE)


def aks_openings(aks: AksWindow, year: int) -> list[datetime]:
    """Every start of a weekly or absolute-monthly AKS window in `year`, in UTC, read as AKS documents it."""
    sign = -1 if aks.utc_offset.startswith("-") else 1
    hours, minutes = map(int, aks.utc_offset[1:].split(":"))
    offset = sign * timedelta(hours=hours, minutes=minutes)
    start_hour, start_minute = map(int, aks.start_time.split(":"))
    [(kind, fields)] = aks.schedule.items()
    day = datetime(year, 1, 1, start_hour, start_minute, tzinfo=UTC)
    found = []
    while day.year == year:
        weekly = kind == "weekly" and WEEKDAYS[day.weekday()] == fields["dayOfWeek"]
        if weekly or (kind == "absoluteMonthly" and day.day == fields["dayOfMonth"]):
            found.append(day - offset)
        day += timedelta(days=1)
    return found


@pytest.mark.parametrize(
    ("cron", "timezone", "duration"),
    [
        ("0 22 * * 6", "Europe/Amsterdam", "5h"),
        ("30 23 * * 0", "America/New_York", "6h"),
        ("0 2 10 * *", "Australia/Sydney", "5h"),
        ("0 1 * * 3", "Australia/Lord_Howe", "5h"),  # a half-hour shift
        ("0 20 * * 5", "Europe/Dublin", "5h"),  # its winter time is the "negative" daylight saving
    ],
)
def test_aks_upgrades_start_and_end_inside_the_window_in_summer_and_winter(cron, timezone, duration):
    """AKS takes a fixed UTC offset: every hour of its window, all year, is inside the fluxfleet window."""
    spec = window(cron, duration, timezone)
    aks = aks_window(spec, AUTO_UPGRADE_SCHEDULE)
    openings = aks_openings(aks, 2027)
    assert len(openings) >= 12
    for start in openings:
        last = start + timedelta(hours=aks.duration_hours) - timedelta(seconds=1)
        assert spec.open_until(start) is not None and spec.open_until(last) is not None, (start, timezone)


def test_channels_and_windows_read_into_the_cluster(raw):
    with_upgrade(
        raw, channel="stable", nodeOSChannel="SecurityPatch", windows=[{"cron": "0 22 * * 6", "duration": "6h"}]
    )
    cluster = parse_spec(raw, file=FILE).cluster
    assert (cluster.upgrade_channel, cluster.node_os_upgrade_channel) == ("stable", "SecurityPatch")
    assert cluster.maintenance_schedules == [AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE]


@pytest.mark.parametrize(
    ("upgrade", "channels", "schedules"),
    [
        ({}, ("patch", None), []),  # the program's default, and AKS's node OS default left to AKS
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]},
            ("patch", "NodeImage"),
            ["auto", "node"],
        ),
        (
            {"channel": "none", "nodeOSChannel": "NodeImage", "windows": [{"cron": "0 3 * * *", "duration": "4h"}]},
            ("none", "NodeImage"),
            ["node"],
        ),
        (
            {"nodeOSChannel": "Unmanaged", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]},
            ("patch", "Unmanaged"),
            ["auto"],
        ),
        ({"channel": "node-image", "nodeOSChannel": "NodeImage"}, ("node-image", "NodeImage"), []),
    ],
)
def test_which_maintenance_configurations_a_window_sets(raw, upgrade, channels, schedules):
    cluster = parse_spec(with_upgrade(raw, **upgrade), file=FILE).cluster
    names = {"auto": AUTO_UPGRADE_SCHEDULE, "node": NODE_OS_UPGRADE_SCHEDULE}
    assert (cluster.upgrade_channel, cluster.node_os_upgrade_channel) == channels
    assert cluster.maintenance_schedules == [names[s] for s in schedules]


def test_the_older_auto_upgrade_channel_still_reads(raw):
    raw["cluster"]["autoUpgradeChannel"] = "rapid"
    assert parse_spec(raw, file=FILE).cluster.upgrade_channel == "rapid"


@pytest.mark.parametrize(
    ("upgrade", "path", "message"),
    [
        ({"channel": "weekly"}, "channel", "'weekly'"),
        ({"nodeOSChannel": "nodeimage"}, "nodeOSChannel", "'nodeimage'"),
        ({"channel": "node-image", "nodeOSChannel": "SecurityPatch"}, "nodeOSChannel", "AKS takes NodeImage with it"),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 1-4", "duration": "4h"}]},
            "windows[0].cron",
            "'0 22 * * 1-4': AKS takes one start time (minute and hour) on every day (node OS schedule only), on one "
            "weekday ('0 22 * * 6'), on a day of the month 1-28 ('0 22 15 * *') or on the first to fourth weekday of "
            "the month ('0 22 * * 6#1')",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 31 * *", "duration": "4h"}]},
            "windows[0].cron",
            "on a day of the month 1-28",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 */6 * * 6", "duration": "4h"}]},
            "windows[0].cron",
            "one start time",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 3 * 1 6", "duration": "4h"}]},
            "windows[0].cron",
            "one start time",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 3 * * 6#5", "duration": "4h"}]},
            "windows[0].cron",
            "first to fourth weekday",
        ),
        (
            {"channel": "patch", "nodeOSChannel": "None", "windows": [{"cron": "0 3 * * *", "duration": "4h"}]},
            "windows[0].cron",
            "'0 3 * * *': a daily window schedules only node OS upgrades; AKS's cluster upgrades "
            "(aksManagedAutoUpgradeSchedule) take a weekly or monthly one",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 6", "duration": "3h"}]},
            "windows[0].duration",
            "AKS needs a window of at least 4 whole hours, and this one gives it 3h: make it at least 4h",
        ),
        (
            {
                "nodeOSChannel": "NodeImage",
                "windows": [{"cron": "0 22 * * 6", "duration": "4h", "timezone": "Europe/Amsterdam"}],
            },
            "windows[0].duration",
            "AKS needs a window of at least 4 whole hours, and this one gives it 3h (Europe/Amsterdam shifts by 1h "
            "for daylight saving): make it at least 5h",
        ),
        (
            {"nodeOSChannel": "NodeImage", "windows": [{"cron": "0 22 * * 6", "duration": "25h"}]},
            "windows[0].duration",
            "at most 24h",
        ),
        (
            {
                "nodeOSChannel": "NodeImage",
                "windows": [{"cron": "0 22 * * 6", "duration": "4h"}, {"cron": "0 22 * * 0", "duration": "4h"}],
            },
            "windows",
            "AKS takes one schedule per maintenance configuration: give one window",
        ),
        (
            {"channel": "none", "nodeOSChannel": "Unmanaged", "windows": [{"cron": "0 22 * * 6", "duration": "4h"}]},
            "windows",
            "the windows time nothing: channel is none and nodeOSChannel Unmanaged has no upgrades AKS starts",
        ),
        (
            {
                "nodeOSChannel": "NodeImage",
                "windows": [{"cron": "0 22 * * 6", "duration": "4h", "timezone": "Mars/Olympus"}],
            },
            "windows[0].timezone",
            "IANA",
        ),
        (
            {"windows": [{"cron": "0 22 * * 6", "duration": "4h"}]},
            "nodeOSChannel",
            "name the node OS channel the windows time: NodeImage (AKS's default since API 2023-06-01), SecurityPatch, "
            "Unmanaged or None (a change of channel reimages every node)",
        ),
        ({"schedule": "weekly"}, "schedule", "unknown key (allowed: channel, nodeOSChannel, windows)"),
    ],
)
def test_what_aks_cannot_take_is_one_line_naming_the_key(raw, upgrade, path, message):
    [error] = errors(with_upgrade(raw, **upgrade))
    assert error.startswith(f"{FILE}: {UPGRADE}.{path}: ") and message in error, error
    assert "\n" not in error


def test_one_key_for_the_channel(raw):
    raw["cluster"]["autoUpgradeChannel"] = "stable"
    [error] = errors(with_upgrade(raw, channel="stable"))
    assert error == f"{FILE}: {UPGRADE}.channel: autoUpgradeChannel says the same: keep one (upgrade.channel)"


def test_an_arc_cluster_has_no_upgrade_schedule(raw):
    raw["cluster"] = {"kind": "arc", "name": "edge-1", "resourceGroup": "rg-edge"}
    [error] = errors(with_upgrade(raw, channel="stable"))
    assert error == f"{FILE}: {UPGRADE}: only for kind 'aks': an Arc cluster's upgrades are not Azure's to schedule"
