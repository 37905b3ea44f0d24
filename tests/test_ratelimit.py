"""The limiters, on a fake clock: exact spacing, no burst, and no one-second window over the limit
even when threads wake late or the process stalls; the shared one through an in-memory bucket."""

import bisect
import heapq
import threading
import time
from collections.abc import Callable

import pytest

from campaigns.provider.ratelimit import RateLimiter, SharedRateLimiter


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Bucket:
    """``send_queries.reserve_slots`` in memory: the account's next free slot, shared by senders."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.next_slot = float("-inf")
        self.calls: list[tuple[int, float]] = []

    def reserve(self, count: int, interval: float) -> float:
        self.calls.append((count, interval))
        first = max(self.next_slot, self.clock())
        self.next_slot = first + count * interval
        return first


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most times in any half-open window [t, t + width), as the rate benchmark counts."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + width - 1e-9, lo=i) - i for i, t in enumerate(times))


def simulate(
    limiter,
    clock: FakeClock,
    *,
    threads: int,
    requests: int,
    duration: float,
    late: Callable[[int], float] = lambda n: 0.0,
    stalls: tuple[tuple[float, float], ...] = (),
) -> tuple[list[float], int]:
    """Worker threads on the fake clock, each doing what ``acquire()`` does and then a request
    of ``duration``. The n-th wake-up from a slot comes ``late(n)`` seconds late, and nothing
    runs during a stall (it resumes when the stall ends). Returns the send times and how many
    times a thread was sent to sleep a second time."""

    def resumed(t: float) -> float:
        for start, end in stalls:
            if start <= t < end:
                return end
        return t

    heap = [(clock.now, i, "reserve") for i in range(threads)]
    heapq.heapify(heap)
    sends: list[float] = []
    second_sleeps = wakes = started = 0
    while heap:
        t, worker, step = heapq.heappop(heap)
        clock.now = t
        if step == "reserve":
            if started == requests:
                continue
            started += 1
            wait = limiter.reserve()
            wake = t + wait + late(wakes)
            wakes += 1
            heapq.heappush(heap, (resumed(wake), worker, "release"))
        elif step == "release":
            wait = limiter.release()
            if wait > 0:
                second_sleeps += 1
                heapq.heappush(heap, (resumed(t + wait), worker, "send"))
            else:
                heapq.heappush(heap, (t, worker, "send"))
        else:
            sends.append(t)
            heapq.heappush(heap, (resumed(t + duration), worker, "reserve"))
    return sends, second_sleeps


def local(rate: float, clock: FakeClock) -> RateLimiter:
    return RateLimiter(rate, clock=clock, sleep=clock.sleep)


def shared(rate: float, clock: FakeClock) -> SharedRateLimiter:
    return SharedRateLimiter(rate, Bucket(clock).reserve, clock=clock, sleep=clock.sleep)


LIMITERS = pytest.mark.parametrize("make", [local, shared], ids=["local", "shared"])


# -- the schedule ----


def test_requests_are_spaced_from_the_first_no_burst():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0, 0.1, 0.2, 0.3])


def test_long_run_rate_is_exact():
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    # 1000 requests at 50/s, the first at once: the last goes out at 999 / 50 s.
    assert clock.now == pytest.approx(999 / 50)


def test_idle_time_banks_nothing():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    clock.now = 100.0
    waits = [limiter.reserve() for _ in range(3)]
    assert waits == pytest.approx([0, 0.1, 0.2])


def test_threads_share_one_budget():
    limiter = RateLimiter(200)
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
    with pytest.raises(ValueError):
        SharedRateLimiter(-1, lambda *slot: 0.0)


def test_limit_is_the_rate_plus_one_for_rounding():
    assert [RateLimiter(rate).limit for rate in (0.5, 1, 50, 200, 333.3, 500)] == [
        1,
        2,
        51,
        201,
        334,
        501,
    ]


# -- the release gate ----


@LIMITERS
def test_on_time_threads_wake_once_and_hold_the_rate(make):
    clock = FakeClock(1000.0)
    sends, second_sleeps = simulate(
        make(500, clock), clock, threads=8, requests=5000, duration=0.0025
    )
    assert second_sleeps == 0
    assert max(sends) - min(sends) == pytest.approx(4999 / 500)
    assert max_in_window(sends) <= 501


@LIMITERS
def test_a_late_thread_goes_at_once_and_costs_nothing(make):
    """One request in ten wakes 3 intervals late: the gate lets each go at once (it moves one
    request into the next second, no window gains), and the run takes no longer."""
    clock = FakeClock(1000.0)
    limiter = make(500, clock)
    sends, second_sleeps = simulate(
        limiter,
        clock,
        threads=8,
        requests=5000,
        duration=0.0025,
        late=lambda n: 0.006 if n % 10 == 3 else 0.0,
    )
    assert second_sleeps == 0
    assert max(sends) - min(sends) == pytest.approx(4999 / 500, abs=0.01)
    assert max_in_window(sends) <= limiter.limit


@LIMITERS
@pytest.mark.parametrize("rate", [50, 200, 500])
def test_after_a_stall_no_second_holds_more_than_the_limit(make, rate):
    """The process stops for 80 ms twice. When it resumes, the overdue requests go together
    (there is room for them in the last second); a second later that room is gone, and the gate
    holds callers back, once each, instead of letting the next second carry them twice."""
    clock = FakeClock(1000.0)
    limiter = make(rate, clock)
    stalls = ((1002.0, 1002.08), (1005.5, 1005.58))
    sends, second_sleeps = simulate(
        limiter, clock, threads=8, requests=rate * 10, duration=0.0025, stalls=stalls
    )
    assert max_in_window(sends) <= limiter.limit
    assert len(sends) == rate * 10
    # Never later than the stalls themselves make it, never sooner than the rate allows.
    span = max(sends) - min(sends)
    assert (rate * 10 - 1) / rate - 1e-9 <= span <= (rate * 10 - 1) / rate + 0.16 + 0.01
    # Each held-back thread sleeps twice once; the threads after them wake once again.
    assert second_sleeps <= 2 * 8 * len(stalls)


@LIMITERS
def test_without_the_gate_a_stall_would_break_the_window(make):
    """The stall test's scenario bunches requests: this is what the gate is there for."""
    clock = FakeClock(1000.0)
    limiter = make(500, clock)
    limiter.release = lambda: 0.0  # the schedule alone
    sends, _ = simulate(
        limiter, clock, threads=8, requests=5000, duration=0.0025, stalls=((1002.0, 1002.08),)
    )
    assert max_in_window(sends) > 501


def test_an_interrupted_sleep_gives_its_slot_back_to_the_books():
    clock = FakeClock()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    limiter = RateLimiter(10, clock=clock, sleep=interrupted)
    limiter.reserve()  # a slot held by someone else: the next caller has to sleep
    with pytest.raises(KeyboardInterrupt):
        limiter.acquire()
    assert limiter._waiting == 1


# -- the shared bucket ----


def test_shared_reserves_a_tenth_of_a_second_at_a_time_before_it_runs_out():
    clock = FakeClock(1000.0)
    bucket = Bucket(clock)
    limiter = SharedRateLimiter(500, bucket.reserve, clock=clock, sleep=clock.sleep)
    for _ in range(500):
        limiter.acquire()
    assert clock.now == pytest.approx(1000.0 + 499 / 500)
    assert all(call == (50, 1 / 500) for call in bucket.calls)
    # 500 slots need ten blocks of 50; the next is taken when 25 are left, so one more is in hand.
    assert len(bucket.calls) == 11
    assert len(limiter._slots) == 50


def test_shared_senders_take_turns_in_the_bucket():
    clock = FakeClock(1000.0)
    bucket = Bucket(clock)
    senders = [
        SharedRateLimiter(100, bucket.reserve, clock=clock, sleep=clock.sleep) for _ in range(2)
    ]
    sends = []
    for i in range(400):
        senders[i % 2].acquire()
        sends.append(clock.now)
    # Two senders at 100/s each against one 100/s bucket: together 100/s, not 200.
    assert sends[-1] - sends[0] >= 399 / 100 * 0.9
    assert max_in_window(sends) <= 101 + 10  # each sender's slots come a block at a time


def test_shared_block_that_starts_in_the_past_starts_now():
    """An idle bucket restarts at the database's now; if the reservation took a while, its
    first slots are overdue when they arrive: they start then, they do not go out at once."""
    clock = FakeClock(1000.0)

    def slow_reserve(count: int, interval: float) -> float:
        first = clock.now
        clock.now += 0.05  # a slow transaction
        return first

    limiter = SharedRateLimiter(100, slow_reserve, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0, 0.01, 0.02, 0.03])


def test_shared_keeps_going_when_a_reservation_ahead_fails():
    clock = FakeClock(1000.0)
    bucket = Bucket(clock)
    failing = {"on": False}

    def reserve(count: int, interval: float) -> float:
        if failing["on"]:
            raise OSError("database is locked")
        return bucket.reserve(count, interval)

    limiter = SharedRateLimiter(100, reserve, clock=clock, sleep=clock.sleep)
    for _ in range(5):  # a block of 10; the next would be reserved at 5 left
        limiter.acquire()
    failing["on"] = True
    for _ in range(5):  # the reservation ahead fails, the slots in hand still go
        limiter.acquire()
    with pytest.raises(OSError):  # none left: the error reaches the caller
        limiter.acquire()
    failing["on"] = False
    limiter.acquire()
    assert clock.now == pytest.approx(1000.0 + 10 / 100)
