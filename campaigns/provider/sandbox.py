"""A loopback simulator of the Zhenzi (榛子云短信) HTTP API, for tests, demos and benchmarks.

It serves the four documented paths (``/sms/send.do``, ``/sms/v2/send.do``,
``/account/balance.do``, ``/smslog/findSmsByMessageId.do``) with the documented wire format:
``POST`` of ``application/x-www-form-urlencoded`` UTF-8 fields, reply HTTP 200 with
``{"code": <int>, "data": <any>}``; error replies carry the provider's Chinese text in ``data``.
Unknown paths get an HTML 404, other methods than ``POST`` an HTML 405.

Where the provider's document is silent the sandbox chooses, and says so here:

Checks, in this order
    1. Credentials on every call: ``appId`` missing or wrong -> 105; ``appSecret`` missing or
       wrong -> 110. The secret is never echoed: not in replies, logs or the ledger.
    2. Send fields: ``number`` must be a mainland mobile number, exactly ``1[3-9]`` and nine more
       ASCII digits, no spaces, no ``+86`` (else 100). v2 only: empty ``templateId`` -> 100,
       unknown one -> 117; ``templateParams`` must be a JSON array of strings holding at least as
       many items as the template's highest placeholder ``{n}`` (else 100; an empty or absent
       field counts as ``[]``); ``{n}`` is replaced by the n-th item, extra items are ignored.
       The rendered text is then checked like a plain ``message``: empty -> 100, longer than
       1000 UTF-16 code units -> 101 (an emoji outside the BMP counts 2).
    3. Injected faults (see below) 1000 and HTTP 502. Balance and lookup calls get them too,
       after their own field checks.
    4. Daily limit: at most ``daily_limit`` accepted SMS per number per Asia/Shanghai calendar
       day, else 109 (0 = unlimited). Refused sends do not count.
    5. Balance, counted in segments: 1 segment up to 70 UTF-16 units, otherwise ceil(units / 67).
       A balance below the message's segments -> 108, and nothing is charged.
    6. Accept: charge the segments, store the delivery record, append the ledger line, reply
       ``{"code": 0, "data": "发送成功"}``.

Duplicate ``messageId``
    Not de-duplicated (the worst real provider): every send is accepted, charged, ledgered and
    "delivered" again. A lookup returns the most recent visible record for that id. A send
    without ``messageId`` is delivered and ledgered (``"messageId": null``) but cannot be looked up.

Lookup (``findSmsByMessageId``)
    Empty ``messageId`` -> 100. Unknown id, or one whose record is still inside
    ``visibility_delay_s`` after acceptance -> ``{"code": 0, "data": null}``. Otherwise ``data`` is
    a JSON *string* holding an object (the document says "短信信息的json字符串") with
    ``messageId``, ``toNumber``, ``message``, ``createTime`` ("YYYY-MM-DD HH:MM:SS",
    Asia/Shanghai), ``status``, ``statusTime`` (same format, "" while pending), ``errorMsg``
    ("" unless failed, then "UNDELIV 用户停机/空号"), ``segments`` (int) and ``appName``
    ("campaigns-sandbox"). ``status`` is ``"pending"`` until the record's due time, then
    ``"success"`` or ``"failed"``. Each record's outcome is drawn when it is accepted: it fails
    with probability ``undelivered_share`` and is due ``delivery_delay_s`` times a jitter in
    [0.5, 1.5) later.

Injected faults (each drawn independently per request from ``random.Random(seed)``)
    ``fail_1000``: reply ``{"code": 1000, "data": "系统位置错误"}``, nothing accepted.
    ``fail_5xx``: HTTP 502 with an nginx-like HTML body, nothing accepted (when both fire, 1000
    wins). ``drop_after_accept`` (sends only): accepted, charged and ledgered, then the connection
    is shut down with no reply. ``slow_reply`` (sends only): accepted, then the reply waits
    ``slow_reply_s`` more (drop wins over slow). ``latency_ms`` delays every reply, each request
    on its own thread, so concurrent requests are never serialised. With a ``seed`` and one
    client thread the sequence of faults and outcomes is reproducible.

Ledger
    With ``ledger`` set, one UTF-8 JSON line per accepted SMS is appended and flushed:
    ``{"messageId", "number", "message", "time" (ISO-8601, +08:00), "segments"}``. It is the
    ground truth of what "recipients received" (and what was paid for), duplicates included.

``SandboxConfig`` may be changed while serving; every request reads it afresh (except ``balance``,
the starting balance: use ``Sandbox.set_balance``, and ``seed``, ``host``, ``port``, ``ledger``).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import random
import re
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from campaigns.provider.codes import CODES

SHANGHAI = ZoneInfo("Asia/Shanghai")
APP_NAME = "campaigns-sandbox"
UNDELIVERED_TEXT = "UNDELIV 用户停机/空号"
SEND_PATHS = frozenset({"/sms/send.do", "/sms/v2/send.do"})

_NUMBER = re.compile(r"1[3-9][0-9]{9}")
_PLACEHOLDER = re.compile(r"\{([1-9][0-9]*)\}")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _default_templates() -> dict[str, str]:
    return {"1001": "【榛子科技】您的验证码为{1},{2}分钟内有效。"}


@dataclass
class SandboxConfig:
    """How the simulated provider behaves; mutable while it serves (read on every request)."""

    host: str = "127.0.0.1"
    port: int = 0
    app_id: str = "demo-app"
    app_secret: str = "demo-secret"
    balance: int = 1_000_000
    latency_ms: float = 0.0
    ledger: str | None = None
    daily_limit: int = 10
    delivery_delay_s: float = 1.5
    undelivered_share: float = 0.05
    visibility_delay_s: float = 0.0
    fail_1000: float = 0.0
    fail_5xx: float = 0.0
    drop_after_accept: float = 0.0
    slow_reply: float = 0.0
    slow_reply_s: float = 15.0
    seed: int | None = None
    templates: dict[str, str] = field(default_factory=_default_templates)


def utf16_units(text: str) -> int:
    """Length as the provider counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """Billed SMS segments: one up to 70 units, else 67 units per concatenated segment."""
    units = utf16_units(text)
    return 1 if units <= 70 else -(-units // 67)


class _Refused(Exception):
    """A provider error code ends this request."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _BadGateway(Exception):
    """An injected HTTP 502 ends this request."""


@dataclass(frozen=True)
class _Dice:
    """One request's random draws, taken together so a seeded run is reproducible."""

    fail_1000: float
    fail_5xx: float
    drop: float
    slow: float
    undelivered: float
    jitter: float


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str
    after: Literal["reply", "drop", "slow"] = "reply"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Record:
    """An accepted SMS; its outcome is fixed at acceptance and revealed by the clock."""

    message_id: str
    number: str
    message: str
    segments: int
    created: datetime
    delay_s: float
    visible_at: float
    due_at: float
    delivered: bool

    def to_json(self, now: float) -> str:
        final = now >= self.due_at
        failed = final and not self.delivered
        status = ("success" if self.delivered else "failed") if final else "pending"
        status_time = self.created + timedelta(seconds=self.delay_s)
        return json.dumps(
            {
                "messageId": self.message_id,
                "toNumber": self.number,
                "message": self.message,
                "createTime": self.created.strftime(_TIME_FORMAT),
                "status": status,
                "statusTime": status_time.strftime(_TIME_FORMAT) if final else "",
                "errorMsg": UNDELIVERED_TEXT if failed else "",
                "segments": self.segments,
                "appName": APP_NAME,
            },
            ensure_ascii=False,
        )


def _json_reply(code: int, data: Any, after: Literal["reply", "drop", "slow"] = "reply") -> _Reply:
    body = json.dumps({"code": code, "data": data}, ensure_ascii=False).encode("utf-8")
    return _Reply(200, body, _JSON, after)


def _html_reply(status: int, title: str, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return _Reply(status, body.encode("utf-8"), _HTML, headers=headers)


def _parse_form(body: bytes) -> dict[str, str]:
    """First value of every field; raw non-ASCII bytes and %-escapes both decode as UTF-8."""
    text = body.decode("utf-8", errors="replace")
    parsed = parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="replace")
    return {name: values[0] for name, values in parsed.items()}


def _template_params(raw: str) -> list[str]:
    if not raw:
        return []
    try:
        params = json.loads(raw)
    except ValueError:
        raise _Refused(100) from None
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise _Refused(100)
    return params


class _Server(ThreadingHTTPServer):
    """Threaded server that also cuts its open keep-alive connections when it closes."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open = list(self._open)
        for conn in still_open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeouts, drops) is normal here, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zhenzi-sandbox"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default logs every request to stderr."""

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._write(_html_reply(400, "400 Bad Request"))
            return
        reply = sandbox._dispatch(method, urlsplit(self.path).path, self.rfile.read(length))
        config = sandbox.config
        if config.latency_ms > 0:
            time.sleep(config.latency_ms / 1000)
        if reply.after == "drop":
            self._drop()
            return
        if reply.after == "slow":
            time.sleep(config.slow_reply_s)
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _drop(self) -> None:
        """Hang up without a word, as a provider that crashed after sending would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Sandbox:
    """The simulated provider: state, request handling and the server that exposes them."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._balance = config.balance
        self._daily: Counter[tuple[str, date]] = Counter()
        self._records: dict[str, list[_Record]] = {}
        self._ledger: list[dict[str, Any]] = []
        self._ledger_file: Any = None
        self._arrivals: list[float] = []
        self._counts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes = {
            "/sms/send.do": self._send,
            "/sms/v2/send.do": self._send_v2,
            "/account/balance.do": self._balance_call,
            "/smslog/findSmsByMessageId.do": self._find,
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Serve on a daemon thread; the socket listens before this returns."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="zhenzi-sandbox", daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until ``stop()`` or an interrupt."""
        server = self._bind()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._release()

    def stop(self) -> None:
        """Stop serving and cut open connections, so clients see the provider vanish."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._release()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give the client as ``apiUrl``."""
        if self._server is None:
            raise RuntimeError("sandbox is not serving")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _bind(self) -> _Server:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("sandbox is already serving")
            if self.config.ledger and self._ledger_file is None:
                self._ledger_file = open(self.config.ledger, "a", encoding="utf-8")  # noqa: SIM115
            self._server = _Server((self.config.host, self.config.port), self)
            return self._server

    def _release(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            ledger_file, self._ledger_file = self._ledger_file, None
        if server is not None:
            server.server_close()
        if ledger_file is not None:
            ledger_file.close()

    # -- test helpers ----------------------------------------------------------------------

    def ledger_entries(self) -> list[dict[str, Any]]:
        """Copy of every ledger line written so far (also kept when no ledger file is set)."""
        with self._lock:
            return [dict(entry) for entry in self._ledger]

    def set_balance(self, n: int) -> None:
        """Top the account up or drain it."""
        with self._lock:
            self._balance = n

    @property
    def balance(self) -> int:
        with self._lock:
            return self._balance

    def arrival_times(self) -> list[float]:
        """``time.monotonic()`` of each send request's arrival, for rate measurements."""
        with self._stats_lock:
            return list(self._arrivals)

    def request_count(self, path: str) -> int:
        """Requests received on ``path``, whatever their outcome."""
        with self._stats_lock:
            return self._counts[path]

    # -- request handling ------------------------------------------------------------------

    def _dispatch(self, method: str, path: str, body: bytes) -> _Reply:
        """Answer one request; the HTTP handler applies latency and the drop/slow faults."""
        self._note_arrival(path)
        route = self._routes.get(path)
        if route is None:
            return _html_reply(404, "404 Not Found")
        if method != "POST":
            return _html_reply(405, "405 Method Not Allowed", (("Allow", "POST"),))
        try:
            return route(_parse_form(body), self._roll())
        except _Refused as refused:
            return _json_reply(refused.code, CODES[refused.code].chinese)
        except _BadGateway:
            return _Reply(502, _BAD_GATEWAY_HTML.encode("utf-8"), _HTML)

    def _note_arrival(self, path: str) -> None:
        now = time.monotonic()
        with self._stats_lock:
            self._counts[path] += 1
            if path in SEND_PATHS:
                self._arrivals.append(now)

    def _roll(self) -> _Dice:
        with self._rng_lock:
            return _Dice(*(self._rng.random() for _ in fields(_Dice)))

    def _check_credentials(self, form: dict[str, str]) -> None:
        if form.get("appId", "") != self.config.app_id:
            raise _Refused(105)
        secret = form.get("appSecret", "").encode("utf-8")
        if not hmac.compare_digest(secret, self.config.app_secret.encode("utf-8")):
            raise _Refused(110)

    def _inject_failure(self, dice: _Dice) -> None:
        if dice.fail_1000 < self.config.fail_1000:
            raise _Refused(1000)
        if dice.fail_5xx < self.config.fail_5xx:
            raise _BadGateway

    def _send(self, form: dict[str, str], dice: _Dice) -> _Reply:
        self._check_credentials(form)
        number = _checked_number(form)
        return self._submit(number, form.get("message", ""), form.get("messageId", ""), dice)

    def _send_v2(self, form: dict[str, str], dice: _Dice) -> _Reply:
        self._check_credentials(form)
        number = _checked_number(form)
        message = self._render(form.get("templateId", ""), form.get("templateParams", ""))
        return self._submit(number, message, form.get("messageId", ""), dice)

    def _render(self, template_id: str, raw_params: str) -> str:
        if not template_id:
            raise _Refused(100)
        template = self.config.templates.get(template_id)
        if template is None:
            raise _Refused(117)
        params = _template_params(raw_params)
        needed = max((int(n) for n in _PLACEHOLDER.findall(template)), default=0)
        if len(params) < needed:
            raise _Refused(100)
        return _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], template)

    def _submit(self, number: str, message: str, message_id: str, dice: _Dice) -> _Reply:
        if not message:
            raise _Refused(100)
        if utf16_units(message) > 1000:
            raise _Refused(101)
        self._inject_failure(dice)
        self._accept(number, message, message_id, dice)
        config = self.config
        if dice.drop < config.drop_after_accept:
            return _json_reply(0, "发送成功", "drop")
        if dice.slow < config.slow_reply:
            return _json_reply(0, "发送成功", "slow")
        return _json_reply(0, "发送成功")

    def _accept(self, number: str, message: str, message_id: str, dice: _Dice) -> None:
        """Apply the daily limit and balance, then charge, record and ledger as one step."""
        config = self.config
        created = datetime.now(SHANGHAI)
        now = time.monotonic()
        delay = config.delivery_delay_s * (0.5 + dice.jitter)
        record = _Record(
            message_id=message_id, number=number, message=message, segments=segments(message),
            created=created, delay_s=delay, visible_at=now + config.visibility_delay_s,
            due_at=now + delay, delivered=dice.undelivered >= config.undelivered_share,
        )
        entry = {
            "messageId": message_id or None, "number": number, "message": message,
            "time": created.isoformat(timespec="milliseconds"), "segments": record.segments,
        }
        day = (number, created.date())
        with self._lock:
            if config.daily_limit and self._daily[day] >= config.daily_limit:
                raise _Refused(109)
            if self._balance < record.segments:
                raise _Refused(108)
            self._balance -= record.segments
            self._daily[day] += 1
            if message_id:
                self._records.setdefault(message_id, []).append(record)
            self._ledger.append(entry)
            if self._ledger_file is not None:
                self._ledger_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._ledger_file.flush()

    def _balance_call(self, form: dict[str, str], dice: _Dice) -> _Reply:
        self._check_credentials(form)
        self._inject_failure(dice)
        return _json_reply(0, self.balance)

    def _find(self, form: dict[str, str], dice: _Dice) -> _Reply:
        self._check_credentials(form)
        message_id = form.get("messageId", "")
        if not message_id:
            raise _Refused(100)
        self._inject_failure(dice)
        now = time.monotonic()
        with self._lock:
            records = self._records.get(message_id, [])
            found = next((r for r in reversed(records) if r.visible_at <= now), None)
        return _json_reply(0, found.to_json(now) if found else None)


def _checked_number(form: dict[str, str]) -> str:
    number = form.get("number", "")
    if not _NUMBER.fullmatch(number):
        raise _Refused(100)
    return number
