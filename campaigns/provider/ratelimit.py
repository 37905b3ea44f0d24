"""Rate limiters shared by all workers of a run, holding the rate where it counts: at the provider.

Both limiters work in two parts:

1. **A schedule** spaces the requests exactly ``1 / rate`` apart. Each caller takes the next
   slot under a short lock (``SharedRateLimiter`` takes its slots from a bucket in the database,
   a block at a time) and sleeps outside the lock until the slot comes, so a thread wakes once,
   when it may go, and the long-run rate is exact. There is no burst: an idle limiter starts
   again at one slot per interval.
2. **A release gate** counts what actually went. The schedule spaces only the *slots*; threads
   wake late (a busy CPU, the GIL, a paused process), and the requests of a stall all go when
   it ends. A late request only moves one request from its slot's second into a later one, so
   the gate lets it go at once and nobody waits for it; the gate holds a caller back only when
   the last second already saw ``limit`` requests, that is a second after a stall whose
   requests went out together. Held-back callers go one interval apart, and the schedule moves
   up behind them, so the threads after them wake only once again. A stall's time is lost;
   it is not made up in a burst.

So in any one-second window the limiter lets go at most ``limit = floor(rate) + 1`` requests
(the schedule's own count, plus one for rounding and for one late request). At the provider a
window can see a few more: on the way each request spends a few milliseconds, never quite the
same (building it, the GIL, the network, the server). The ``BURST`` the provider allows over the
rate covers that: with 5 at 500/s, up to 8 ms of variation. No caller goes before its slot, and a
thread sleeps at most twice per request, the second time only after a stall.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Protocol

# What the provider allows over the rate in any one second: headroom the limiters never spend,
# and the bound the tests and benchmarks hold the busiest second to (rate + BURST).
BURST = 5
# A gate wait shorter than this is not worth a sleep (clock and float noise).
_EPSILON = 1e-4


class Limiter(Protocol):
    def acquire(self) -> None:
        """Return when the caller may make its next request."""


class _Paced(ABC):
    """The release gate and the bookkeeping both limiters share; subclasses hand out the slots."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.limit = math.floor(rate + 1e-9) + 1
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # When the last ``limit`` requests went (or will go, for callers the gate holds back),
        # in order: the oldest must be a second old before another may go.
        self._released: deque[float] = deque(maxlen=self.limit)
        self._waiting = 0  # callers holding a slot that have not reached the gate yet

    def acquire(self) -> None:
        """Return when the caller may send: at its slot, and never in a bunch after a stall."""
        wait = self.reserve()
        try:
            if wait > 0:
                self._sleep(wait)
        except BaseException:
            with self._lock:
                self._waiting -= 1  # the slot goes unused
            raise
        wait = self.release()
        if wait > 0:
            self._sleep(wait)

    @abstractmethod
    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait for it. The caller then
        calls ``release()`` (``acquire()`` does both)."""

    def release(self) -> float:
        """At (or after) the caller's slot: pass the gate. Return how long the caller must still
        wait, 0 when it may go at once; either way its time is booked."""
        with self._lock:
            now = self._clock()
            self._waiting = max(0, self._waiting - 1)
            released = self._released
            at = now
            if released and released[-1] > now:  # others are held back: after them
                at = released[-1] + self.interval
            if len(released) == self.limit:  # not before the oldest of them is a second old
                at = max(at, released[0] + 1.0)
            released.append(at)
            wait = at - now
            if wait <= _EPSILON:
                return 0.0
            # The callers already holding slots will be held back too, once each; slots handed
            # out from now on come after theirs, so that their threads wake only once.
            self._align(at + (self._waiting + 1) * self.interval)
            return wait

    @abstractmethod
    def _align(self, first_slot: float) -> None:
        """Hand out no slot before ``first_slot`` from now on. Called under the lock."""


class RateLimiter(_Paced):
    """One process's rate: ``acquire()`` returns when the caller may send."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, clock, sleep)
        self._next_slot = clock()

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            self._next_slot = slot + self.interval
            self._waiting += 1
            return slot - now

    def _align(self, first_slot: float) -> None:
        self._next_slot = max(self._next_slot, first_slot)


class Unlimited:
    """Stands in for a limiter when no rate is set."""

    def acquire(self) -> None:
        return None


class SharedRateLimiter(_Paced):
    """The account's rate, shared by every sender process through a bucket in the database.

    Each process reserves a block of consecutive slots (a tenth of a second's worth) with one
    short transaction, then hands them to its workers one by one, so N senders together keep
    the configured rate while the database sees about ten reservations a second per sender.
    ``reserve(count, interval)`` returns the time (epoch seconds) of the block's first slot (an
    idle bucket starts again at now, no burst), and a block whose first slot has passed by the
    time it arrives starts then. The next
    block is reserved when half of the current one is used, by one worker while the others go on
    taking slots, so a slow transaction does not hold them up.

    The release gate (see the module) is this process's own. No slot is used before its time,
    so several senders together never exceed the rate in the long run, but one sender's late
    requests can land in the same second as another's on-time ones.
    """

    def __init__(
        self,
        rate: float,
        reserve: Callable[[int, float], float],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, clock, sleep)
        self.block = max(1, round(rate / 10))
        self._reserve = reserve
        self._slots: deque[float] = deque()
        self._refilling = False
        self._refilled = threading.Condition(self._lock)
        self._next_slot = float("-inf")  # this process's slots are never closer than interval

    def reserve(self) -> float:
        with self._lock:
            refill = not self._refilling and len(self._slots) <= self.block // 2
            if refill:
                self._refilling = True
        if refill:  # before taking a slot, so that this caller's slot is not overdue after it
            try:
                self._refill()
            except Exception:
                with self._lock:
                    if not self._slots:
                        raise
                # slots are left: a later caller tries again, and fails loudly if they run out
        with self._lock:
            while not self._slots:
                if self._refilling:
                    self._refilled.wait()
                else:  # the last reservation failed: try again
                    self._refilling = True
                    self._lock.release()
                    try:
                        self._refill()
                    finally:
                        self._lock.acquire()
            slot = max(self._slots.popleft(), self._next_slot)
            self._next_slot = slot + self.interval
            self._waiting += 1
        return max(0.0, slot - self._clock())

    def _refill(self) -> None:
        """Reserve a block in the database and queue its slots. Call without the lock."""
        first = None
        try:
            # A block that starts in the past (an idle bucket restarts at the database's now, a
            # moment ago) starts now instead: slots nobody took in time are not made up in a burst.
            first = max(self._reserve(self.block, self.interval), self._clock())
        finally:
            with self._lock:
                self._refilling = False
                if first is not None:
                    self._slots.extend(first + i * self.interval for i in range(self.block))
                self._refilled.notify_all()

    def _align(self, first_slot: float) -> None:
        self._next_slot = max(self._next_slot, first_slot)
