"""The provider client: error mapping, tolerant record parsing, lookup before any re-send."""

import json

import pytest
import requests

from campaigns.config import Secret
from campaigns.errors import AccountBlocked, MessageRejected, Transient
from campaigns.provider.client import (
    DELIVERED_TEXTS,
    UNDELIVERED_TEXTS,
    ZhenziClient,
    parse_record,
)
from tests.support.real_double import UNKNOWN_SHAPES, DoubleConfig, RealDouble
from tests.support.recipients import APP_ID, APP_SECRET


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


# -- replies as the real provider sends them ----

REAL_RECORD = {
    "messageId": "m1",
    "toNumber": "13800138000",
    "message": "【测试】内容",
    "createTime": "2021-03-10 19:24:19",
    "status": "success",
    "appName": "应用",
}


@pytest.mark.parametrize("data", [[], "[]", "{}", " null "])
def test_every_empty_form_is_not_found(data):
    assert parse_record("m1", data) is None


def test_the_real_record_shape_needs_nothing_beyond_its_six_fields():
    parsed = parse_record("m1", REAL_RECORD)
    assert (parsed.delivery, parsed.status, parsed.message_id) == ("delivered", "success", "m1")
    assert json.loads(parsed.raw) == REAL_RECORD


@pytest.mark.parametrize("text", sorted(DELIVERED_TEXTS))
def test_known_delivered_texts(text):
    assert parse_record("m1", {"status": f" {text.upper()} "}).delivery == "delivered"


@pytest.mark.parametrize("text", sorted(UNDELIVERED_TEXTS))
def test_known_undelivered_texts(text):
    assert parse_record("m1", {"status": text}).delivery == "undelivered"


@pytest.mark.parametrize("text", ["pending", "发送中", "", "SUCCESS_BUT_NOT_REALLY"])
def test_other_texts_are_not_final_and_kept(text):
    parsed = parse_record("m1", {**REAL_RECORD, "status": text})
    assert parsed.delivery is None
    assert json.loads(parsed.raw)["status"] == text


@pytest.mark.parametrize("shape", UNKNOWN_SHAPES)
def test_unknown_message_ids_are_not_found_in_every_reply_shape(shape):
    config = DoubleConfig(unknown_shapes=(shape,))
    with RealDouble(config) as double:
        client = ZhenziClient(double.url(), config.app_id, Secret(config.app_secret))
        assert client.find("never-sent") is None
    assert double.unknown_shapes == [shape]


def test_undocumented_error_code_on_a_lookup_is_not_found_but_account_codes_stop():
    config = DoubleConfig(odd_lookups={"odd": (999, "奇怪"), "blocked": (110, "秘钥错误")})
    with RealDouble(config) as double:
        client = ZhenziClient(double.url(), config.app_id, Secret(config.app_secret))
        assert client.find("odd") is None
        with pytest.raises(AccountBlocked):
            client.find("blocked")


@pytest.mark.parametrize("fault", ["fail_1000", "fail_5xx"])
def test_a_lookup_that_fails_is_unknown_not_not_found(sandbox, fault):
    setattr(sandbox.config, fault, 1.0)
    with pytest.raises(Transient):
        client_for(sandbox, max_attempts=2).find("any")


@pytest.mark.parametrize("shape", ["real", "rich"])
def test_sandbox_records_in_both_shapes_are_understood(sandbox, shape):
    sandbox.config.shape = shape
    sandbox.config.delivery_delay_s = 0.0
    sandbox.config.undelivered_share = 0.0
    client = client_for(sandbox)
    client.send("13800138000", "【测试】内容", "both-1")
    record = client.find("both-1")
    assert record.delivery == "delivered"
    assert record.fields["toNumber"] == "13800138000"


def test_one_dispatch_between_free_text_and_template(monkeypatch):
    """Every stored message goes through ``send_message``; a template without parameters sends
    no templateParams, as the official SDKs do."""
    client = ZhenziClient("http://127.0.0.1:9", APP_ID, Secret(APP_SECRET))
    sent: list[tuple[str, dict[str, str]]] = []
    monkeypatch.setattr(
        client, "_send_once", lambda path, fields, message_id, pace: sent.append((path, fields))
    )
    client.send_message("13800000001", "m-1", content="【店】您好")
    client.send_message("13800000001", "m-2", content="", template_id="7", params='["张三","5"]')
    client.send_message("13800000001", "m-3", content="", template_id="8", params="[]")
    client.send_message("13800000001", "m-4", content="", template_id="9", params=None)
    assert sent == [
        ("/sms/send.do", {"number": "13800000001", "message": "【店】您好", "messageId": "m-1"}),
        (
            "/sms/v2/send.do",
            {
                "number": "13800000001",
                "templateId": "7",
                "messageId": "m-2",
                "templateParams": '["张三", "5"]',
            },
        ),
        ("/sms/v2/send.do", {"number": "13800000001", "templateId": "8", "messageId": "m-3"}),
        ("/sms/v2/send.do", {"number": "13800000001", "templateId": "9", "messageId": "m-4"}),
    ]
