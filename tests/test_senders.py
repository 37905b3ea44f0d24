"""Several `campaigns send` processes on one campaign: fencing, the shared rate, the controls.

Every sender here is a real child process (`python -m campaigns send`), against a sandbox in this
process that keeps a ledger of what the phones received, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import SQLAlchemyError

from campaigns import api
from campaigns.config import Secret, Settings
from campaigns.importing import import_file
from campaigns.provider.ratelimit import BURST
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.sending import LEASE, LEASE_MARGIN, SendOptions
from campaigns.store import send_queries
from campaigns.store.campaign_queries import campaign_by_name, utcnow
from campaigns.store.db import Store
from campaigns.store.models import PENDING, SENDING, SENT, Message
from campaigns.store.outcomes import Outcome, record_outcomes
from tests.support.postgres import require_pg
from tests.support.recipients import valid_phones, write_csv

ROOT = Path(__file__).resolve().parent.parent
APP_ID, APP_SECRET = "senders-app", "senders-secret"
CAMPAIGN = "c"


@pytest.fixture
def provider(tmp_path):
    """A fault-free sandbox with a ledger, no daily limit, a little latency."""
    config = SandboxConfig(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        balance=10**9,
        daily_limit=0,
        latency_ms=5,
        ledger=str(tmp_path / "ledger.jsonl"),
        delivery_delay_s=600,
        seed=3,
    )
    with Sandbox(config) as sandbox:
        yield sandbox


def settings_for(db_url: str, sandbox: Sandbox) -> Settings:
    return Settings(
        db_url=db_url,
        api_url=sandbox.url,
        app_id=APP_ID,
        app_secret=Secret(APP_SECRET),
        lookup_wait=0.2,
    )


def import_campaign(db_url: str, sandbox: Sandbox, tmp_path: Path, count: int) -> list[str]:
    phones = valid_phones(count)
    path = write_csv(tmp_path / "list.csv", phones)
    api.import_file(settings_for(db_url, sandbox), path, campaign=CAMPAIGN, message="【测】{姓名}")
    return phones


class Cli:
    """`python -m campaigns ...` child processes on one database and sandbox."""

    def __init__(self, db_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
        self.folder = tmp_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHENZI_", "PG"))}
        self.env |= {
            "CAMPAIGNS_DB": db_url,
            "ZHENZI_API_URL": sandbox.url,
            "ZHENZI_APP_ID": APP_ID,
            "ZHENZI_APP_SECRET": APP_SECRET,
            "ZHENZI_LOOKUP_WAIT": "0.2",
            "ZHENZI_READ_TIMEOUT": "5",
        }

    def start(self, *args: str, appname: str = "campaigns") -> Sender:
        return Sender(self.env | {"PGAPPNAME": appname}, args, self.folder)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "campaigns", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


class Sender:
    def __init__(self, env: dict[str, str], args: tuple[str, ...], folder: Path) -> None:
        self.errors = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "campaigns", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
        )
        self.pid = self.proc.pid
        self.stderr = ""

    def wait(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if not self.errors.closed:
                self.errors.seek(0)
                self.stderr = self.errors.read().decode("utf-8", errors="replace")
                self.errors.close()
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.wait(10)


@pytest.fixture
def senders():
    """Started senders; any still running when a test ends is killed (and reaped)."""
    started: list[Sender] = []
    yield started
    for sender in started:
        if sender.proc.poll() is None:
            sender.kill()


def wait_until(condition, timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def held_by(store: Store, pid: int) -> list[tuple[int, str]]:
    """(id, claimed_by) of the messages process ``pid`` holds `sending`."""
    with store.session() as session:
        return list(
            session.execute(
                select(Message.id, Message.claimed_by).where(
                    Message.state == SENDING, Message.claimed_by.like(f"{pid}@%")
                )
            ).all()
        )


def rows(store: Store) -> dict[int, tuple[str, str, str | None]]:
    """id -> (messageId, state, claimed_by) of every valid message."""
    with store.session() as session:
        found = session.execute(
            select(Message.id, Message.message_id, Message.state, Message.claimed_by).where(
                Message.message_id.is_not(None)
            )
        ).all()
    return {pk: (message_id, state, holder) for pk, message_id, state, holder in found}


def assert_exactly_once(sandbox: Sandbox, store: Store, phones: list[str]) -> None:
    """Every number received one SMS; the database says `sent` for exactly those messages."""
    ledger = sandbox.ledger_entries()
    per_number = Counter(entry["number"] for entry in ledger)
    duplicated = {number: n for number, n in per_number.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} numbers received more than one SMS: {duplicated}"
    assert set(per_number) == set(phones), f"lost: {sorted(set(phones) - set(per_number))[:5]}"
    states = rows(store)
    assert Counter(state for _, state, _ in states.values()) == {SENT: len(phones)}
    assert {message_id for message_id, _, _ in states.values()} == {
        entry["messageId"] for entry in ledger
    }


# -- fencing: a sender that lost its lease while stopped changes nothing ----


def _holds_a_transaction(store: Store, db_url: str, appname: str) -> bool:
    """Does the stopped sender hold a database transaction (it would block everyone)?"""
    if store.is_sqlite:
        path = db_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=0.3)) as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            connection.rollback()
        return False
    with store.engine.connect() as connection:
        busy = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                "AND state <> 'idle'"
            ),
            {"name": appname},
        ).scalar()
    return bool(busy)


def _stop_outside_a_transaction(sender: Sender, store: Store, db_url: str, appname: str) -> None:
    for _ in range(50):
        os.kill(sender.pid, signal.SIGSTOP)
        time.sleep(0.1)
        if not _holds_a_transaction(store, db_url, appname):
            return
        os.kill(sender.pid, signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("could not stop the sender outside a database transaction")


@pytest.mark.timeout(240)
def test_a_stopped_sender_whose_lease_expired_sends_nothing_again_and_records_nothing(
    any_db_url, provider, tmp_path, senders
):
    """SIGSTOP a sender mid-run (a GC pause, a frozen VM), let its leases expire, let another
    sender take its messages over and finish the campaign, then SIGCONT the first: it must not
    send them again, nor write its stale outcomes over the second sender's.

    The stop lasts longer than the sender's own safe window (LEASE - LEASE_MARGIN): a real lease
    only expires once that much time has passed without a renewal, and the sender knows it.
    Expiring the leases in the database stands in for the rest of the 30 s.
    """
    phones = import_campaign(any_db_url, provider, tmp_path, 60)
    provider.config.latency_ms = 50
    cli = Cli(any_db_url, provider, tmp_path)
    store = Store(any_db_url)
    try:
        # --rate 4: most of its 16 claims wait in the queue for a slot when it is stopped.
        slow = cli.start("send", CAMPAIGN, "--rate", "4", "--concurrency", "4", appname="slow")
        senders.append(slow)
        wait_until(
            lambda: len(provider.ledger_entries()) >= 3 and held_by(store, slow.pid),
            60,
            "the first sender to be sending",
        )
        _stop_outside_a_transaction(slow, store, any_db_url, "slow")
        stopped_at = time.monotonic()
        held = dict(held_by(store, slow.pid))
        assert held, "the stopped sender holds messages in flight"
        with store.session.begin() as session:  # its leases run out (30 s, cut short)
            session.execute(
                update(Message)
                .where(Message.id.in_(list(held)))
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        fast = cli.start("send", CAMPAIGN, "--concurrency", "8", appname="fast")
        senders.append(fast)
        assert fast.wait(120) == 0, fast.stderr
        assert_exactly_once(provider, store, phones)
        after_fast = rows(store)
        assert all(after_fast[pk][2].startswith(f"{fast.pid}@") for pk in held)

        pause = LEASE.total_seconds() - LEASE_MARGIN + 2
        time.sleep(max(0.0, stopped_at + pause - time.monotonic()))
        os.kill(slow.pid, signal.SIGCONT)
        code = slow.wait(120)
        assert code in (0, 2), slow.stderr
        # Nothing sent twice, nothing the first sender wrote changed the second one's outcomes.
        assert_exactly_once(provider, store, phones)
        assert rows(store) == after_fast
    finally:
        store.close()


# -- the shared rate bucket ----


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals in any half-open window [t, t + width)."""
    return max(bisect.bisect_left(times, t + width, lo=i) - i for i, t in enumerate(times))


RATE, CONCURRENCY = 60, 8


@pytest.mark.timeout(240)
def test_three_senders_together_keep_the_account_rate(any_db_url, provider, tmp_path, senders):
    """`--rate` is the account's: three senders share one bucket in the database.

    Measured at the sandbox over 900 sends. The combined rate: within 5% of R (seen -0.7 to
    -1.5%: the slots reserved by senders that ran out of work leave gaps between the very last
    sends). The most sends in any 1-second window: 61 to 65 on a quiet machine; the bound
    allows one sender stalled by the scheduler on a busy 2-core box, which then sends late, at
    once, the slots it had already taken (one per worker plus the rest of its block of R/10):
    seen 73 once while a torture run shared the cores.
    """
    count = RATE * 15
    phones = import_campaign(any_db_url, provider, tmp_path, count)
    cli = Cli(any_db_url, provider, tmp_path)
    args = ("send", CAMPAIGN, "--rate", str(RATE), "--concurrency", str(CONCURRENCY))
    group = [cli.start(*args) for _ in range(3)]
    senders.extend(group)
    for sender in group:
        assert sender.wait(180) == 0, sender.stderr
    arrivals = sorted(provider.arrival_times())
    assert len(arrivals) == count
    achieved = (count - 1) / (arrivals[-1] - arrivals[0])
    window = max_in_window(arrivals)
    figures = f"achieved {achieved:.2f}/s for --rate {RATE}; most in 1 s: {window}"
    print(figures)
    assert abs(achieved / RATE - 1) <= 0.05, figures
    one_stalled_sender = CONCURRENCY + max(1, round(RATE / 10)) - 1
    assert window <= RATE + BURST + one_stalled_sender, figures
    store = Store(any_db_url)
    try:
        assert_exactly_once(provider, store, phones)
        shares = Counter(holder.split("@")[0] for _, _, holder in rows(store).values())
    finally:
        store.close()
    # The three shared the work: none sat idle while there was some left.
    assert set(shares) == {str(sender.pid) for sender in group}, shares
    assert min(shares.values()) >= count // 10, shares


@pytest.mark.timeout(120)
def test_retries_take_their_slot_from_the_rate_too(db_url, provider, tmp_path):
    """The provider counts requests, refused ones included: a request the client repeats after
    an HTTP 502 or a code 1000 must wait for a slot like any other. (Today the client's retries
    bypass the limiter: with 10% 502s at --rate 100 the provider saw 103.7 requests/s on
    average and 116 in one second.)"""
    import_campaign(db_url, provider, tmp_path, 600)
    provider.config.fail_5xx = 0.10
    api.send(settings_for(db_url, provider), CAMPAIGN, SendOptions(rate=100, concurrency=8))
    arrivals = sorted(provider.arrival_times())
    assert len(arrivals) > 600  # the 502s were retried
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    window = max_in_window(arrivals)
    figures = f"{len(arrivals)} requests at {achieved:.1f}/s; most in 1 s: {window}"
    assert achieved <= 100 * 1.02, figures
    assert window <= 100 + BURST + 3, figures


def test_a_new_rate_bucket_survives_simultaneous_first_reservations(any_db_url, tmp_path):
    """Senders started together on a new account all make their first reservation at once."""
    store = Store(any_db_url)
    errors: list[str] = []
    try:
        for attempt in range(10):
            barrier = threading.Barrier(4)

            def reserve(name: str = f"account-{attempt}", barrier=barrier) -> None:
                barrier.wait()
                try:
                    send_queries.reserve_slots(store, name, 5, 0.01)
                except SQLAlchemyError as exc:
                    errors.append(str(exc).splitlines()[0])

            threads = [threading.Thread(target=reserve) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        store.close()
    assert not errors, f"{len(errors)} of 40 first reservations failed: {errors[0]}"


def test_a_database_error_in_the_rate_limiter_does_not_hang_the_sender(
    db_url, provider, tmp_path, monkeypatch
):
    """A failed reservation (database restart, lock timeout) must end the run or be retried:
    a worker thread that dies with its claim leaves the run waiting for it for ever, the claim
    `sending` under a lease its heartbeat keeps renewing, so no other sender may take it."""
    import_campaign(db_url, provider, tmp_path, 50)
    real = send_queries.reserve_slots
    calls = Counter()

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SQLAlchemyError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(send_queries, "reserve_slots", flaky)
    options = SendOptions(rate=200, concurrency=4)
    done = threading.Event()
    ended: list[object] = []

    def send() -> None:
        try:
            ended.append(api.send(settings_for(db_url, provider), CAMPAIGN, options))
        except Exception as exc:  # what it raised is checked below
            ended.append(exc)
        done.set()

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    finished = done.wait(30)
    options.stop.set()  # let a hung run go, so the test process can end
    assert finished, "the sender hung after one failed rate reservation"
    # Either the run carried on (slots were left) or it ended with the database error itself.
    outcome = ended[0]
    assert isinstance(outcome, SQLAlchemyError) or outcome.sent == 50, repr(outcome)
    monkeypatch.setattr(send_queries, "reserve_slots", real)
    api.send(settings_for(db_url, provider), CAMPAIGN, SendOptions(rate=200, concurrency=4))
    counts = Counter(entry["number"] for entry in provider.ledger_entries())
    assert len(counts) == 50 and max(counts.values()) == 1


@pytest.mark.timeout(60)
def test_lease_renewal_and_outcome_writes_do_not_deadlock_on_postgresql(pg_url, tmp_path):
    """A sender writes a batch of outcomes (main thread) while its heartbeat renews the leases of
    the same messages (another connection). Each locks the rows in its own order; on PostgreSQL
    the two can wait for each other, and the server then aborts one: when it is the outcome
    write, `campaigns send` crashes (seen in `bench.senders`: "deadlock detected")."""
    store = Store(pg_url)
    path = write_csv(tmp_path / "d.csv", valid_phones(1000))
    import_file(store, path, campaign=CAMPAIGN, message="【测】{姓名}")
    campaign = campaign_by_name(store, CAMPAIGN).id
    me = "1@host/run"
    claims = send_queries.claim_batch(store, campaign, 1000, me, LEASE)
    errors: list[str] = []
    until = time.monotonic() + 4

    def record() -> None:
        rng = random.Random(1)
        while time.monotonic() < until:
            batch = rng.sample(claims, 200)  # outcomes arrive in no particular order
            outcomes = [Outcome(c.id, SENDING, attempts=1, keep_lease=True) for c in batch]
            try:
                record_outcomes(store, outcomes, me)
            except SQLAlchemyError as exc:
                errors.append(f"outcome write: {str(exc).splitlines()[0]}")

    def renew() -> None:
        while time.monotonic() < until:
            try:
                send_queries.renew_leases(store, me, utcnow() + LEASE)
            except SQLAlchemyError as exc:
                errors.append(f"renewal: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=record), threading.Thread(target=renew)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        store.close()
    assert not errors, f"{len(errors)} aborted transactions, e.g. {errors[0]}"


# -- the controls while senders run ----


def _status(cli: Cli) -> dict:
    done = cli.run("status", CAMPAIGN, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(240)
def test_status_report_and_pause_work_while_senders_run_on_postgresql(
    pg_url, provider, tmp_path, senders
):
    phones = import_campaign(pg_url, provider, tmp_path, 600)
    provider.config.latency_ms = 20
    cli = Cli(pg_url, provider, tmp_path)
    group = [cli.start("send", CAMPAIGN, "--rate", "30", "--concurrency", "8") for _ in range(2)]
    senders.extend(group)
    wait_until(lambda: len(provider.ledger_entries()) >= 40, 60, "the senders to be sending")

    status = _status(cli)
    counts = status["by_state"]
    assert status["total"] == sum(counts.values()) == 600
    assert 0 < counts[SENT] <= len(provider.ledger_entries())
    assert counts[PENDING] > 0
    shown = cli.run("status", CAMPAIGN)
    assert shown.returncode == 0, shown.stderr
    assert "sending now:" in shown.stdout
    assert all(f"{sender.pid}@" in shown.stdout for sender in group), shown.stdout

    report = tmp_path / "report.csv"
    made = cli.run("report", CAMPAIGN, "--output", str(report))
    assert made.returncode == 0, made.stderr
    frame = pd.read_csv(report, encoding="utf-8-sig", dtype=str)
    assert len(frame) == 600
    assert set(frame["state"]) <= {PENDING, SENDING, SENT}

    paused = cli.run("pause", CAMPAIGN)
    assert paused.returncode == 0, paused.stderr
    asked = time.monotonic()
    for sender in group:
        assert sender.wait(30) == 2, sender.stderr
        assert "paused" in sender.stderr
    assert time.monotonic() - asked < 10  # "a running send stops within a second" (+ start-up)
    sent_when_paused = len(provider.ledger_entries())
    time.sleep(1)
    assert len(provider.ledger_entries()) == sent_when_paused
    status = _status(cli)
    assert status["by_state"][SENT] == sent_when_paused < 600
    assert status["by_state"][SENDING] == 0

    resumed = cli.run("send", CAMPAIGN, "--concurrency", "8", timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    store = Store(pg_url)
    try:
        assert_exactly_once(provider, store, phones)
    finally:
        store.close()


@pytest.mark.timeout(240)
def test_cancel_stops_every_sender_on_postgresql(pg_url, provider, tmp_path, senders):
    import_campaign(pg_url, provider, tmp_path, 400)
    cli = Cli(pg_url, provider, tmp_path)
    group = [cli.start("send", CAMPAIGN, "--rate", "30", "--concurrency", "8") for _ in range(3)]
    senders.extend(group)
    wait_until(lambda: len(provider.ledger_entries()) >= 20, 60, "the senders to be sending")
    cancelled = cli.run("cancel", CAMPAIGN, "--yes")
    assert cancelled.returncode == 0, cancelled.stderr
    for sender in group:
        assert sender.wait(30) == 2, sender.stderr
        assert "cancelled" in sender.stderr
    ledger = provider.ledger_entries()
    assert max(Counter(entry["number"] for entry in ledger).values()) == 1
    counts = _status(cli)["by_state"]
    assert counts[SENT] == len(ledger)
    assert counts[SENT] + counts["cancelled"] == 400
    again = cli.run("send", CAMPAIGN)
    assert again.returncode == 1 and "cancelled" in again.stderr
    assert len(provider.ledger_entries()) == len(ledger)


# -- the benchmark runs ----


@pytest.mark.timeout(120)
def test_senders_benchmark_smoke_run(tmp_path):
    require_pg()  # bench.senders needs a server
    output = tmp_path / "senders.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.senders", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(output.read_text(encoding="utf-8"))
    assert figures["benchmark"] == "senders" and figures["smoke"] is True
    assert {"1", "2", "4", "rate"} <= figures["rows"].keys()
    assert figures["goals"]
