"""The limiter, on a fake clock: exact long-run rate, bounded burst, safe under threads."""

import threading
import time

import pytest

from campaigns.provider.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_burst_goes_out_at_once_then_the_rate_holds():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3])


def test_long_run_rate_is_exact():
    clock = FakeClock()
    limiter = RateLimiter(50, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    # 1000 requests at 50/s with 5 allowed at once: the last goes out at (1000 - 5) / 50 s.
    assert clock.now == pytest.approx((1000 - 5) / 50)


def test_idle_time_does_not_bank_more_than_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=2, clock=clock, sleep=clock.sleep)
    clock.now = 100.0
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2])


def test_threads_share_one_budget():
    limiter = RateLimiter(200, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 80 slots at 200/s cannot all fit in less than 79 intervals.
    assert max(stamps) - min(stamps) >= 79 / 200 * 0.95


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        RateLimiter(0)
