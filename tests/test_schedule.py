"""Send windows, start times, deadlines and caps on a fixed clock (no sleeping through nights)."""

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.errors import UserError
from campaigns.schedule import (
    SHANGHAI,
    Cap,
    Window,
    gate,
    next_shanghai_midnight,
    parse_moment,
)


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def test_window_contains_and_reopens_next_morning():
    window = Window.parse("08:00-21:00")
    assert window.contains(at("2026-11-27 08:00"))
    assert not window.contains(at("2026-11-27 21:00"))
    assert window.next_opening(at("2026-11-27 21:30")) == at("2026-11-28 08:00")
    assert window.next_opening(at("2026-11-27 07:59")) == at("2026-11-27 08:00")


def test_window_across_midnight():
    window = Window.parse("22:00-06:00")
    assert window.contains(at("2026-11-27 23:00")) and window.contains(at("2026-11-28 05:59"))
    assert not window.contains(at("2026-11-27 12:00"))


def test_window_uses_shanghai_time_whatever_the_clock_zone():
    utc_evening = datetime(2026, 11, 27, 14, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert Window.parse("08:00-21:00").contains(utc_evening)  # 06:00 UTC is 14:00 in Shanghai


@pytest.mark.parametrize("bad", ["8-21", "08:00-25:00", "09:00-09:00", "x"])
def test_bad_windows_are_user_errors(bad):
    with pytest.raises(UserError, match="--window"):
        Window.parse(bad)


def test_gate_waits_for_start_then_window_and_stops_at_until():
    window = Window.parse("08:00-21:00")
    start = at("2026-11-28 09:00")
    assert gate(at("2026-11-28 08:30"), window=window, start_at=start).wait_until == start
    closed = gate(at("2026-11-28 22:00"), window=window)
    assert not closed.open and closed.wait_until == at("2026-11-29 08:00")
    assert gate(at("2026-11-28 10:00"), window=window).open
    late = gate(at("2026-11-28 20:00"), until=at("2026-11-28 19:00"))
    assert not late.open and late.wait_until is None and "--until" in late.reason
    never = gate(at("2026-11-28 22:00"), window=window, until=at("2026-11-29 07:00"))
    assert not never.open and never.wait_until is None


def test_next_midnight_is_shanghai_midnight():
    assert next_shanghai_midnight(at("2026-11-27 23:59")) == at("2026-11-28 00:00")
    utc_late = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert next_shanghai_midnight(utc_late) == at("2026-11-29 00:00")  # already the 28th there


def test_caps_parse():
    assert Cap.parse("2/24h") == Cap(2, timedelta(hours=24))
    assert Cap.parse("5/7d") == Cap(5, timedelta(days=7))
    with pytest.raises(UserError):
        Cap.parse("0/24h")


def test_moments_parse_in_shanghai_time():
    assert parse_moment("2026-11-28 09:30", "--at") == at("2026-11-28 09:30")
    with pytest.raises(UserError, match="--at"):
        parse_moment("tomorrow", "--at")
