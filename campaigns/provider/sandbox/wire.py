"""What goes on the wire: form parsing, reply bodies, and the two shapes of a delivery record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qs

from campaigns.provider.codes import CODES
from campaigns.provider.sandbox.config import APP_NAME, Shape
from campaigns.provider.sandbox.state import Record

UNDELIVERED_TEXT = "UNDELIV 用户停机/空号"
SENT_TEXT = "发送成功"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# What a lookup of an unknown messageId answers, per ``SandboxConfig.unknown_reply``.
NOT_FOUND_DATA: dict[str, Any] = {"null": None, "empty": "", "object": {}, "list": []}

After = Literal["reply", "drop", "slow"]


class Refused(Exception):
    """A provider error code ends this request."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class BadGateway(Exception):
    """An injected HTTP 502 ends this request."""


class MalformedRequest(Exception):
    """The request itself is broken (framing, encoding): an HTTP 4xx, and the connection closed."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    after: After = "reply"
    headers: tuple[tuple[str, str], ...] = ()


def compact_json(value: Any) -> bytes:
    """The provider's style: no spaces, UTF-8 text rather than ``\\u`` escapes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_reply(code: int, data: Any, after: After = "reply") -> Reply:
    return Reply(200, compact_json({"code": code, "data": data}), JSON_TYPE, after)


def refused_reply(code: int) -> Reply:
    return json_reply(code, CODES[code].chinese)


def html_reply(status: int, title: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return Reply(status, body.encode("utf-8"), HTML_TYPE, headers=headers)


def bad_gateway_reply() -> Reply:
    return Reply(502, _BAD_GATEWAY_HTML.encode("utf-8"), HTML_TYPE)


def bad_request_reply(reason: str, status: int = 400) -> Reply:
    """A JSON body in the provider's envelope, so a client that parses replies does not crash."""
    return Reply(status, compact_json({"code": status, "data": reason}), JSON_TYPE)


def parse_form(body: bytes) -> dict[str, str]:
    """First value of every field. The body, raw or %-escaped, must be UTF-8."""
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedRequest("the form is not UTF-8") from None
    return {name: values[0] for name, values in parsed.items()}


def record_data(record: Record, now: float, shape: Shape) -> Any:
    """``data`` of a lookup reply: a JSON object (real) or a JSON string with more fields (rich)."""
    final = now >= record.due_at
    status = ("success" if record.delivered else "failed") if final else "pending"
    fields: dict[str, Any] = {
        "messageId": record.message_id,
        "toNumber": record.number,
        "message": record.message,
        "createTime": record.created.strftime(TIME_FORMAT),
        "status": status,
        "appName": APP_NAME,
    }
    if shape == "real":
        return fields
    status_time = record.created + timedelta(seconds=record.delay_s)
    fields["statusTime"] = status_time.strftime(TIME_FORMAT) if final else ""
    fields["errorMsg"] = UNDELIVERED_TEXT if final and not record.delivered else ""
    fields["segments"] = record.segments
    return json.dumps(fields, ensure_ascii=False)
