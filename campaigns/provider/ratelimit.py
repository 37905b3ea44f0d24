"""A thread-safe rate limiter shared by all workers (GCRA: a token bucket kept as one timestamp).

Each caller reserves its slot under a short lock, then sleeps outside the lock until the slot
comes, so threads never wake up just to find there is no token yet, and the long-run rate is
exact: the n-th request after an idle period goes out at start + (n - burst) / rate at the latest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.tolerance = max(burst - 1, 0) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._theoretical_arrival = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            arrival = max(self._theoretical_arrival, now)
            self._theoretical_arrival = arrival + self.interval
            return max(0.0, arrival - self.tolerance - now)

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


class Unlimited:
    """Stands in for a limiter when no rate is set."""

    def acquire(self) -> None:
        return None


class SharedRateLimiter:
    """The account's rate, shared by every sender process through a bucket in the database.

    Each process reserves a block of consecutive slots (a tenth of a second's worth) with one
    short transaction, then hands them to its workers one by one, so N senders together keep
    the configured rate while the database sees about ten reservations a second per sender.
    ``reserve(count, interval, tolerance)`` returns the time (epoch seconds) of the block's first
    slot.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        reserve: Callable[[int, float, float], float],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.tolerance = max(burst - 1, 0) * self.interval
        self.block = max(1, round(rate / 10))
        self._reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._slots: list[float] = []
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if not self._slots:
                first = self._reserve(self.block, self.interval, self.tolerance)
                self._slots = [first + i * self.interval for i in range(self.block - 1, -1, -1)]
            slot = self._slots.pop()
        wait = slot - self._clock()
        if wait > 0:
            self._sleep(wait)
