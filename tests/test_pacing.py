"""Requests in flight sized from the measured latency; parked messages; the rate summary."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from campaigns import api
from campaigns.cli.base import _STOP_EXIT_CODES, EXIT_STOPPED
from campaigns.config import Secret
from campaigns.errors import ConnectionProblem, SendStopped, StopReason
from campaigns.provider.client import FIND_PATH, SEND_PATH, SendResult, ZhenziClient
from campaigns.sending import SendOptions, SendProgress, send_campaign
from campaigns.sending.pacing import InFlight, limited_by
from campaigns.store.db import Store
from campaigns.store.models import FAILED, PENDING, SENT
from tests.support.proxy import CutOff, FaultProxy, bad_gateway, dropped_reply, held_reply
from tests.support.recipients import APP_ID, APP_SECRET, quick_client, valid_phones, write_csv


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_with_a_rate_the_target_is_rate_times_latency_plus_headroom():
    sizing = InFlight(300, cap=320, clock=FakeClock())
    assert sizing.target == 320  # before any reply: room for up to a second of latency
    sizing.observe(0.2)
    assert sizing.target == 79  # ceil(300 × 0.2 × 1.25) + 4
    for _ in range(200):  # the latency falls to 20 ms: the target follows it down
        sizing.observe(0.02)
    assert 11 <= sizing.target <= 13
    assert sizing.capped_share == 0.0


def test_the_target_never_passes_the_cap_and_says_the_cap_held_it():
    sizing = InFlight(500, cap=64, clock=FakeClock())
    for _ in range(10):
        sizing.observe(0.5)
    assert sizing.target == 64
    assert sizing.capped_share == 1.0
    why = limited_by(sizing, cpu_share=0.1, error_share=0.0, shared=True)
    assert why.startswith("latency × requests in flight (500 ms × the cap of 64")


def test_without_a_rate_it_grows_while_latency_holds_and_shrinks_when_it_doubles():
    clock = FakeClock()
    sizing = InFlight(None, cap=40, clock=clock)
    for second in range(1, 6):  # steady 20 ms: +25% a second, up to the cap
        clock.now = float(second)
        sizing.observe(0.02)
    assert sizing.target == 40
    clock.now = 6.0
    sizing.observe(0.02)
    clock.now = 7.0
    sizing.observe(0.05)  # queueing at the provider: latency more than doubled
    assert sizing.target == 32
    clock.now = 7.5
    sizing.observe(0.05)  # within the same second: no change
    assert sizing.target == 32


def test_a_reply_far_later_than_usual_is_overdue():
    sizing = InFlight(100, cap=16, clock=FakeClock())
    sizing.observe(0.1)
    assert sizing.overdue_after() == pytest.approx(0.4)
    sizing = InFlight(100, cap=16, clock=FakeClock())
    sizing.observe(0.001)
    assert sizing.overdue_after() == 0.05


def test_unknown_outcomes_are_looked_up_soon_then_less_often_and_held_sends_hedged_later():
    sizing = InFlight(100, cap=16, clock=FakeClock())
    sizing.observe(0.02)
    assert [sizing.lookup_after(n) for n in range(3)] == pytest.approx([0.2, 0.6, 1.8])
    assert sizing.hedge_after() == 0.25  # never sooner: a slow reply is not yet a fault
    assert InFlight(100, cap=16, clock=FakeClock()).hedge_after() == 2.0  # no reply seen yet
    sizing = InFlight(100, cap=320, clock=FakeClock())
    sizing.observe(0.5)
    assert sizing.lookup_after(0) == pytest.approx(1.0)  # twice the usual latency
    assert sizing.hedge_after() == pytest.approx(4.0)  # eight times it


def test_one_held_up_reply_does_not_swell_the_latency_the_target_is_sized_from():
    sizing = InFlight(300, cap=320, clock=FakeClock())
    for _ in range(50):
        sizing.observe(0.02)
    before = sizing.target
    sizing.observe(30.0)  # a reply held up for half a minute counts as merely overdue
    assert sizing.latency == pytest.approx(0.02 + 0.05 * (0.08 - 0.02))
    assert sizing.target - before <= 1
    for _ in range(60):  # while a real rise in latency still lifts it
        sizing.observe(0.5)
    assert sizing.latency > 0.4


def test_the_rate_summary_names_the_limit_only_when_the_rate_was_missed():
    progress = SendProgress(total=10, asked_rate=300.0, achieved_rate=290.0, limited_by="CPU")
    assert progress.rate_summary() is None
    progress.achieved_rate = 77.0
    assert progress.rate_summary() == "achieved 77/s of the 300/s asked, limited by CPU"
    assert SendProgress(total=1, achieved_rate=50.0).rate_summary() is None  # no --rate
    sizing = InFlight(300, cap=320)
    assert limited_by(sizing, cpu_share=0.2, error_share=0.05, shared=True).startswith(
        "provider errors (5%"
    )
    assert limited_by(sizing, cpu_share=0.95, error_share=0.0, shared=True).startswith("CPU")
    assert limited_by(sizing, cpu_share=0.2, error_share=0.0, shared=True).startswith(
        "the shared rate limiter"
    )


def test_a_parked_unknown_message_is_not_resent_before_its_lookup_and_others_go_on(
    settings, sandbox, tmp_path
):
    """The first send's reply is dropped after the provider accepted it, and its first three
    lookups fail: the message is parked (not resent), the other 29 go meanwhile on the only
    worker, and the lookup that finally answers finds it sent: once in the ledger."""
    path = write_csv(tmp_path / "list.csv", valid_phones(30))
    api.import_file(settings, path, campaign="parked", message="【测试】{姓名}您好")

    def faults(where: str, seen: int):
        if where == SEND_PATH and seen == 0:
            return dropped_reply()
        if where == FIND_PATH and seen < 3:
            return bad_gateway()
        return None

    store = Store(settings.db_url)
    try:
        with FaultProxy(sandbox.url, faults) as proxy:
            progress = send_campaign(
                store, quick_client(proxy.url, max_attempts=5), "parked", SendOptions(concurrency=1)
            )
            assert proxy.seen[FIND_PATH] == 4
            assert proxy.seen[SEND_PATH] == 30
    finally:
        store.close()
    assert progress.sent == 30 and progress.unknown == 0
    counts = Counter(entry["number"] for entry in sandbox.ledger_entries())
    assert len(counts) == 30 and max(counts.values()) == 1
    assert progress.achieved_rate is not None and progress.achieved_rate > 0


def test_a_message_refused_transiently_is_parked_and_retried_later(settings, sandbox, tmp_path):
    path = write_csv(tmp_path / "list.csv", valid_phones(12))
    api.import_file(settings, path, campaign="retry", message="【测试】{姓名}您好")
    store = Store(settings.db_url)
    try:
        with FaultProxy(sandbox.url) as proxy:
            proxy.intercept = lambda where, seen: bad_gateway() if seen in (0, 1) else None
            progress = send_campaign(
                store, quick_client(proxy.url, max_attempts=5), "retry", SendOptions(concurrency=2)
            )
    finally:
        store.close()
    assert progress.sent == 12
    counts = Counter(entry["number"] for entry in sandbox.ledger_entries())
    assert len(counts) == 12 and max(counts.values()) == 1


class CutOffClient(ZhenziClient):
    """The sandbox's client, until the request configuration breaks after ``good`` sends."""

    def __init__(self, url: str, good: int) -> None:
        super().__init__(url, APP_ID, Secret(APP_SECRET))
        self.good = good
        self.sends = 0

    def send_message(self, *args, **kwargs) -> SendResult:  # type: ignore[no-untyped-def]
        self.sends += 1  # counted on the one-attempt copy the pool makes
        if self.sends > self.good:
            raise ConnectionProblem("the request to 127.0.0.1 failed: InvalidHeader: bad")
        return super().send_message(*args, **kwargs)


def test_a_connection_problem_mid_send_stops_the_run_and_marks_nothing_failed(
    settings, sandbox, tmp_path
):
    path = write_csv(tmp_path / "list.csv", valid_phones(20))
    api.import_file(settings, path, campaign="cut", message="【测试】{姓名}您好")
    store = Store(settings.db_url)
    try:
        with pytest.raises(SendStopped) as stopped:
            send_campaign(
                store, CutOffClient(sandbox.url, good=5), "cut", SendOptions(concurrency=1)
            )
    finally:
        store.close()
    assert stopped.value.reason is StopReason.CONNECTION
    assert "InvalidHeader" in str(stopped.value)
    assert _STOP_EXIT_CODES[StopReason.CONNECTION] == EXIT_STOPPED == 2
    by_state = api.status(settings, "cut").by_state
    assert (by_state[SENT], by_state[FAILED], by_state[PENDING]) == (5, 0, 15)
    assert len(sandbox.ledger_entries()) == 5


def _patient_client(url: str, *, lookup_wait: float) -> ZhenziClient:
    """Waits a minute for a reply and ``lookup_wait`` before a "not found" means "never got it"."""
    return ZhenziClient(
        url,
        APP_ID,
        Secret(APP_SECRET),
        read_timeout=60.0,
        backoff_initial=0.01,
        backoff_max=0.02,
        visibility_wait=lookup_wait,
    )


def _send_through(settings, sandbox, tmp_path, faults, *, messages: int, lookup_wait: float):
    path = write_csv(tmp_path / "list.csv", valid_phones(messages))
    api.import_file(settings, path, campaign="faults", message="【测试】{姓名}您好")
    store = Store(settings.db_url)
    proxy = FaultProxy(sandbox.url, faults)
    try:
        with proxy:
            client = _patient_client(proxy.url, lookup_wait=lookup_wait)
            progress = send_campaign(store, client, "faults", SendOptions(concurrency=4))
            held_when_done = proxy.holding
    finally:
        store.close()
    counts = Counter(entry["number"] for entry in sandbox.ledger_entries())
    assert len(counts) == messages and max(counts.values()) == 1
    assert progress.sent == messages
    return proxy, held_when_done


def _sends(proxy: FaultProxy) -> list[tuple[float, str]]:
    """(when, messageId) of each send request the proxy saw, in order."""
    return [(t, mid) for t, path, mid in proxy.arrivals if path == SEND_PATH]


@pytest.mark.parametrize("messages", [10, 1])
def test_a_send_whose_reply_is_held_up_is_found_by_lookup_and_the_run_does_not_wait(
    settings, sandbox, tmp_path, messages
):
    """The provider accepted the first message, but its reply is held for a minute: a lookup
    made while it is out finds the message, so the run ends with the reply still held. With one
    message, the only worker is the one waiting for the reply: another must start to look."""
    release = threading.Event()

    def faults(where: str, seen: int):
        return held_reply(60.0, until=release) if where == SEND_PATH and seen == 0 else None

    try:
        proxy, held_when_done = _send_through(
            settings, sandbox, tmp_path, faults, messages=messages, lookup_wait=60.0
        )
    finally:
        release.set()
    assert held_when_done == 1
    _, first_id = _sends(proxy)[0]
    assert (FIND_PATH, first_id) in {(path, mid) for _, path, mid in proxy.arrivals}
    assert proxy.seen[SEND_PATH] == messages


def test_an_unknown_outcome_is_confirmed_by_an_early_lookup_not_after_the_lookup_wait(
    settings, sandbox, tmp_path
):
    """The reply to an accepted send is dropped: "found" settles it long before the lookup
    wait (a minute here) could pass."""
    faults = lambda where, seen: dropped_reply() if where == SEND_PATH and seen == 0 else None  # noqa: E731
    proxy, _ = _send_through(settings, sandbox, tmp_path, faults, messages=10, lookup_wait=60.0)
    sent_at, first_id = _sends(proxy)[0]
    found_at = min(t for t, path, mid in proxy.arrivals if path == FIND_PATH and mid == first_id)
    assert found_at - sent_at < 30.0
    assert proxy.seen[SEND_PATH] == 10


def _lookups_and_resend(proxy: FaultProxy, nth: int) -> tuple[list[float], float]:
    """For the ``nth`` send: its lookups and its second send, in seconds after the first."""
    sent_at, message_id = _sends(proxy)[nth]
    mine = [(t - sent_at, path) for t, path, mid in proxy.arrivals if mid == message_id]
    resent = [t for t, path in mine if path == SEND_PATH][1]
    return [t for t, path in mine if path == FIND_PATH], resent


# Not the first send: by the fifth, replies have shown the usual latency. The wait runs from when
# the client began the send, a little before the proxy saw it (hence 1.4 for a wait of 1.5).
def test_an_early_not_found_never_allows_a_resend_before_the_lookup_wait(
    settings, sandbox, tmp_path
):
    """The connection is cut before the request reaches the provider; the client cannot tell,
    so it looks early (in case it arrived) and again; only the lookup made after the lookup wait
    lets the message go again."""
    faults = lambda where, seen: CutOff() if where == SEND_PATH and seen == 4 else None  # noqa: E731
    proxy, _ = _send_through(settings, sandbox, tmp_path, faults, messages=8, lookup_wait=1.5)
    lookups, resent = _lookups_and_resend(proxy, 4)
    assert min(lookups) < 1.0 and len(lookups) >= 2  # early ones, which could not tell
    assert max(lookups) >= 1.4  # ... and the one that could
    assert max(lookups) < resent


def test_an_error_reply_is_looked_up_once_when_the_lookup_can_tell(settings, sandbox, tmp_path):
    """A 502 may hide a request the provider got, but most likely it went no further: no early
    lookup spends a slot on it; the one lookup after the lookup wait decides."""
    faults = lambda where, seen: bad_gateway() if where == SEND_PATH and seen == 4 else None  # noqa: E731
    proxy, _ = _send_through(settings, sandbox, tmp_path, faults, messages=8, lookup_wait=1.5)
    lookups, resent = _lookups_and_resend(proxy, 4)
    assert len(lookups) == 1 and 1.4 <= lookups[0] < resent
