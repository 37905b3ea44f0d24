"""When a campaign may send: windows, a start time, a deadline, and days in Asia/Shanghai time.

The one home of the provider's time zone: the store keeps naive UTC, the provider and the user
speak Asia/Shanghai wall time, and every conversion between them is here. Pure functions over an
injected clock, so tests never sleep through a real night.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.errors import UserError

SHANGHAI_NAME = "Asia/Shanghai"
SHANGHAI = ZoneInfo(SHANGHAI_NAME)
MARKETING_WINDOW = "08:00-21:00"

Clock = Callable[[], datetime]


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


@dataclass(frozen=True)
class Window:
    """Daily hours in which sending is allowed, e.g. 08:00-21:00 (end exclusive)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise UserError(f"--window {text!r}: expected HH:MM-HH:MM, e.g. 08:00-21:00")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise UserError(f"--window {text!r}: not a time of day")
        end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        if (h1, m1) == (h2, m2):
            raise UserError(f"--window {text!r}: start and end are the same")
        return cls(time(h1, m1), end)

    def contains(self, moment: datetime) -> bool:
        clock = moment.astimezone(SHANGHAI).time()
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end  # a window across midnight

    def next_opening(self, moment: datetime) -> datetime:
        """The next time the window opens after ``moment`` (Asia/Shanghai)."""
        local = moment.astimezone(SHANGHAI)
        opening = datetime.combine(local.date(), self.start, SHANGHAI)
        return opening if opening > local else opening + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_moment(text: str, option: str) -> datetime:
    """ "YYYY-MM-DD HH:MM" (or "HH:MM" for today) in Asia/Shanghai time."""
    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    try:
        clock = datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise UserError(f'{option} {text!r}: expected "YYYY-MM-DD HH:MM" or HH:MM') from None
    return datetime.combine(shanghai_now().date(), clock, SHANGHAI)


def next_shanghai_midnight(moment: datetime) -> datetime:
    """When a number's daily limit (109) resets: the next midnight in Asia/Shanghai."""
    local = moment.astimezone(SHANGHAI)
    return datetime.combine(local.date() + timedelta(days=1), time(0), SHANGHAI)


def as_utc_naive(moment: datetime) -> datetime:
    """The store keeps naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def shanghai_wall_to_utc(wall: datetime) -> datetime:
    """A naive Asia/Shanghai wall time (as the provider writes its times) → naive UTC."""
    return as_utc_naive(wall.replace(tzinfo=SHANGHAI))


def utc_to_shanghai_wall(moment: datetime) -> datetime:
    """Naive UTC from the store → naive Asia/Shanghai wall time (what reports show)."""
    return moment.replace(tzinfo=UTC).astimezone(SHANGHAI).replace(tzinfo=None)


@dataclass(frozen=True)
class Cap:
    """At most ``count`` messages per number in any ``period``, across all campaigns."""

    count: int
    period: timedelta

    @classmethod
    def parse(cls, text: str) -> Cap:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([hd])\s*", text.lower())
        if not match or int(match.group(1)) < 1:
            raise UserError(f"--cap {text!r}: expected N/24h or N/7d, e.g. 2/24h")
        amount = int(match.group(2) or 1)
        unit = timedelta(hours=1) if match.group(3) == "h" else timedelta(days=1)
        return cls(int(match.group(1)), amount * unit)


@dataclass(frozen=True)
class Gate:
    """Whether sending may go on now, and if not, until when to wait (or why to stop)."""

    open: bool
    wait_until: datetime | None = None
    reason: str = ""


def gate(
    now: datetime,
    *,
    window: Window | None = None,
    start_at: datetime | None = None,
    until: datetime | None = None,
) -> Gate:
    """The one place that decides if a send may claim more messages at ``now``."""
    if until is not None and now >= until:
        return Gate(False, None, f"it is past --until {until:%Y-%m-%d %H:%M}")
    if start_at is not None and now < start_at:
        return Gate(False, start_at, f"scheduled to start at {start_at:%Y-%m-%d %H:%M}")
    if window is not None and not window.contains(now):
        opening = window.next_opening(now)
        if until is not None and opening >= until:
            return Gate(False, None, f"the window {window} does not open again before --until")
        return Gate(False, opening, f"outside the send window {window}")
    return Gate(True)
