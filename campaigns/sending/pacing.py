"""How many requests to keep in flight, from the latency measured as the run goes.

Little's law: to make ``rate`` requests a second when each takes ``latency`` seconds, about
``rate × latency`` must be in flight; a quarter more and a few spare cover the jitter. The
target follows the latency up and down, never above the cap (``--concurrency``).

Without a rate there is no throughput to aim at: the target starts at ``START`` and grows by a
quarter each second while the latency stays near the lowest seen (the provider keeps up), and
shrinks by a fifth when the latency doubles (requests are queueing, not going faster).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_CAP = 320  # enough for 500/s at 500 ms: 500 × 0.5 × 1.25 + 4 = 317
# Threads beyond the cap: for requests whose replies are held up, and for lookups waiting out a
# backoff, neither of which holds a slot.
SPARE_THREADS = 64
START = 16  # the start of a run without --rate
HEADROOM = 1.25
SPARE = 4
SMOOTHING = 0.05  # weight of each new latency sample in the running average
ADJUST_EVERY = 1.0  # without a rate: seconds between two changes of the target
GROW_BELOW = 1.5  # without a rate: grow while the latency is under this × the lowest seen
SHRINK_ABOVE = 2.0  # ... and shrink once it is over this × the lowest seen
OVERDUE_FACTOR = 4.0  # a reply this many times later than usual no longer holds its slot
OVERDUE_MIN = 0.05
# A send whose reply is this late is looked up while it is still out: if the provider shows the
# message, it is sent, and the run does not wait for the held-up reply. A healthy provider
# almost never answers 8× later than usual, so hedges cost next to nothing.
HEDGE_FACTOR = 8.0
HEDGE_MIN = 0.25
HEDGE_BEFORE_ANY_REPLY = 2.0  # no latency measured yet: a slow provider is not yet a fault
# A message whose outcome is unknown is looked up early (a "found" settles it at once), then
# less and less often; only a "not found" after the lookup wait means the provider never got it.
EARLY_LOOKUP_FACTOR = 2.0
EARLY_LOOKUP_MIN = 0.2
EARLY_LOOKUP_GROWTH = 3.0
MET = 0.95  # an achieved rate at least this share of the asked one met it


class InFlight:
    """The target number of requests in flight; thread-safe. ``clock`` is injectable."""

    def __init__(
        self, rate: float | None, cap: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.cap = max(1, cap)
        self.clock = clock
        self.latency: float | None = None  # running average, seconds
        # Before the first reply: with a rate, room for a latency of up to a second (the
        # limiter spaces the requests anyway); without, a modest start.
        self._target = min(self.cap, self._for_rate(1.0) if rate else START)
        self._lowest: float | None = None  # the lowest one-second mean (without a rate)
        self._window_sum = 0.0
        self._window_count = 0
        self._window_start = clock()
        self._samples = 0
        self._capped = 0  # samples after which the target wanted more than the cap
        self._active = 0
        self._changed = threading.Condition()

    @property
    def target(self) -> int:
        return self._target

    @property
    def active(self) -> int:
        """Slots held now (``slot``)."""
        return self._active

    @property
    def capped_share(self) -> float:
        """How often the cap held the target below what the rate needed."""
        return self._capped / self._samples if self._samples else 0.0

    def overdue_after(self) -> float:
        """A request out longer than this is held up (a fault), not a normal reply."""
        return max(OVERDUE_MIN, OVERDUE_FACTOR * self._usual())

    def hedge_after(self) -> float:
        """A send out longer than this is looked up while its reply is still awaited."""
        if self.latency is None:
            return HEDGE_BEFORE_ANY_REPLY
        return max(HEDGE_MIN, HEDGE_FACTOR * self.latency)

    def lookup_after(self, lookups: int) -> float:
        """When (seconds after the send) to look up, for the ``lookups + 1``-th time, a message
        whose outcome is unknown: soon, then every time three times later."""
        first = max(EARLY_LOOKUP_MIN, EARLY_LOOKUP_FACTOR * self._usual())
        return first * EARLY_LOOKUP_GROWTH**lookups

    def _usual(self) -> float:
        return self.latency if self.latency is not None else 1.0

    def observe(self, seconds: float) -> None:
        """One reply came back after ``seconds``. A held-up reply counts as merely overdue: one
        fault must not swell the average, while a real rise still lifts it within a few
        replies."""
        seconds = min(seconds, self.overdue_after())
        with self._changed:
            self._samples += 1
            if self.latency is None:
                self.latency = seconds
            else:
                self.latency += SMOOTHING * (seconds - self.latency)
            self._window_sum += seconds
            self._window_count += 1
            wanted = self._wanted()
            self._capped += wanted > self.cap
            grown = max(1, min(self.cap, wanted)) - self._target
            self._target += grown
            if grown > 0:  # room for that many more (waking all would cost a core)
                self._changed.notify(grown)

    def _wanted(self) -> int:
        assert self.latency is not None
        if self.rate:
            return self._for_rate(self.latency)
        now = self.clock()
        if now - self._window_start < ADJUST_EVERY:
            return self._target
        mean = self._window_sum / self._window_count
        self._window_sum, self._window_count, self._window_start = 0.0, 0, now
        self._lowest = mean if self._lowest is None else min(self._lowest, mean)
        if mean <= GROW_BELOW * self._lowest:
            return math.ceil(self._target * 1.25)
        if mean > SHRINK_ABOVE * self._lowest:
            return math.floor(self._target * 0.8)
        return self._target

    def _for_rate(self, latency: float) -> int:
        assert self.rate is not None
        return math.ceil(self.rate * latency * HEADROOM) + SPARE

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``target`` slots for a request; measures it when it comes back."""
        with self._changed:
            while self._active >= self._target:
                self._changed.wait()
            self._active += 1
        started = time.monotonic()
        try:
            yield
            self.observe(time.monotonic() - started)
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify()


class Answers:
    """When the first and last answers of a stretch of work came: the rate held between them
    leaves out the start (the first reply is one latency away) and any wait before it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count = 0
        self.first = self.last = 0.0
        self._lock = threading.Lock()

    def note(self) -> None:
        with self._lock:
            self.last = self.clock()
            if not self.count:
                self.first = self.last
            self.count += 1

    @property
    def span(self) -> float:
        return self.last - self.first

    def rate(self) -> float | None:
        """Answers per second between the first and the last; None with fewer than two."""
        return (self.count - 1) / self.span if self.count > 1 and self.span > 0 else None


def limited_by(sizing: InFlight, *, cpu_share: float, error_share: float, shared: bool) -> str:
    """What most likely held a run below its rate: errors, the CPU, the cap, other senders."""
    if error_share > 0.02:
        return f"provider errors ({error_share:.0%} of requests failed and were retried)"
    if cpu_share > 0.85:
        return "CPU (this process kept a core busy)"
    if sizing.capped_share > 0.5:
        latency_ms = 1000 * (sizing.latency or 0.0)
        return (
            f"latency × requests in flight ({latency_ms:.0f} ms × the cap of {sizing.cap}; "
            "raise --concurrency)"
        )
    if shared:
        return "the shared rate limiter (other senders of the account take their slots)"
    return "latency × requests in flight (still growing towards the target)"


@dataclass(kw_only=True)
class RateReport:
    """The --rate asked, what a run held, and what most likely held it below: set as a send or
    reconcile pass goes, printed at its end."""

    asked_rate: float | None = None
    achieved_rate: float | None = None
    limited_by: str | None = None

    def rate_summary(self) -> str | None:
        """The line to print when the run missed --rate (None: met, or no --rate)."""
        return rate_line(self.asked_rate, self.achieved_rate, self.limited_by)


def rate_line(asked: float | None, achieved: float | None, why: str | None) -> str | None:
    """One line when a run missed the asked rate; None when it met it or had none."""
    if asked is None or achieved is None or achieved >= MET * asked:
        return None
    return f"achieved {achieved:.0f}/s of the {asked:g}/s asked, limited by {why}"
