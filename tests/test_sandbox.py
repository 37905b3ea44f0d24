"""The sandbox behaves like the provider's documented wire API, over real loopback HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from campaigns.provider.sandbox import Sandbox, SandboxConfig

SEND = "/sms/send.do"
SEND_V2 = "/sms/v2/send.do"
BALANCE = "/account/balance.do"
FIND = "/smslog/findSmsByMessageId.do"
NUMBER = "13812345678"
TEXT = "【榛子科技】您的订单已发货,请留意查收。"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def sandbox(ledger_path: Path) -> Iterator[Sandbox]:
    config = SandboxConfig(ledger=str(ledger_path), delivery_delay_s=0.2, seed=7,
                           undelivered_share=0.0)
    with Sandbox(config) as sb:
        yield sb


def call(sb: Sandbox, path: str, timeout: float = 5, **fields: str) -> requests.Response:
    form = {"appId": sb.config.app_id, "appSecret": sb.config.app_secret, **fields}
    return requests.post(sb.url + path, data=form, timeout=timeout)


def send(sb: Sandbox, number: str = NUMBER, message: str = TEXT, **fields: str) -> dict[str, Any]:
    return call(sb, SEND, number=number, message=message, **fields).json()


def find(sb: Sandbox, message_id: str) -> dict[str, Any] | None:
    reply = call(sb, FIND, messageId=message_id).json()
    assert reply["code"] == 0
    return None if reply["data"] is None else json.loads(reply["data"])


def wait_for(probe: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"condition not met within {timeout}s")


# -- sending --------------------------------------------------------------------------------


def test_send_success_replies_and_writes_ledger(sandbox: Sandbox, ledger_path: Path) -> None:
    response = call(sandbox, SEND, number=NUMBER, message=TEXT, messageId="m-1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"code": 0, "data": "发送成功"}
    lines = ledger_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == sandbox.ledger_entries()
    entry = json.loads(lines[0])
    assert (entry["messageId"], entry["number"], entry["message"], entry["segments"]) == (
        "m-1", NUMBER, TEXT, 1)
    assert entry["time"].endswith("+08:00")
    assert TEXT in lines[0]  # UTF-8, not \u escapes
    assert sandbox.balance == 1_000_000 - 1


def test_credentials_are_checked_and_secret_never_echoed(sandbox: Sandbox, ledger_path: Path
                                                         ) -> None:
    secret = sandbox.config.app_secret
    url = sandbox.url + SEND
    fields = {"number": NUMBER, "message": TEXT, "messageId": "m-1"}
    wrong_id = requests.post(url, data={"appId": "nope", "appSecret": secret, **fields}).json()
    no_id = requests.post(url, data={"appSecret": secret, **fields}).json()
    wrong_secret = requests.post(url, data={"appId": "demo-app", "appSecret": "x", **fields})
    assert wrong_id == no_id == {"code": 105, "data": "appId错误或应用不存在"}
    assert wrong_secret.json()["code"] == 110
    bodies = [call(sandbox, path, number=NUMBER, message=TEXT, messageId="m-1").text
              for path in (SEND, SEND_V2, BALANCE, FIND)]
    assert all(secret not in body for body in [*bodies, wrong_secret.text])
    assert secret not in ledger_path.read_text(encoding="utf-8")
    assert len(sandbox.ledger_entries()) == 1


@pytest.mark.parametrize("number", ["", "1381234567", "138123456789", "12812345678",
                                    "+8613812345678", "138 1234 5678", "１３８１２３４５６７８"])
def test_malformed_number_is_100(sandbox: Sandbox, number: str) -> None:
    assert send(sandbox, number=number) == {"code": 100, "data": "参数格式错误"}


def test_empty_message_is_100(sandbox: Sandbox) -> None:
    assert send(sandbox, message="")["code"] == 100
    assert sandbox.ledger_entries() == []


def test_length_limit_counts_utf16_units(sandbox: Sandbox) -> None:
    assert send(sandbox, message="a" * 998 + "😀")["code"] == 0  # exactly 1000 units
    assert send(sandbox, message="a" * 999 + "😀") == {"code": 101, "data": "短信内容超过1000字"}
    assert len(sandbox.ledger_entries()) == 1


@pytest.mark.parametrize(("length", "charged"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_segments_are_charged(sandbox: Sandbox, length: int, charged: int) -> None:
    assert send(sandbox, message="测" * length)["code"] == 0
    assert sandbox.balance == 1_000_000 - charged
    assert sandbox.ledger_entries()[0]["segments"] == charged


def test_insufficient_balance_is_108_and_charges_nothing(sandbox: Sandbox) -> None:
    sandbox.set_balance(2)
    assert send(sandbox, message="x" * 135) == {"code": 108, "data": "短信余额不足"}
    assert (sandbox.balance, sandbox.ledger_entries()) == (2, [])
    assert send(sandbox, message="x" * 71)["code"] == 0
    assert send(sandbox)["code"] == 108
    assert (sandbox.balance, len(sandbox.ledger_entries())) == (0, 1)


def test_daily_limit_per_number_is_109(sandbox: Sandbox) -> None:
    sandbox.config.daily_limit = 3
    assert [send(sandbox)["code"] for _ in range(4)] == [0, 0, 0, 109]
    assert send(sandbox, number="13912345678")["code"] == 0
    assert len(sandbox.ledger_entries()) == 4


def test_daily_limit_zero_is_unlimited(sandbox: Sandbox) -> None:
    sandbox.config.daily_limit = 0
    assert {send(sandbox)["code"] for _ in range(12)} == {0}


# -- template sends (v2) --------------------------------------------------------------------


def send_v2(sb: Sandbox, template_id: str = "1001", params: str = '["1234", "5"]'
            ) -> dict[str, Any]:
    return call(sb, SEND_V2, number=NUMBER, templateId=template_id, templateParams=params,
                messageId="v2-1").json()


def test_v2_renders_template(sandbox: Sandbox) -> None:
    assert send_v2(sandbox) == {"code": 0, "data": "发送成功"}
    assert sandbox.ledger_entries()[0]["message"] == "【榛子科技】您的验证码为1234,5分钟内有效。"
    assert find(sandbox, "v2-1")["message"] == "【榛子科技】您的验证码为1234,5分钟内有效。"


def test_v2_unknown_template_is_117(sandbox: Sandbox) -> None:
    assert send_v2(sandbox, template_id="9999")["code"] == 117


@pytest.mark.parametrize("params", ["", "not json", '{"1": "a"}', "[1, 2]", '["1234"]'])
def test_v2_bad_params_are_100(sandbox: Sandbox, params: str) -> None:
    assert send_v2(sandbox, params=params)["code"] == 100
    assert sandbox.ledger_entries() == []


def test_v2_long_rendered_text_is_101(sandbox: Sandbox) -> None:
    assert send_v2(sandbox, params=json.dumps(["9" * 1000, "5"]))["code"] == 101


# -- balance and lookup ---------------------------------------------------------------------


def test_balance_call(sandbox: Sandbox) -> None:
    assert call(sandbox, BALANCE).json() == {"code": 0, "data": 1_000_000}
    send(sandbox)
    assert call(sandbox, BALANCE).json()["data"] == 999_999


def test_lookup_unknown_is_null_and_empty_is_100(sandbox: Sandbox) -> None:
    assert call(sandbox, FIND, messageId="never-sent").json() == {"code": 0, "data": None}
    assert call(sandbox, FIND, messageId="").json()["code"] == 100


def test_lookup_goes_from_pending_to_success(sandbox: Sandbox) -> None:
    send(sandbox, messageId="m-1")
    reply = call(sandbox, FIND, messageId="m-1").json()
    assert isinstance(reply["data"], str)  # a JSON string holding the record
    record = json.loads(reply["data"])
    assert record["status"] == "pending"
    assert (record["messageId"], record["toNumber"], record["message"]) == ("m-1", NUMBER, TEXT)
    assert (record["statusTime"], record["errorMsg"], record["segments"]) == ("", "", 1)
    assert record["appName"] == "campaigns-sandbox"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["createTime"])
    final = wait_for(lambda: (r := find(sandbox, "m-1"))["status"] != "pending" and r)
    assert final["status"] == "success"
    assert final["statusTime"] >= final["createTime"]


def test_undelivered_share_one_ends_failed(sandbox: Sandbox) -> None:
    sandbox.config.undelivered_share = 1.0
    send(sandbox, messageId="m-1")
    final = wait_for(lambda: (r := find(sandbox, "m-1"))["status"] != "pending" and r)
    assert final["status"] == "failed"
    assert final["errorMsg"].startswith("UNDELIV")


def test_visibility_delay_hides_new_record(sandbox: Sandbox) -> None:
    sandbox.config.visibility_delay_s = 0.3
    send(sandbox, messageId="m-1")
    assert find(sandbox, "m-1") is None
    assert wait_for(lambda: find(sandbox, "m-1"))["messageId"] == "m-1"


def test_repeated_message_id_is_accepted_twice(sandbox: Sandbox) -> None:
    assert send(sandbox, message="first", messageId="dup")["code"] == 0
    assert send(sandbox, message="second", messageId="dup")["code"] == 0
    assert [e["messageId"] for e in sandbox.ledger_entries()] == ["dup", "dup"]
    assert sandbox.balance == 1_000_000 - 2
    assert find(sandbox, "dup")["message"] == "second"


# -- injected faults ------------------------------------------------------------------------


def test_fail_1000_is_not_accepted(sandbox: Sandbox) -> None:
    sandbox.config.fail_1000 = 1.0
    assert send(sandbox) == {"code": 1000, "data": "系统位置错误"}
    assert call(sandbox, BALANCE).json()["code"] == 1000
    assert call(sandbox, FIND, messageId="m-1").json()["code"] == 1000
    assert (sandbox.ledger_entries(), sandbox.balance) == ([], 1_000_000)


def test_fail_5xx_is_502_html_and_not_accepted(sandbox: Sandbox) -> None:
    sandbox.config.fail_5xx = 1.0
    response = call(sandbox, SEND, number=NUMBER, message=TEXT)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert call(sandbox, BALANCE).status_code == 502
    assert sandbox.ledger_entries() == []


def test_drop_after_accept_closes_without_reply_but_ledgers(sandbox: Sandbox) -> None:
    sandbox.config.drop_after_accept = 1.0
    with pytest.raises(requests.ConnectionError):
        send(sandbox, messageId="m-1")
    assert [e["messageId"] for e in sandbox.ledger_entries()] == ["m-1"]
    sandbox.config.drop_after_accept = 0.0
    assert find(sandbox, "m-1")["messageId"] == "m-1"  # a lookup resolves the unknown outcome


def test_slow_reply_times_out_client_but_ledgers(sandbox: Sandbox) -> None:
    sandbox.config.slow_reply = 1.0
    sandbox.config.slow_reply_s = 1.0
    with pytest.raises(requests.ReadTimeout):
        call(sandbox, SEND, timeout=0.3, number=NUMBER, message=TEXT, messageId="m-1")
    assert [e["messageId"] for e in sandbox.ledger_entries()] == ["m-1"]


def test_seeded_faults_are_reproducible() -> None:
    def codes() -> list[int]:
        with Sandbox(SandboxConfig(seed=42, fail_1000=0.5, daily_limit=0)) as sb:
            return [send(sb)["code"] for _ in range(30)]

    first = codes()
    assert first == codes()
    assert set(first) == {0, 1000}


# -- HTTP surface, lifecycle, concurrency ---------------------------------------------------


def test_unknown_path_is_404_and_get_is_405(sandbox: Sandbox) -> None:
    missing = call(sandbox, "/nope.do")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")
    assert requests.get(sandbox.url + SEND, timeout=5).status_code == 405


def test_port_zero_picks_distinct_free_ports() -> None:
    with Sandbox(SandboxConfig()) as a, Sandbox(SandboxConfig()) as b:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", a.url)
        assert a.url != b.url
        assert call(a, BALANCE).json()["code"] == 0


def test_keep_alive_and_counters(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        form = {"appId": "demo-app", "appSecret": "demo-secret", "number": NUMBER, "message": TEXT}
        for _ in range(3):
            assert session.post(sandbox.url + SEND, data=form, timeout=5).json()["code"] == 0
    call(sandbox, BALANCE)
    assert sandbox.request_count(SEND) == 3
    assert sandbox.request_count(BALANCE) == 1
    times = sandbox.arrival_times()
    assert len(times) == 3 and times == sorted(times)


def test_stop_cuts_keep_alive_connections() -> None:
    sb = Sandbox(SandboxConfig()).start()
    with requests.Session() as session:
        form = {"appId": "demo-app", "appSecret": "demo-secret"}
        assert session.post(sb.url + BALANCE, data=form, timeout=5).json()["code"] == 0
        url = sb.url
        sb.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url + BALANCE, data=form, timeout=5)


def test_concurrent_requests_are_not_serialised(sandbox: Sandbox) -> None:
    sandbox.config.latency_ms = 100
    sandbox.config.daily_limit = 0
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(send(sandbox)["code"]))
               for _ in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.0  # serialised would take 2.0 s
    assert codes == [0] * 20
