"""Deployment windows (modules/spec/windows.py): when a window is open and when it next opens, in its time zone's
wall-clock time across daylight saving; what a window spec refuses, one message each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from modules.spec.windows import WindowSpec, next_opening, open_until

AMSTERDAM_NIGHTS = {"cron": "0 22 * * 1-4", "duration": "4h", "timezone": "Europe/Amsterdam"}


def window(**spec: object) -> WindowSpec:
    return WindowSpec.model_validate(spec)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_window_is_open_from_its_cron_time_for_its_duration_in_its_time_zone():
    nights = window(**AMSTERDAM_NIGHTS)
    # Monday 2026-12-07, 22:00 in Amsterdam is 21:00 UTC (winter time)
    assert nights.open_until(utc(2026, 12, 7, 20, 59)) is None
    assert nights.open_until(utc(2026, 12, 7, 21, 0)) == utc(2026, 12, 8, 1, 0)
    assert nights.open_until(utc(2026, 12, 8, 0, 59)) == utc(2026, 12, 8, 1, 0)
    assert nights.open_until(utc(2026, 12, 8, 1, 0)) is None
    # Thursday night is the last of the week: Friday 22:00 opens nothing, Monday does
    assert nights.next_opening(utc(2026, 12, 11, 12, 0)) == utc(2026, 12, 14, 21, 0)
    assert nights.next_opening(utc(2026, 12, 7, 23, 0)) == utc(2026, 12, 7, 23, 0)  # open: now


def test_a_window_keeps_its_wall_clock_time_across_daylight_saving():
    nights = window(**AMSTERDAM_NIGHTS)
    # summer time (UTC+2) from Sunday 2026-03-29: Monday 22:00 is 20:00 UTC
    assert nights.next_opening(utc(2026, 3, 27, 12, 0)) == utc(2026, 3, 30, 20, 0)
    # a window at 02:30 on the night the clocks skip from 02:00 to 03:00 opens at 03:00, not never
    skipped = window(cron="30 2 * * *", duration="1h", timezone="Europe/Amsterdam")
    assert skipped.next_opening(utc(2026, 3, 28, 23, 0)) == utc(2026, 3, 29, 1, 0)


def test_several_windows_open_at_the_first_and_close_at_the_last():
    nights = window(**AMSTERDAM_NIGHTS)
    sunday = window(cron="0 6 * * 0", duration="2h")  # UTC
    assert next_opening([nights, sunday], utc(2026, 12, 11, 12, 0)) == utc(2026, 12, 13, 6, 0)
    assert open_until([nights, sunday], utc(2026, 12, 13, 7, 0)) == utc(2026, 12, 13, 8, 0)
    assert open_until([nights, sunday], utc(2026, 12, 13, 9, 0)) is None
    # no window: always open
    assert next_opening([], utc(2026, 12, 11, 12, 0)) == utc(2026, 12, 11, 12, 0)


def test_a_window_longer_than_its_interval_stays_open():
    always = window(cron="0 * * * *", duration="90m")
    at = utc(2026, 12, 7, 10, 45)
    assert always.open_until(at) == utc(2026, 12, 7, 11, 30)
    assert always.next_opening(at + timedelta(hours=5)) == at + timedelta(hours=5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cron": "0 22 * *", "duration": "4h"}, "'0 22 * *' is not a cron of five fields"),
        ({"cron": "0 22 * * 1-4 2027", "duration": "4h"}, "is not a cron of five fields"),
        ({"cron": "0 25 * * *", "duration": "4h"}, "'0 25 * * *' is not a cron of five fields"),
        ({"cron": "0 0 30 2 *", "duration": "4h"}, "names no time in five years: the window never opens"),
        ({"cron": "0 22 * * *", "duration": "30s"}, "at least a minute and at most a week"),
        ({"cron": "0 22 * * *", "duration": "169h"}, "at least a minute and at most a week"),
        ({"cron": "0 22 * * *", "duration": "4h", "timezone": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA"),
        ({"cron": "0 22 * * *", "duration": "4h", "zone": "UTC"}, "Extra inputs are not permitted"),
    ],
)
def test_a_window_refuses_what_cannot_be_a_window(spec, message):
    with pytest.raises(ValidationError) as raised:
        WindowSpec.model_validate(spec)
    assert message in str(raised.value)
