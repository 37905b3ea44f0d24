"""Reconcile against records shaped as the real provider's: each message on its own, until final."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from campaigns import api
from campaigns.cli import cli, reconcile_cmd
from campaigns.config import Secret, Settings
from campaigns.errors import Transient
from campaigns.provider.client import SmsRecord, ZhenziClient
from campaigns.reconcile import (
    ReconcileProgress,
    _Lookups,
    reconcile_campaign,
    reconcile_until_final,
)
from campaigns.store.db import Store
from campaigns.store.models import Message
from tests.support.real_double import DoubleConfig, RealDouble
from tests.support.recipients import APP_ID, APP_SECRET, valid_phones, write_csv

ODD_NUMBER, NEW_STATUS_NUMBER = valid_phones(2, start=900)
STATUS = {ODD_NUMBER: "success", NEW_STATUS_NUMBER: "已提交网关"}


@pytest.fixture
def double():
    config = DoubleConfig(status_of=lambda sms: STATUS.get(sms.number, "success"))
    with RealDouble(config) as server:
        yield server


@pytest.fixture
def settings(double, tmp_path) -> Settings:
    return Settings(
        db_url=f"sqlite:///{tmp_path / 'c.db'}",
        api_url=double.url(),
        app_id=double.config.app_id,
        app_secret=double.config.app_secret,
        lookup_wait=0.05,
    )


def sent_campaign(settings, tmp_path, phones, name="c") -> None:
    api.import_file(
        settings,
        write_csv(tmp_path / f"{name}.csv", phones),
        campaign=name,
        message="【测试】{姓名}您好,订单已发货",
    )
    assert api.send(settings, name).sent == len(phones)


def message_id_of(double, number: str) -> str:
    return next(sms.message_id for sms in double.ledger if sms.number == number)


def test_one_odd_answer_never_stops_the_run_nor_loses_the_others(settings, double, tmp_path):
    sent_campaign(settings, tmp_path, [*valid_phones(20), ODD_NUMBER, NEW_STATUS_NUMBER])
    # A message-kind code for one known id: before, its MessageRejected escaped reconcile.
    double.config.odd_lookups = {message_id_of(double, ODD_NUMBER): (101, "短信内容超过1000字")}

    progress = api.reconcile(settings, "c")

    assert (progress.delivered, progress.not_found, progress.still_pending) == (20, 1, 1)
    status = api.status(settings, "c")
    assert status.by_state["delivered"] == 20 and status.by_state["sent"] == 2
    assert status.unrecognised_statuses == {"已提交网关": 1}
    shown = CliRunner().invoke(cli, ["--db", settings.db_url, "status", "c"])
    assert "1 sent messages carry the unrecognised status '已提交网关'" in shown.output
    as_json = CliRunner().invoke(cli, ["--db", settings.db_url, "status", "c", "--json"])
    assert json.loads(as_json.stdout)["unrecognised_statuses"] == {"已提交网关": 1}


def test_delivered_time_falls_back_to_the_records_create_time(settings, double, tmp_path):
    sent_campaign(settings, tmp_path, valid_phones(1))
    api.reconcile(settings, "c")
    created = datetime.strptime(double.ledger[0].create_time, "%Y-%m-%d %H:%M:%S")
    store = Store(settings.db_url)
    try:
        with store.session() as session:
            final_at = session.scalar(select(Message.final_at))
    finally:
        store.close()
    assert final_at == created - timedelta(hours=8)  # Asia/Shanghai wall time → UTC


def test_reconcile_before_any_send_says_so(settings, tmp_path):
    api.import_file(
        settings,
        write_csv(tmp_path / "l.csv", valid_phones(3)),
        campaign="c",
        message="【测试】{姓名}您好",
    )
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            settings.db_url,
            "--api-url",
            settings.api_url,
            "--app-id",
            settings.app_id,
            "--app-secret",
            settings.app_secret.reveal(),
            "reconcile",
            "c",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nothing has been sent yet" in result.output


def test_wait_follows_the_backoff_schedule_until_every_message_is_final(settings, double, tmp_path):
    phones = valid_phones(10)
    STATUS.update(dict.fromkeys(phones, "处理中"))
    try:
        sent_campaign(settings, tmp_path, phones)
        waits: list[float] = []
        passes: list[tuple[int, int, float | None]] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 2:  # the receipts arrive during the second wait
                STATUS.update(dict.fromkeys(phones, "success"))

        api.reconcile_until_final(
            settings,
            "c",
            sleep=sleep,
            on_pass=lambda n, p, nxt: passes.append((n, p.still_pending, nxt)),
        )
    finally:
        for phone in phones:
            STATUS.pop(phone)
    assert waits == [10.0, 30.0]
    assert passes == [(1, 10, 10.0), (2, 10, 30.0), (3, 0, None)]
    assert api.status(settings, "c").by_state["delivered"] == 10


def test_the_schedule_settles_on_every_15_minutes():
    waits: list[float] = []
    passes = iter(range(7))

    def run_pass() -> ReconcileProgress:
        return ReconcileProgress(total=1, still_pending=0 if next(passes) == 6 else 1)

    reconcile_until_final(run_pass, sleep=waits.append)
    assert waits == [10.0, 30.0, 60.0, 300.0, 900.0, 900.0]


def test_ctrl_c_while_waiting_stops_cleanly_and_keeps_answers(
    settings, double, tmp_path, monkeypatch
):
    sent_campaign(settings, tmp_path, [*valid_phones(3), NEW_STATUS_NUMBER])

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reconcile_cmd, "_sleep", interrupted)
    base = ["--db", settings.db_url, "--api-url", settings.api_url, "--app-id", settings.app_id]
    result = CliRunner().invoke(
        cli,
        [*base, "reconcile", "c", "--wait"],
        env={"ZHENZI_APP_SECRET": settings.app_secret.reveal()},
    )
    assert result.exit_code == 130
    assert "pass 1: delivered 3" in result.output
    assert "stopped waiting" in result.output
    assert api.status(settings, "c").by_state["delivered"] == 3


def test_a_lookup_that_keeps_failing_past_expiry_ends_expired(settings, double, tmp_path):
    sent_campaign(settings, tmp_path, valid_phones(1))
    double.config.odd_lookups = {double.ledger[0].message_id: (1000, "系统位置错误")}
    client = ZhenziClient(
        settings.api_url, settings.app_id, settings.app_secret, max_attempts=2, backoff_max=0.01
    )
    store = Store(settings.db_url)
    try:
        early = reconcile_campaign(store, client, "c")
        assert (early.errors, early.expired) == (1, 0)
        late = reconcile_campaign(store, client, "c", now=datetime.now() + timedelta(hours=80))
        assert late.expired == 1
    finally:
        store.close()
    assert api.status(settings, "c").by_state["expired"] == 1


def test_a_lookup_rate_is_accepted(settings, double, tmp_path):
    sent_campaign(settings, tmp_path, valid_phones(3))
    assert api.reconcile(settings, "c", rate=200.0).delivered == 3  # `burst` crashed it before


class FlakyFinds(ZhenziClient):
    """Each lookup fails ``failing`` times with HTTP 502, then answers "not found"."""

    def __init__(self, failing: int) -> None:
        super().__init__("http://127.0.0.1:9", APP_ID, Secret(APP_SECRET), max_attempts=3)
        self.failing = failing
        self.calls: Counter[str] = Counter()

    def find(self, message_id: str) -> SmsRecord | None:
        self.calls[message_id] += 1
        if self.calls[message_id] <= self.failing:
            raise Transient("provider answered HTTP 502", maybe_sent=True, error_reply=True)
        return None


def test_a_failed_lookup_waits_out_its_backoff_without_holding_a_slot():
    client = FlakyFinds(failing=1)
    slots_held_while_waiting: list[int] = []

    def sleep(seconds: float) -> None:
        slots_held_while_waiting.append(lookups.sizing.active)

    lookups = _Lookups(client, rate=None, concurrency=4, sleep=sleep)
    answer = lookups.look_up((1, "m-1", None))
    assert not answer.failed and answer.record is None
    assert client.calls["m-1"] == 2  # one attempt per call: the client did not retry itself
    assert slots_held_while_waiting == [0]


def test_a_lookup_that_fails_every_attempt_leaves_the_message_for_the_next_pass():
    client = FlakyFinds(failing=99)
    waits: list[float] = []
    lookups = _Lookups(client, rate=None, concurrency=4, sleep=waits.append)
    assert lookups.look_up((2, "m-2", None)).failed
    assert client.calls["m-2"] == 3 and len(waits) == 2  # no wait after the last attempt
