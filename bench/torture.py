"""Exactly-once torture: SIGKILL `campaigns send` at random moments while the provider misbehaves.

    python -m bench.torture --recipients 5000 --kills 20 --seed 1

A sandbox runs in this process with a ledger of every SMS it accepted, injecting dropped
connections, HTTP 5xx, replies slower than the client's read timeout and code 1000. Real
`campaigns send` processes are started and killed with SIGKILL after a random delay, again and
again; then the campaign is sent to the end. The verdict compares the ledger (what the phones
received) with the database: any duplicate, any lost recipient, any message whose state
disagrees with the ledger, or any message left `sending` fails it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select

from campaigns import api
from campaigns.config import Secret, Settings
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.store.db import Store
from campaigns.store.models import DELIVERED, SENDING, SENT, UNDELIVERED, Message

CAMPAIGN = "torture"
APP_ID, APP_SECRET = "torture-app", "torture-secret"
RECEIVED = (SENT, DELIVERED, UNDELIVERED)


@dataclass
class TortureConfig:
    recipients: int = 5000
    kills: int = 20
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
    senders: int = 1
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
    rounds: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.mismatched or self.left_sending)

    def line(self) -> str:
        figures = {k: v for k, v in asdict(self).items() if k != "rounds"}
        return ("PASS " if self.ok else "FAIL ") + " ".join(f"{k}={v}" for k, v in figures.items())


def _phones(count: int) -> list[str]:
    return [f"139{i:08d}" for i in range(count)]


def _sender(env: dict[str, str], config: TortureConfig) -> subprocess.Popen:
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
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _states(store: Store) -> Counter:
    with store.session() as session:
        return Counter(
            session.scalars(select(Message.state).where(Message.message_id.is_not(None)))
        )


def _wait_for_progress(sandbox: Sandbox, senders: list[subprocess.Popen]) -> None:
    """Until the ledger grows (the senders are sending), or they have all stopped."""
    start = len(sandbox.ledger_entries())
    deadline = time.monotonic() + 30
    while len(sandbox.ledger_entries()) == start and time.monotonic() < deadline:
        if all(sender.poll() is not None for sender in senders):
            return
        time.sleep(0.01)


def _kill_rounds(
    env, config: TortureConfig, store: Store, sandbox: Sandbox, say
) -> tuple[int, list[str]]:
    rng = random.Random(config.seed)
    kills, lines = 0, []
    while kills < config.kills:
        senders = [_sender(env, config) for _ in range(config.senders)]
        if rng.random() < 0.5:
            # Half the crashes hit start-up and recovery; the other half hit a sender in full
            # flow (mid-request, between reply and write, mid-commit).
            _wait_for_progress(sandbox, senders)
        time.sleep(rng.uniform(*config.kill_after))  # the random moment of the crash
        victim = rng.choice(senders)
        if victim.poll() is not None:
            for sender in senders:
                sender.wait()
            break  # the campaign finished before this kill
        victim.send_signal(signal.SIGKILL)
        kills += 1
        for sender in senders:
            if sender is not victim:
                sender.send_signal(signal.SIGKILL)
            sender.wait()
        states = dict(_states(store))
        ledger = len(sandbox.ledger_entries())
        line = f"round {kills}: SIGKILL pid {victim.pid}; ledger {ledger}; {states}"
        lines.append(line)
        say(line)
    return kills, lines


def _finish(env, config: TortureConfig, store: Store, say) -> None:
    for attempt in range(20):
        sender = _sender(env, config)
        _, errors = sender.communicate(timeout=600)
        states = _states(store)
        say(f"final run {attempt + 1}: exit {sender.returncode}; {dict(states)}")
        if sender.returncode == 0 and not states["pending"] and not states[SENDING]:
            return
        if sender.returncode not in (0, 2):
            raise RuntimeError(f"send failed unexpectedly: {errors.strip()[-500:]}")


def _verdict(
    config: TortureConfig, store: Store, sandbox: Sandbox, kills: int, lines: list[str]
) -> Verdict:
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
        kills=kills,
        mismatched=len(received ^ ledger_ids),
        left_sending=sum(state == SENDING for _, state, _ in rows),
        retried=sum(attempts > 1 for _, _, attempts in rows),
        rounds=lines,
    )


def run_torture(config: TortureConfig, folder: Path, say=print) -> Verdict:
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
            kills, lines = _kill_rounds(env, config, store, sandbox, say)
            _finish(env, config, store, say)
            return _verdict(config, store, sandbox, kills, lines)
        finally:
            store.close()


def main() -> None:
    defaults = TortureConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        if isinstance(value, tuple) or name == "db_url":
            continue
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--db-url", default=None, help="default: a SQLite file in a temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = vars(parser.parse_args())
    keep = args.pop("keep")
    config = TortureConfig(**args)
    folder = Path(tempfile.mkdtemp(prefix="torture-"))
    started = time.monotonic()
    verdict = run_torture(config, folder)
    print(verdict.line() + f" seconds={time.monotonic() - started:.0f}")
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    figures = asdict(verdict) | {"config": asdict(config), "ok": verdict.ok}
    Path("bench/results/torture.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    if keep:
        print(f"work folder: {folder}")
    sys.exit(0 if verdict.ok else 1)


if __name__ == "__main__":
    main()
