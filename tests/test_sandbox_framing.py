"""Hostile HTTP framing gets a 4xx JSON reply and a closed connection; the sandbox keeps serving.

Raw sockets, because ``requests`` never sends a broken ``Content-Length``.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest
import requests

from campaigns.provider.sandbox import Sandbox, SandboxConfig
from tests.support.sandbox import wait_for

BALANCE = "/account/balance.do"
SEND = "/sms/send.do"
CREDENTIALS = b"appId=demo-app&appSecret=demo-secret"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(seed=3)) as sb:
        yield sb


def exchange(sb: Sandbox, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the reply until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode("utf-8") + body)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head_bytes, _, reply_body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, reply_body


def post_head(length_headers: str, path: str = SEND) -> str:
    return f"POST {path} HTTP/1.1\nHost: 127.0.0.1\n{length_headers}\n"


def assert_still_serving(sb: Sandbox) -> None:
    form = {"appId": "demo-app", "appSecret": "demo-secret"}
    reply = requests.post(sb.url + BALANCE, data=form, timeout=5)
    assert reply.json() == {"code": 0, "data": 1_000_000}


@pytest.mark.parametrize(
    ("length_headers", "status", "reason"),
    [
        ("Content-Length: 1000000000000\n", 400, "over the limit of 65536 bytes"),
        (f"Content-Length: {'9' * 5000}\n", 400, "over the limit of 65536 bytes"),
        ("Content-Length: -1\n", 400, "is not a byte count"),
        ("Content-Length: abc\n", 400, "is not a byte count"),
        ("Content-Length: 1e12\n", 400, "is not a byte count"),
        ("Content-Length: ４\n", 400, "is not a byte count"),
        ("Content-Length: 4\nContent-Length: 5\n", 400, "conflicting"),
        ("", 411, "Content-Length is required"),
        ("Transfer-Encoding: chunked\n", 411, "chunked"),
    ],
    ids=[
        "1e12-digits",
        "5000-digits",
        "negative",
        "letters",
        "exponent",
        "full-width",
        "two",
        "missing",
        "chunked",
    ],
)
def test_hostile_content_length_is_refused_and_serving_goes_on(
    sandbox: Sandbox,
    capfd: pytest.CaptureFixture[str],
    length_headers: str,
    status: int,
    reason: str,
) -> None:
    got, headers, body = exchange(sandbox, post_head(length_headers))
    assert got == status
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Connection"] == "close"
    reply = json.loads(body)
    assert reply["code"] == status and reason in reply["data"]
    assert_still_serving(sandbox)
    assert sandbox.ledger_entries() == []
    assert capfd.readouterr().err == ""


def test_body_over_the_limit_is_refused_after_being_sent_whole(
    sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    body = CREDENTIALS + b"&number=13812345678&message=" + b"x" * 70_000
    got, _, reply = exchange(sandbox, post_head(f"Content-Length: {len(body)}\n"), body)
    assert got == 400
    assert "over the limit of 65536 bytes" in json.loads(reply)["data"]
    assert sandbox.ledger_entries() == []
    assert_still_serving(sandbox)
    assert capfd.readouterr().err == ""


def test_the_body_limit_is_configurable(sandbox: Sandbox) -> None:
    sandbox.config.max_body_bytes = len(CREDENTIALS) - 1
    got, _, _ = exchange(
        sandbox, post_head(f"Content-Length: {len(CREDENTIALS)}\n", BALANCE), CREDENTIALS
    )
    assert got == 400
    sandbox.config.max_body_bytes = len(CREDENTIALS)
    assert_still_serving(sandbox)


@pytest.mark.parametrize(
    "message", [b"\xff\xfe", b"%FF%FE", "你好".encode("gb18030")], ids=["raw", "escaped", "gbk"]
)
def test_a_body_that_is_not_utf8_is_refused(
    sandbox: Sandbox, capfd: pytest.CaptureFixture[str], message: bytes
) -> None:
    body = CREDENTIALS + b"&number=13812345678&message=" + message
    got, _, reply = exchange(sandbox, post_head(f"Content-Length: {len(body)}\n"), body)
    assert (got, json.loads(reply)) == (400, {"code": 400, "data": "the form is not UTF-8"})
    assert sandbox.ledger_entries() == []
    assert_still_serving(sandbox)
    assert capfd.readouterr().err == ""


def test_an_overlong_request_line_gets_a_json_414(sandbox: Sandbox) -> None:
    got, _, body = exchange(sandbox, f"GET /{'a' * 70_000} HTTP/1.1\nHost: x\n\n")
    assert got == 414
    assert json.loads(body)["code"] == 414
    assert_still_serving(sandbox)


def test_clients_hanging_up_print_no_traceback(
    sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    sandbox.config.latency_ms = 200  # the reply is written after the client has gone
    full = post_head(f"Content-Length: {len(CREDENTIALS)}\n", BALANCE).replace("\n", "\r\n")
    short = post_head("Content-Length: 500\n", BALANCE).replace("\n", "\r\n")
    payloads = [full.encode() + CREDENTIALS, short.encode() + CREDENTIALS, full.encode()[:20]]
    for payload in payloads:
        conn = socket.create_connection(("127.0.0.1", sandbox.port), timeout=5)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sendall(payload)
        conn.close()  # SO_LINGER 0: a reset, the rudest hang-up
    assert_still_serving(sandbox)
    wait_for(lambda: sandbox.open_connections() == 0)  # every handler has finished
    assert capfd.readouterr().err == ""
