"""Campaign controls against the sandbox, with time made controllable (no sleeping nights)."""

from __future__ import annotations

import signal
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from campaigns import api
from campaigns.errors import SendStopped, UserError
from campaigns.schedule import SHANGHAI, Cap, Window
from campaigns.sending import SendOptions
from campaigns.store.db import Store
from campaigns.store.models import Message, MessageHistory, TestSend
from tests.support.processes import start_send, wait_for_ledger
from tests.support.recipients import ledger_counts, status_json, valid_phones, write_csv

MESSAGE = "【测试】{姓名}您好,您的订单已发货"


class FakeClock:
    """Asia/Shanghai wall time that moves only when the code under test sleeps."""

    def __init__(self, start: str) -> None:
        self.now = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
        self.slept = 0.0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += timedelta(seconds=seconds)


def load(settings, tmp_path, count=20, campaign="c", start=0):
    path = write_csv(tmp_path / f"{campaign}.csv", valid_phones(count, start))
    api.import_file(settings, path, campaign=campaign, message=MESSAGE)


def states(settings, campaign="c"):
    return {k: v for k, v in api.status(settings, campaign).by_state.items() if v}


def test_outside_the_window_send_waits_then_sends(settings, sandbox, tmp_path):
    load(settings, tmp_path)
    clock, waits = FakeClock("2026-11-28 07:59"), []
    options = SendOptions(
        window=Window.parse("08:00-21:00"), clock=clock, sleep=clock.sleep, on_wait=waits.append
    )
    api.send(settings, "c", options)
    assert waits == ["outside the send window 08:00-21:00; waiting until 2026-11-28 08:00"]
    assert 59 <= clock.slept <= 61
    assert len(ledger_counts(sandbox)) == 20


def test_no_wait_exits_saying_when_to_resume(settings, sandbox, tmp_path):
    load(settings, tmp_path)
    clock = FakeClock("2026-11-28 22:30")
    options = SendOptions(window=Window.parse("08:00-21:00"), clock=clock, no_wait=True)
    with pytest.raises(SendStopped, match="send again after 2026-11-29 08:00"):
        api.send(settings, "c", options)
    assert sandbox.ledger_entries() == []
    assert "outside the send window" in api.status(settings, "c").stop_reason


def test_scheduled_start_and_deadline(settings, sandbox, tmp_path):
    load(settings, tmp_path)
    clock = FakeClock("2026-11-28 09:00")
    late = SendOptions(until=clock.now - timedelta(minutes=1), clock=clock)
    with pytest.raises(SendStopped, match="past --until"):
        api.send(settings, "c", late)
    assert sandbox.ledger_entries() == []
    waits: list[str] = []
    start = SendOptions(
        start_at=clock.now + timedelta(hours=2),
        clock=clock,
        sleep=clock.sleep,
        on_wait=waits.append,
    )
    api.send(settings, "c", start)
    assert "scheduled to start at 2026-11-28 11:00" in waits[0]
    assert len(ledger_counts(sandbox)) == 20


def test_daily_limit_defers_to_the_next_shanghai_day(settings, sandbox, tmp_path):
    sandbox.config.daily_limit = 1
    load(settings, tmp_path, count=5, campaign="first")
    api.send(settings, "first")
    load(settings, tmp_path, count=5, campaign="c")
    clock = FakeClock("2026-11-28 15:00")
    result = api.send(settings, "c", SendOptions(clock=clock))
    assert result.deferred == 5 and result.failed == 0
    assert result.next_due == datetime(2026, 11, 28, 16, 0)  # 00:00 on the 29th in Shanghai
    assert states(settings) == {"deferred": 5}
    sandbox.config.daily_limit = 0  # the provider's new day
    clock.now = clock.now + timedelta(hours=10)
    api.send(settings, "c", SendOptions(clock=clock))
    assert states(settings) == {"sent": 5}
    assert set(ledger_counts(sandbox).values()) == {2}  # once per campaign, each a day apart


def test_cap_across_campaigns_defers_with_its_reason(settings, sandbox, tmp_path):
    load(settings, tmp_path, count=6, campaign="first")
    api.send(settings, "first")
    load(settings, tmp_path, count=6, campaign="c")
    load(settings, tmp_path, count=4, campaign="c2", start=100)
    cap = Cap.parse("1/24h")
    result = api.send(settings, "c", SendOptions(cap=cap))
    assert result.deferred == 6 and result.sent == 0
    with Store(settings.db_url) as store:
        texts = set(
            store.session().scalars(select(Message.error_text).where(Message.state == "deferred"))
        )
    assert texts == {"cap 1/24h reached: deferred until the window allows"}
    assert api.send(settings, "c2", SendOptions(cap=cap)).sent == 4  # fresh numbers go


def test_suppressed_numbers_are_never_sent_even_when_added_mid_campaign(
    settings, sandbox, tmp_path, db_url, run
):
    sandbox.config.latency_ms = 20
    load(settings, tmp_path, count=150, campaign="spring")
    early = valid_phones(1)[0]
    assert api.suppress(settings, [early], "opted out").changed == 1
    assert states(settings, "spring")["suppressed"] == 1
    sender = start_send(sandbox, db_url, "--rate", "40")
    try:
        wait_for_ledger(sandbox, 10, sender)
        late = valid_phones(150)[-1]
        added = run("suppress", "add", late)
        assert added.exit_code == 0 and "1 numbers added" in added.output
    finally:
        sender.send_signal(signal.SIGINT)
        sender.communicate(timeout=30)
    assert run("send", "spring").exit_code == 0
    counts = ledger_counts(sandbox)
    assert early not in counts and late not in counts
    assert len(counts) == 148 and max(counts.values()) == 1
    assert status_json(run, "spring")["by_state"]["suppressed"] == 2
    listed = run("suppress", "list")
    assert early in listed.output and "2 numbers suppressed" in listed.output


def test_pause_and_cancel_from_another_terminal(settings, sandbox, tmp_path, db_url, run):
    load(settings, tmp_path, count=150, campaign="spring")
    sender = start_send(sandbox, db_url, "--rate", "30")
    wait_for_ledger(sandbox, 5, sender)
    assert run("pause", "spring").exit_code == 0
    output, _ = sender.communicate(timeout=10)
    assert sender.returncode == 2, output
    assert "paused by `campaigns pause`" in output and "campaigns send spring" in output
    paused_at = len(sandbox.ledger_entries())
    assert paused_at < 150
    assert status_json(run, "spring")["by_state"]["sending"] == 0

    sender = start_send(sandbox, db_url, "--rate", "30")  # send resumes a paused campaign
    wait_for_ledger(sandbox, paused_at + 5, sender)
    assert run("cancel", "spring", "--yes").exit_code == 0
    output, _ = sender.communicate(timeout=10)
    assert sender.returncode == 2 and "cancelled" in output
    final = status_json(run, "spring")["by_state"]
    sent = len(sandbox.ledger_entries())
    assert final["sent"] == sent and final["cancelled"] == 150 - sent
    again = run("send", "spring")
    assert again.exit_code == 1 and "never sends again" in again.output
    assert len(sandbox.ledger_entries()) == sent
    assert max(ledger_counts(sandbox).values()) == 1


def test_retry_uses_new_message_ids_and_keeps_the_history(settings, sandbox, tmp_path, run):
    sandbox.config.undelivered_share = 1.0
    sandbox.config.delivery_delay_s = 0.0
    load(settings, tmp_path, count=5)
    api.send(settings, "c")
    api.reconcile(settings, "c")
    assert states(settings) == {"undelivered": 5}
    first_ids = {e["messageId"] for e in sandbox.ledger_entries()}
    result = run("retry", "c")
    assert result.exit_code == 0 and "5 messages queued again" in result.output
    api.send(settings, "c")
    second_ids = {e["messageId"] for e in sandbox.ledger_entries()} - first_ids
    assert {mid.rsplit("-r", 1)[0] for mid in second_ids} == first_ids
    assert all(mid.endswith("-r1") for mid in second_ids)
    with Store(settings.db_url) as store:
        history = store.session().scalars(select(MessageHistory.message_id)).all()
    assert set(history) == first_ids


def test_error_budget_pauses_a_campaign_that_burns_money(settings, sandbox, tmp_path):
    load(settings, tmp_path, count=40)
    with Store(settings.db_url) as store, store.session.begin() as session:
        session.execute(update(Message).where(Message.row_number <= 12).values(phone="12000000000"))
    with pytest.raises(SendStopped, match="failed for a permanent reason"):
        api.send(settings, "c", SendOptions(concurrency=1, error_budget=(0.2, 10)))
    status = api.status(settings, "c")
    assert status.control == "pause" and status.by_state["pending"] > 0
    assert len(sandbox.ledger_entries()) < 40 - 11


def test_expired_after_no_report_within_the_expiry_time(settings, sandbox, tmp_path):
    sandbox.config.delivery_delay_s = 3600
    load(settings, tmp_path, count=3)
    api.send(settings, "c")
    assert api.reconcile(settings, "c").still_pending == 3
    later = datetime.utcnow() + timedelta(hours=73)
    assert api.reconcile(settings, "c", now=later).expired == 3
    assert states(settings) == {"expired": 3}


def test_dry_run_and_balance_check(settings, sandbox, tmp_path, run):
    load(settings, tmp_path, count=30)
    sandbox.set_balance(10)
    dry = run("send", "c", "--dry-run")
    assert dry.exit_code == 0
    assert "30 messages to send, 30 SMS segments" in dry.output and "20 short" in dry.output
    refused = run("send", "c")
    assert refused.exit_code == 2 and "--allow-partial" in refused.output
    assert sandbox.ledger_entries() == []


def test_test_send_reaches_only_the_test_number(settings, sandbox, tmp_path, run):
    load(settings, tmp_path, count=5)
    result = run("send", "c", "--test", "139 0000 0001", "--test", "+8613900000002")
    assert result.exit_code == 0, result.output
    assert set(ledger_counts(sandbox)) == {"13900000001", "13900000002"}
    assert {e["message"] for e in sandbox.ledger_entries()} == {"【测试】客户0您好,您的订单已发货"}
    assert states(settings) == {"pending": 5}
    with Store(settings.db_url) as store:
        assert len(store.session().scalars(select(TestSend)).all()) == 2
    bad = run("send", "c", "--test", "010-1234567")
    assert bad.exit_code == 1 and "not a mainland mobile" in bad.output


def test_cancelled_campaign_cannot_be_retried(settings, tmp_path):
    load(settings, tmp_path, count=2)
    api.cancel(settings, "c")
    with pytest.raises(UserError, match="cancelled"):
        api.retry(settings, "c")
    assert api.status(settings, "c").by_state["cancelled"] == 2


def test_suppress_reads_numbers_from_a_file(run, tmp_path):
    listed = write_csv(tmp_path / "optout.csv", valid_phones(3, start=50) + ["12345"])
    result = run("suppress", "add", str(listed))
    assert result.exit_code == 0, result.output
    listing = run("suppress", "list").output
    assert all(phone in listing for phone in valid_phones(3, start=50))
