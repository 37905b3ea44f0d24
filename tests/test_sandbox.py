"""The sandbox behaves like the provider's documented wire API, over real loopback HTTP."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from campaigns.provider.sandbox import UNKNOWN_REPLIES, Sandbox, SandboxConfig
from campaigns.schedule import SHANGHAI
from tests.support.sandbox import TlsFiles, sandbox_command, wait_for, write_tls_files

SEND = "/sms/send.do"
SEND_V2 = "/sms/v2/send.do"
BALANCE = "/account/balance.do"
FIND = "/smslog/findSmsByMessageId.do"
NUMBER = "13812345678"
TEXT = "【榛子科技】您的订单已发货,请留意查收。"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


# The CA file to verify each HTTPS sandbox's certificate with, by base URL.
CA_FOR_URL: dict[str, str] = {}


@pytest.fixture(params=["http", "https"])
def sandbox(
    request: pytest.FixtureRequest, ledger_path: Path, tls_files: TlsFiles
) -> Iterator[Sandbox]:
    """Every test that takes this fixture runs over plain HTTP and over HTTPS."""
    config = SandboxConfig(
        ledger=str(ledger_path), delivery_delay_s=0.2, seed=7, undelivered_share=0.0
    )
    if request.param == "https":
        config.tls_cert, config.tls_key = str(tls_files.chain), str(tls_files.key)
    with Sandbox(config) as sb:
        assert sb.url.startswith(f"{request.param}://")
        CA_FOR_URL[sb.url] = str(tls_files.ca)
        yield sb


def verify(sb: Sandbox) -> str | bool:
    return CA_FOR_URL.get(sb.url, True)


def call(sb: Sandbox, path: str, timeout: float = 5, **fields: str) -> requests.Response:
    form = {"appId": sb.config.app_id, "appSecret": sb.config.app_secret, **fields}
    return requests.post(sb.url + path, data=form, timeout=timeout, verify=verify(sb))


def send(sb: Sandbox, number: str = NUMBER, message: str = TEXT, **fields: str) -> dict[str, Any]:
    return call(sb, SEND, number=number, message=message, **fields).json()


def sent_ok(sb: Sandbox, number: str = NUMBER, message: str = TEXT, **fields: str) -> None:
    """Send and insist on the exact success reply."""
    assert send(sb, number=number, message=message, **fields) == {"code": 0, "data": "发送成功"}


def find(sb: Sandbox, message_id: str) -> dict[str, Any] | None:
    """The record, whichever shape it came in (object, or JSON string for ``shape="rich"``)."""
    reply = call(sb, FIND, messageId=message_id).json()
    assert reply["code"] == 0
    data = reply["data"]
    if data is None:
        return None
    assert isinstance(data, str if sb.config.shape == "rich" else dict)
    return json.loads(data) if isinstance(data, str) else data


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
        "m-1",
        NUMBER,
        TEXT,
        1,
    )
    assert entry["time"].endswith("+08:00")
    assert TEXT in lines[0]  # UTF-8, not \u escapes
    assert sandbox.balance == 1_000_000 - 1


def test_credentials_are_checked_and_secret_never_echoed(
    sandbox: Sandbox, ledger_path: Path
) -> None:
    secret = sandbox.config.app_secret
    url = sandbox.url + SEND
    fields = {"number": NUMBER, "message": TEXT, "messageId": "m-1"}
    ca = verify(sandbox)
    wrong_id = requests.post(url, data={"appId": "nope", "appSecret": secret, **fields}, verify=ca)
    no_id = requests.post(url, data={"appSecret": secret, **fields}, verify=ca)
    wrong_secret = requests.post(
        url, data={"appId": "demo-app", "appSecret": "x", **fields}, verify=ca
    )
    assert wrong_id.json() == no_id.json() == {"code": 105, "data": "appId错误或应用不存在"}
    assert wrong_secret.json()["code"] == 110
    replies = {
        path: call(sandbox, path, number=NUMBER, message=TEXT, messageId="m-1")
        for path in (SEND, SEND_V2, BALANCE, FIND)
    }
    assert {path: reply.json()["code"] for path, reply in replies.items()} == {
        SEND: 0,
        SEND_V2: 100,
        BALANCE: 0,
        FIND: 0,
    }  # v2 without a templateId: 100
    bodies = [reply.text for reply in replies.values()]
    assert all(secret not in body for body in [*bodies, wrong_secret.text])
    assert secret not in ledger_path.read_text(encoding="utf-8")
    assert [entry["messageId"] for entry in sandbox.ledger_entries()] == ["m-1"]


@pytest.mark.parametrize(
    "number",
    [
        "",
        "1381234567",
        "138123456789",
        "12812345678",
        "+8613812345678",
        "138 1234 5678",
        "１３８１２３４５６７８",
    ],
)
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


@pytest.mark.parametrize("limit", [None, 0])
def test_no_daily_limit_unless_the_account_sets_one(sandbox: Sandbox, limit: int | None) -> None:
    assert SandboxConfig().daily_limit is None
    sandbox.config.daily_limit = limit
    assert {send(sandbox)["code"] for _ in range(120)} == {0}
    assert len(sandbox.ledger_entries()) == 120


# -- template sends (v2) --------------------------------------------------------------------


def send_v2(
    sb: Sandbox, template_id: str = "1001", params: str = '["1234", "5"]'
) -> dict[str, Any]:
    return call(
        sb, SEND_V2, number=NUMBER, templateId=template_id, templateParams=params, messageId="v2-1"
    ).json()


def test_v2_renders_template(sandbox: Sandbox) -> None:
    assert send_v2(sandbox) == {"code": 0, "data": "发送成功"}
    assert sandbox.ledger_entries()[0]["message"] == "【榛子科技】您的验证码为1234,5分钟内有效。"
    assert find(sandbox, "v2-1")["message"] == "【榛子科技】您的验证码为1234,5分钟内有效。"


def test_v2_template_without_parameters_needs_no_template_params(sandbox: Sandbox) -> None:
    reply = call(sandbox, SEND_V2, number=NUMBER, templateId="1002", messageId="v2-2").json()
    assert reply == {"code": 0, "data": "发送成功"}
    assert sandbox.ledger_entries()[0]["message"] == sandbox.config.templates["1002"]


def test_extra_client_ip_field_is_accepted(sandbox: Sandbox) -> None:
    sent_ok(sandbox, clientIp="203.0.113.9", messageId="ip-1")
    assert [entry["messageId"] for entry in sandbox.ledger_entries()] == ["ip-1"]


def test_v2_unknown_template_is_117(sandbox: Sandbox) -> None:
    assert send_v2(sandbox, template_id="9999")["code"] == 117


@pytest.mark.parametrize(
    "params",
    [
        "",
        "not json",
        '{"1": "a"}',
        "[1, 2]",
        '["1234"]',
        "[" * 5_000 + "]" * 5_000,
        '["\\ud800", "5"]',
    ],
    ids=["empty", "not-json", "object", "numbers", "too-few", "too-deep", "lone-surrogate"],
)
def test_v2_bad_params_are_100(sandbox: Sandbox, params: str) -> None:
    assert send_v2(sandbox, params=params)["code"] == 100
    assert sandbox.ledger_entries() == []


def test_v2_long_rendered_text_is_101(sandbox: Sandbox) -> None:
    assert send_v2(sandbox, params=json.dumps(["9" * 1000, "5"]))["code"] == 101


# -- balance and lookup ---------------------------------------------------------------------


def test_balance_call(sandbox: Sandbox) -> None:
    assert call(sandbox, BALANCE).json() == {"code": 0, "data": 1_000_000}
    sent_ok(sandbox)
    assert call(sandbox, BALANCE).json()["data"] == 999_999


def test_lookup_unknown_is_null_and_empty_is_100(sandbox: Sandbox) -> None:
    assert call(sandbox, FIND, messageId="never-sent").json() == {"code": 0, "data": None}
    assert call(sandbox, FIND, messageId="").json()["code"] == 100


def test_real_shapes_by_default_byte_for_byte(sandbox: Sandbox) -> None:
    sent = call(sandbox, SEND, number=NUMBER, message=TEXT, messageId="m-1")
    assert sent.content == '{"code":0,"data":"发送成功"}'.encode()
    assert call(sandbox, BALANCE).content == b'{"code":0,"data":999999}'
    reply = call(sandbox, FIND, messageId="m-1")
    assert b", " not in reply.content and b'": ' not in reply.content  # compact
    assert TEXT.encode() in reply.content  # UTF-8, not \u escapes
    record = reply.json()["data"]
    assert isinstance(record, dict)
    created = datetime.strptime(record.pop("createTime"), "%Y-%m-%d %H:%M:%S")
    assert abs(created - datetime.now(SHANGHAI).replace(tzinfo=None)) < timedelta(minutes=1)
    assert record == {
        "messageId": "m-1",
        "toNumber": NUMBER,
        "message": TEXT,
        "status": "pending",
        "appName": "campaigns-sandbox",
    }
    final = wait_for(lambda: (r := find(sandbox, "m-1"))["status"] != "pending" and r)
    assert final["status"] == "success"
    assert set(final) == {"messageId", "toNumber", "message", "createTime", "status", "appName"}


NOT_FOUND = {
    "null": {"code": 0, "data": None},
    "empty": {"code": 0, "data": ""},
    "object": {"code": 0, "data": {}},
    "list": {"code": 0, "data": []},
    "code100": {"code": 100, "data": "参数格式错误"},
}


@pytest.mark.parametrize("form", sorted(NOT_FOUND))
def test_unknown_message_id_reply_forms(sandbox: Sandbox, form: str) -> None:
    sandbox.config.unknown_reply = form  # type: ignore[assignment]
    assert call(sandbox, FIND, messageId="never-sent").json() == NOT_FOUND[form]
    sandbox.config.visibility_delay_s = 30  # a record not visible yet answers the same
    sent_ok(sandbox, messageId="m-1")
    assert call(sandbox, FIND, messageId="m-1").json() == NOT_FOUND[form]


def test_random_unknown_reply_uses_every_form_reproducibly() -> None:
    def replies() -> list[Any]:
        with Sandbox(SandboxConfig(seed=5, unknown_reply="random")) as sb:
            return [call(sb, FIND, messageId=f"x{i}").json() for i in range(40)]

    first = replies()
    assert first == replies()
    assert sorted(map(json.dumps, NOT_FOUND.values())) == sorted(set(map(json.dumps, first)))
    assert set(UNKNOWN_REPLIES) == {*NOT_FOUND, "random"}


def test_rich_lookup_goes_from_pending_to_success(sandbox: Sandbox) -> None:
    sandbox.config.shape = "rich"
    sent_ok(sandbox, messageId="m-1")
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


@pytest.mark.parametrize("shape", ["real", "rich"])
def test_undelivered_share_one_ends_failed(sandbox: Sandbox, shape: str) -> None:
    sandbox.config.shape = shape  # type: ignore[assignment]
    sandbox.config.undelivered_share = 1.0
    sent_ok(sandbox, messageId="m-1")
    final = wait_for(lambda: (r := find(sandbox, "m-1"))["status"] != "pending" and r)
    assert final["status"] == "failed"
    assert ("errorMsg" in final) is (shape == "rich")
    if shape == "rich":
        assert final["errorMsg"].startswith("UNDELIV")


def test_visibility_delay_hides_new_record(sandbox: Sandbox) -> None:
    sandbox.config.visibility_delay_s = 0.3
    sent_ok(sandbox, messageId="m-1")
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
    assert requests.get(sandbox.url + SEND, timeout=5, verify=verify(sandbox)).status_code == 405


def test_port_zero_picks_distinct_free_ports() -> None:
    with Sandbox(SandboxConfig()) as a, Sandbox(SandboxConfig()) as b:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", a.url)
        assert a.url != b.url
        assert call(a, BALANCE).json()["code"] == 0


def test_keep_alive_and_counters(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        form = {"appId": "demo-app", "appSecret": "demo-secret", "number": NUMBER, "message": TEXT}
        for _ in range(3):
            reply = session.post(sandbox.url + SEND, data=form, timeout=5, verify=verify(sandbox))
            assert reply.json()["code"] == 0
    assert call(sandbox, BALANCE).json() == {"code": 0, "data": 1_000_000 - 3}
    assert sandbox.request_count(SEND) == 3
    assert sandbox.request_count(BALANCE) == 1
    times = sandbox.arrival_times()
    assert len(times) == 3 and times == sorted(times)


def test_stop_cuts_keep_alive_connections(sandbox: Sandbox) -> None:
    sb = sandbox
    with requests.Session() as session:
        form = {"appId": "demo-app", "appSecret": "demo-secret"}
        ca = verify(sb)
        assert session.post(sb.url + BALANCE, data=form, timeout=5, verify=ca).json()["code"] == 0
        url = sb.url
        sb.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url + BALANCE, data=form, timeout=5, verify=ca)


def test_concurrent_requests_are_not_serialised(sandbox: Sandbox) -> None:
    sandbox.config.latency_ms = 100
    sandbox.config.daily_limit = 0
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda: codes.append(send(sandbox)["code"])) for _ in range(20)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.0  # serialised would take 2.0 s
    assert codes == [0] * 20


def test_cli_options_reach_the_sandbox() -> None:
    server = sandbox_command(
        "--app-id",
        "a",
        "--app-secret",
        "s",
        "--shape",
        "rich",
        "--unknown-reply",
        "list",
        "--daily-limit",
        "1",
        "--max-body",
        "1000",
    )
    try:
        url = server.stdout.readline().strip() if server.stdout else ""
        form = {"appId": "a", "appSecret": "s", "number": NUMBER, "message": TEXT}
        codes = [
            requests.post(url + SEND, data={**form, "messageId": f"c-{i}"}, timeout=5).json()
            for i in range(2)
        ]
        assert [reply["code"] for reply in codes] == [0, 109]
        unknown = requests.post(url + FIND, data={**form, "messageId": "c-1"}, timeout=5)
        assert unknown.json() == {"code": 0, "data": []}
        known = requests.post(url + FIND, data={**form, "messageId": "c-0"}, timeout=5).json()
        assert json.loads(known["data"])["segments"] == 1  # rich: a JSON string, more fields
        too_big = requests.post(url + SEND, data={**form, "message": "x" * 1000}, timeout=5)
        assert too_big.status_code == 400
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    assert (server.returncode, err) == (0, "")
