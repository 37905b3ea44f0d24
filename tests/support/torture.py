"""Exactly-once torture: SIGKILL `campaigns send` processes at random moments while the provider
misbehaves, with several senders working one campaign at once. Run by a test
(tests/test_exactly_once.py) and, at any size, by `python -m bench.torture`.

A sandbox runs in this process with a ledger of every SMS it accepted, injecting dropped
connections, HTTP 5xx, replies slower than the client's read timeout and code 1000. `--senders`
real `campaigns send` processes work the campaign together (SQLite file or PostgreSQL database).

Each round: the pool is topped up to `--senders` running processes; after a random delay a random
non-empty subset of the running senders is killed with SIGKILL (in half the rounds only once every
victim holds messages in flight, i.e. mid-request, between reply and write or mid-commit; in the
others wherever they are, often start-up and recovery). The survivors are not touched: they keep
sending into the next round, where they find the dead senders' `sending` messages (dead PID on
this host: taken over at once) and look them up. In some rounds (`--graceful`) one survivor is
also stopped with SIGTERM, which must record its in-flight requests and exit 130. After the last
kill the survivors run to the end, then `campaigns send` runs once more until nothing is left.

The verdict compares the ledger (what the phones received) with the database: any duplicate, any
lost recipient, any message whose state disagrees with the ledger, or any message left `sending`
fails it; so does a sender that exits other than 0, 2 (provider unavailable), 130 (SIGTERM) or by
our SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from campaigns import api
from campaigns.config import Secret, Settings
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.store.db import Store
from campaigns.store.models import DELIVERED, PENDING, SENDING, SENT, UNDELIVERED, Message

CAMPAIGN = "torture"
APP_ID, APP_SECRET = "torture-app", "torture-secret"
RECEIVED = (SENT, DELIVERED, UNDELIVERED)
# How a sender may end on its own: done, stopped for a provider reason, stopped by SIGTERM.
CLEAN_EXITS = (0, 2, 130)
FLOW_WAIT = 10.0  # seconds a "mid-flow" round waits for its victims to hold messages in flight


@dataclass
class TortureConfig:
    recipients: int = 5000
    kills: int = 20  # SIGKILLed processes (a round kills one or more)
    seed: int = 1
    drop: float = 0.05
    fail_5xx: float = 0.05
    slow: float = 0.05
    fail_1000: float = 0.03
    visibility_delay: float = 0.0
    lookup_wait: float = 0.5
    read_timeout: float = 0.5
    latency_ms: float = 5.0
    rate: float = 300.0
    concurrency: int = 8
    kill_after: tuple[float, float] = (0.0, 2.0)
    senders: int = 3
    graceful: float = 0.25  # share of rounds that also stop one survivor with SIGTERM
    db_url: str | None = None  # default: a SQLite file in the work folder


@dataclass
class Verdict:
    recipients: int
    ledger_sms: int
    duplicates: int
    lost: int
    kills: int
    mismatched: int
    left_sending: int
    retried: int
    senders: int = 1
    rounds_run: int = 0
    sigterms: int = 0
    db: str = "sqlite"
    rounds: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.mismatched or self.left_sending)

    def line(self) -> str:
        figures = {k: v for k, v in asdict(self).items() if k != "rounds"}
        return ("PASS " if self.ok else "FAIL ") + " ".join(f"{k}={v}" for k, v in figures.items())


def _phones(count: int) -> list[str]:
    return [f"139{i:08d}" for i in range(count)]


class _Sender:
    """One `campaigns send` child; stderr goes to a file (a pipe nobody reads could fill up)."""

    def __init__(self, env: dict[str, str], config: TortureConfig, folder: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "campaigns",
            "send",
            CAMPAIGN,
            "--concurrency",
            str(config.concurrency),
            "--rate",
            str(config.rate),
        ]
        self.stderr = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr
        )
        self.pid = self.proc.pid
        self.killed = False
        self.text = ""

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(number)
        # SIGTERM before `campaigns` installed its handler (still importing) kills it outright.
        self.killed = self.killed or number in (signal.SIGKILL, signal.SIGTERM)

    def wait(self, timeout: float = 600) -> int:
        """Reap it; an exit we did not cause and that is not a clean stop is a failure."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
            raise RuntimeError(f"sender {self.pid} still running after {timeout:.0f} s") from None
        if not self.stderr.closed:
            self.stderr.seek(0)
            self.text = self.stderr.read().decode("utf-8", errors="replace")
            self.stderr.close()
        if not self.killed and code not in CLEAN_EXITS:
            raise RuntimeError(f"sender {self.pid} exited {code}: {self.text.strip()[-800:]}")
        return code


def _states(store: Store) -> Counter:
    with store.session() as session:
        return Counter(
            session.scalars(select(Message.state).where(Message.message_id.is_not(None)))
        )


def _in_flight(store: Store, pid: int) -> int:
    with store.session() as session:
        return session.scalar(
            select(func.count()).where(
                Message.state == SENDING, Message.claimed_by.like(f"{pid}@%")
            )
        )


def _wait_in_flight(store: Store, victims: list[_Sender]) -> None:
    """Until every victim holds `sending` messages (is mid-flow), or has stopped by itself."""
    deadline = time.monotonic() + FLOW_WAIT
    waiting = list(victims)
    while waiting and time.monotonic() < deadline:
        waiting = [v for v in waiting if v.running() and not _in_flight(store, v.pid)]
        if waiting:
            time.sleep(0.02)


def _work_left(store: Store) -> bool:
    states = _states(store)
    return bool(states[PENDING] or states[SENDING])


@dataclass
class _Rounds:
    kills: int = 0
    rounds: int = 0
    sigterms: int = 0
    lines: list[str] = field(default_factory=list)


def _kill_rounds(
    env, config: TortureConfig, store: Store, sandbox: Sandbox, folder: Path, say
) -> _Rounds:
    """Kill random subsets of the running senders until ``config.kills`` processes died.

    The survivors of a round keep running into the next one, where fresh senders join them to
    make ``config.senders`` again; at the end the survivors run until the campaign is done.
    """
    rng = random.Random(config.seed)
    done = _Rounds()
    pool: list[_Sender] = []
    try:
        while done.kills < config.kills:
            for sender in [s for s in pool if not s.running()]:
                sender.wait()  # finished by itself (0, 2): fine; anything else raises
                pool.remove(sender)
            if not pool and not _work_left(store):
                break  # the campaign finished before the kills were used up
            pool += [_Sender(env, config, folder) for _ in range(config.senders - len(pool))]
            time.sleep(rng.uniform(*config.kill_after))  # the random moment of the crash
            alive = [s for s in pool if s.running()]
            if not alive:
                continue
            victims = [s for s in alive if rng.random() < 0.5] or [rng.choice(alive)]
            if rng.random() < 0.5:
                # Half the crashes hit senders in full flow (mid-request, between reply and
                # write, mid-commit); the others hit wherever they are, often start-up/recovery.
                _wait_in_flight(store, victims)
            held = {v.pid: _in_flight(store, v.pid) for v in victims}
            for victim in victims:
                victim.signal(signal.SIGKILL)
            for victim in victims:
                victim.wait()
                pool.remove(victim)
            done.kills += len(victims)
            done.rounds += 1
            stopped = ""
            survivors = [s for s in pool if s.running()]
            if survivors and rng.random() < config.graceful:
                chosen = rng.choice(survivors)
                chosen.signal(signal.SIGTERM)
                code = chosen.wait(timeout=120)
                pool.remove(chosen)
                if code not in (*CLEAN_EXITS, -signal.SIGTERM):
                    raise RuntimeError(f"SIGTERM: sender {chosen.pid} exited {code}: {chosen.text}")
                done.sigterms += 1
                stopped = f"; SIGTERM pid {chosen.pid} → exit {code}"
            line = (
                f"round {done.rounds}: SIGKILL {len(victims)} of {len(alive)} "
                f"(pid: in flight {held}){stopped}; ledger {len(sandbox.ledger_entries())}; "
                f"{dict(_states(store))}"
            )
            done.lines.append(line)
            say(line)
        for sender in pool:  # the survivors carry on to the end
            code = sender.wait()
            say(f"survivor {sender.pid}: exit {code}")
        pool.clear()
    finally:
        for sender in pool:
            sender.signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                sender.wait(timeout=30)
    return done


def _finish(env, config: TortureConfig, store: Store, folder: Path, say) -> None:
    for attempt in range(20):
        sender = _Sender(env, config, folder)
        code = sender.wait()
        states = _states(store)
        say(f"final run {attempt + 1}: exit {code}; {dict(states)}")
        if code == 0 and not states[PENDING] and not states[SENDING]:
            return
    raise RuntimeError("the campaign did not finish in 20 final runs")


def _verdict(config: TortureConfig, store: Store, sandbox: Sandbox, done: _Rounds) -> Verdict:
    ledger = sandbox.ledger_entries()
    per_number = Counter(entry["number"] for entry in ledger)
    ledger_ids = {entry["messageId"] for entry in ledger}
    with store.session() as session:
        rows = session.execute(
            select(Message.message_id, Message.state, Message.attempts).where(
                Message.message_id.is_not(None)
            )
        ).all()
    received = {message_id for message_id, state, _ in rows if state in RECEIVED}
    return Verdict(
        recipients=config.recipients,
        ledger_sms=len(ledger),
        duplicates=sum(count - 1 for count in per_number.values()),
        lost=len(set(_phones(config.recipients)) - set(per_number)),
        kills=done.kills,
        mismatched=len(received ^ ledger_ids),
        left_sending=sum(state == SENDING for _, state, _ in rows),
        retried=sum(attempts > 1 for _, _, attempts in rows),
        senders=config.senders,
        rounds_run=done.rounds,
        sigterms=done.sigterms,
        db=store.engine.dialect.name,
        rounds=done.lines,
    )


def run_torture(config: TortureConfig, folder: Path, say: Callable[[str], None] = print) -> Verdict:
    sandbox_config = SandboxConfig(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        balance=10**9,
        daily_limit=0,
        latency_ms=config.latency_ms,
        ledger=str(folder / "ledger.jsonl"),
        seed=config.seed,
        drop_after_accept=config.drop,
        fail_5xx=config.fail_5xx,
        fail_1000=config.fail_1000,
        slow_reply=config.slow,
        slow_reply_s=config.read_timeout * 2 + 0.5,
        visibility_delay_s=config.visibility_delay,
        delivery_delay_s=60,
    )
    db_url = config.db_url or f"sqlite:///{folder / 'torture.db'}"
    recipients = folder / "recipients.csv"
    recipients.write_text(
        "手机号,姓名\n"
        + "".join(f"{p},客户{i}\n" for i, p in enumerate(_phones(config.recipients))),
        encoding="utf-8",
    )
    with Sandbox(sandbox_config) as sandbox:
        settings = Settings(
            db_url=db_url, api_url=sandbox.url, app_id=APP_ID, app_secret=Secret(APP_SECRET)
        )
        api.import_file(
            settings, recipients, campaign=CAMPAIGN, message="【压测】{姓名}您好,订单已发货"
        )
        env = os.environ | {
            "CAMPAIGNS_DB": db_url,
            "ZHENZI_API_URL": sandbox.url,
            "ZHENZI_APP_ID": APP_ID,
            "ZHENZI_APP_SECRET": APP_SECRET,
            "ZHENZI_READ_TIMEOUT": str(config.read_timeout),
            "ZHENZI_LOOKUP_WAIT": str(config.lookup_wait),
        }
        store = Store(db_url)
        try:
            done = _kill_rounds(env, config, store, sandbox, folder, say)
            _finish(env, config, store, folder, say)
            return _verdict(config, store, sandbox, done)
        finally:
            store.close()
