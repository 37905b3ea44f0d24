"""The provider client: error mapping, tolerant record parsing, lookup before any re-send."""

import json

import pytest
import requests

from campaigns.config import Secret
from campaigns.errors import AccountBlocked, MessageRejected, Transient
from campaigns.provider.client import ZhenziClient, parse_record
from tests.conftest import APP_ID, APP_SECRET


def response(status: int, body: str) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply._content = body.encode("utf-8")
    return reply


@pytest.mark.parametrize(
    ("code", "kind"),
    [(100, MessageRejected), (101, MessageRejected), (109, MessageRejected)]
    + [(code, AccountBlocked) for code in (105, 106, 107, 108, 110, 111, 117)]
    + [(1000, Transient)],
)
def test_error_codes_map_to_what_the_caller_must_do(code, kind):
    with pytest.raises(kind) as caught:
        ZhenziClient._parse(response(200, json.dumps({"code": code, "data": "错误"})))
    if kind is not Transient:
        assert caught.value.code == code


def test_account_errors_carry_chinese_meaning_and_advice():
    with pytest.raises(AccountBlocked) as caught:
        ZhenziClient._parse(response(200, '{"code": 108, "data": "短信余额不足"}'))
    assert "短信余额不足" in caught.value.meaning
    assert "top up" in caught.value.advice


@pytest.mark.parametrize(
    ("status", "body", "maybe_sent"),
    [
        (502, "<html>Bad Gateway</html>", True),
        (503, "", True),
        (200, "<html>oops</html>", True),
        (429, "slow down", False),
    ],
)
def test_http_trouble_is_transient(status, body, maybe_sent):
    with pytest.raises(Transient) as caught:
        ZhenziClient._parse(response(status, body))
    assert caught.value.maybe_sent is maybe_sent


def test_wrong_api_url_stops_instead_of_retrying_forever():
    with pytest.raises(AccountBlocked, match="404"):
        ZhenziClient._parse(response(404, "<html>not found</html>"))


@pytest.mark.parametrize("data", [None, "", "null", {}, "  "])
def test_unknown_message_parses_as_none(data):
    assert parse_record("m1", data) is None


def test_record_as_object_or_json_string_is_understood_and_kept_raw():
    record = {"messageId": "m1", "toNumber": "13800138000", "status": "success", "extra": 1}
    for data in (record, json.dumps(record)):
        parsed = parse_record("m1", data)
        assert parsed.delivery == "delivered"
        assert json.loads(parsed.raw)["extra"] == 1
    assert parse_record("m1", {"status": "failed"}).delivery == "undelivered"
    assert parse_record("m1", {"status": "weird-new-status"}).delivery is None


def client_for(sandbox, **overrides) -> ZhenziClient:
    options = {
        "read_timeout": 0.5,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "visibility_wait": 0.0,
    } | overrides
    return ZhenziClient(sandbox.url, APP_ID, Secret(APP_SECRET), **options)


def test_dropped_connection_is_looked_up_not_resent(sandbox):
    sandbox.config.drop_after_accept = 1.0
    result = client_for(sandbox).send("13800138000", "【测试】您的订单已发货", "drop-1")
    assert result.confirmed_by_lookup
    assert [e["messageId"] for e in sandbox.ledger_entries()] == ["drop-1"]


def test_too_late_reply_is_looked_up_not_resent(sandbox):
    sandbox.config.slow_reply = 1.0
    sandbox.config.slow_reply_s = 1.5
    result = client_for(sandbox, read_timeout=0.3).send("13800138000", "【测试】内容", "slow-1")
    assert result.confirmed_by_lookup
    assert len(sandbox.ledger_entries()) == 1


def test_unconfirmed_send_is_never_repeated_blindly(sandbox):
    sandbox.config.fail_5xx = 1.0
    client = client_for(sandbox, max_attempts=3)
    with pytest.raises(Transient) as caught:
        client.send("13800138000", "【测试】内容", "never")
    # A 502 may hide an accepted SMS, and every lookup failed too: the client never re-sent.
    assert caught.value.maybe_sent
    assert caught.value.requests == 1
    assert sandbox.request_count("/sms/send.do") == 1
    assert sandbox.request_count("/smslog/findSmsByMessageId.do") >= 2


def test_code_1000_is_retried_after_a_lookup_and_counted(sandbox):
    sandbox.config.fail_1000 = 1.0
    client = client_for(sandbox, max_attempts=3)
    with pytest.raises(Transient):
        client.send("13800138000", "【测试】内容", "busy")
    sandbox.config.fail_1000 = 0.0
    result = client.send("13800138000", "【测试】内容", "busy-2")
    assert result.requests == 1
    assert [e["messageId"] for e in sandbox.ledger_entries()] == ["busy-2"]


def test_wrong_secret_is_blocked_and_never_shown(sandbox):
    client = ZhenziClient(sandbox.url, APP_ID, Secret("wrong-secret-value"))
    with pytest.raises(AccountBlocked) as caught:
        client.balance()
    assert caught.value.code == 110
    assert "wrong-secret-value" not in str(caught.value) + repr(client)


def test_connection_refused_is_transient_and_not_maybe_sent():
    client = ZhenziClient(
        "http://127.0.0.1:9",
        APP_ID,
        Secret(APP_SECRET),
        max_attempts=2,
        backoff_initial=0.01,
        backoff_max=0.01,
    )
    with pytest.raises(Transient) as caught:
        client.send("13800138000", "x", "m")
    assert caught.value.maybe_sent is False
