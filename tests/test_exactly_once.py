"""Exactly once under crashes, unknown outcomes and slow provider logs."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from campaigns import api
from campaigns.errors import SendStopped, StopReason
from campaigns.provider.client import FIND_PATH
from campaigns.sending import SendOptions, send_campaign
from campaigns.store.db import Store
from campaigns.store.models import FAILED, PENDING, SENDING, SENT
from tests.support.proxy import FaultProxy, bad_gateway
from tests.support.recipients import quick_client, valid_phones, write_csv
from tests.support.torture import TortureConfig, run_torture


@pytest.mark.timeout(300)
def test_torture_kills_and_faults_lose_nothing_and_send_nothing_twice(any_db_url, tmp_path):
    """Three senders on one campaign (SQLite file / PostgreSQL database), random subsets of them
    SIGKILLed at random moments (the survivors keep sending), some stopped with SIGTERM, while
    18% of requests go wrong: every recipient exactly once, states agree with the ledger."""
    config = TortureConfig(
        recipients=1000,
        kills=10,
        senders=3,
        seed=11,
        rate=80,
        kill_after=(0.2, 1.5),
        db_url=any_db_url,
    )
    lines: list[str] = []
    verdict = run_torture(config, tmp_path, say=lines.append)
    assert verdict.kills >= 10 and verdict.rounds_run >= 5, lines
    assert verdict.line().startswith("PASS"), verdict.line() + "\n" + "\n".join(lines)
    assert verdict.ledger_sms == 1000
    assert verdict.senders == 3
    assert verdict.db == ("sqlite" if any_db_url.startswith("sqlite") else "postgresql")
    # With 18% of requests going wrong, many messages needed more than one request.
    assert verdict.retried > 0


def send_with_drops(settings, sandbox, tmp_path, *, visibility: float, lookup_wait: float):
    sandbox.config.drop_after_accept = 0.3
    sandbox.config.visibility_delay_s = visibility
    path = write_csv(tmp_path / "list.csv", valid_phones(60))
    api.import_file(settings, path, campaign="slow", message="【测试】{姓名}您好")
    patient = type(settings)(**{**settings.__dict__, "lookup_wait": lookup_wait})
    api.send(patient, "slow", SendOptions(concurrency=6))
    return Counter(entry["number"] for entry in sandbox.ledger_entries())


def test_lookup_waits_out_a_slow_provider_log(settings, sandbox, tmp_path):
    counts = send_with_drops(settings, sandbox, tmp_path, visibility=0.4, lookup_wait=0.8)
    assert len(counts) == 60
    assert max(counts.values()) == 1


def test_a_lookup_wait_shorter_than_the_log_delay_does_duplicate(settings, sandbox, tmp_path):
    # The README's window: a provider slower to show an SMS than --lookup-wait gets it twice.
    counts = send_with_drops(settings, sandbox, tmp_path, visibility=0.6, lookup_wait=0.0)
    assert max(counts.values()) >= 2


@pytest.mark.parametrize("code_share", ["fail_5xx", "fail_1000", "drop_after_accept"])
def test_each_fault_alone_keeps_exactly_once_and_counts_attempts(
    settings, sandbox, tmp_path, run, code_share
):
    setattr(sandbox.config, code_share, 0.3)
    path = write_csv(tmp_path / "list.csv", valid_phones(80))
    api.import_file(settings, path, campaign="f", message="【测试】{姓名}您好")
    api.send(settings, "f", SendOptions(concurrency=8))
    counts = Counter(entry["number"] for entry in sandbox.ledger_entries())
    assert len(counts) == 80 and max(counts.values()) == 1
    report = tmp_path / "r.csv"
    assert run("report", "f", "--output", str(report)).exit_code == 0
    attempts = pd.read_csv(report, encoding="utf-8-sig")["attempts"]
    if code_share == "drop_after_accept":
        assert attempts.max() == 1  # confirmed by lookup, never re-sent
    else:
        assert attempts.max() >= 2  # refused requests were retried, and it shows


def test_an_accepted_send_whose_lookups_all_fail_stays_sending_and_goes_once(
    settings, sandbox, tmp_path
):
    """The provider accepts the request but the reply is lost, and every lookup fails: the
    outcome is unknown, so the message stays `sending` after all its retries and every pass of
    the run. It must not go back to `pending` (it would be sent again); the next run looks it up
    and finds it sent."""
    path = write_csv(tmp_path / "one.csv", valid_phones(1))
    api.import_file(settings, path, campaign="lost", message="【测试】{姓名}您好")
    sandbox.config.drop_after_accept = 1.0
    store = Store(settings.db_url)
    try:
        with FaultProxy(sandbox.url) as proxy:
            proxy.intercept = lambda where, seen: bad_gateway() if where == FIND_PATH else None
            first = send_campaign(store, quick_client(proxy.url), "lost", SendOptions())
            assert proxy.seen[FIND_PATH] >= 2  # it did try to look the message up
        assert (first.sent, first.failed, first.unknown) == (0, 0, 1)
        assert api.status(settings, "lost").by_state[SENDING] == 1
        assert len(sandbox.ledger_entries()) == 1

        sandbox.config.drop_after_accept = 0.0
        second = send_campaign(store, quick_client(sandbox.url), "lost", SendOptions())
    finally:
        store.close()
    assert (second.sent, second.confirmed_by_lookup) == (1, 1)
    assert api.status(settings, "lost").by_state[SENT] == 1
    assert len(sandbox.ledger_entries()) == 1


def test_a_provider_down_for_message_after_message_stops_the_run_and_loses_nothing(
    settings, sandbox, tmp_path
):
    """Every request fails (HTTP 502): after ten messages in a row used up their retries, the
    run stops as "provider unavailable", over all its passes; nothing is marked failed, and the
    next run sends each message once."""
    path = write_csv(tmp_path / "list.csv", valid_phones(40))
    api.import_file(settings, path, campaign="down", message="【测试】{姓名}您好")
    sandbox.config.fail_5xx = 1.0
    store = Store(settings.db_url)
    try:
        with pytest.raises(SendStopped) as stopped:
            options = SendOptions(concurrency=4, allow_partial=True)
            send_campaign(store, quick_client(sandbox.url), "down", options)
        assert stopped.value.reason is StopReason.PROVIDER_DOWN
        assert "the provider is unavailable" in str(stopped.value)
        by_state = api.status(settings, "down").by_state
        assert by_state[FAILED] == by_state[SENT] == 0
        assert by_state[PENDING] + by_state[SENDING] == 40

        sandbox.config.fail_5xx = 0.0
        resumed = send_campaign(store, quick_client(sandbox.url), "down", SendOptions())
    finally:
        store.close()
    assert resumed.sent == 40
    counts = Counter(entry["number"] for entry in sandbox.ledger_entries())
    assert len(counts) == 40 and max(counts.values()) == 1
