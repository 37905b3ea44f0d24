"""An independent double of the Zhenzi provider, built only from the shapes real code shows.

Not our sandbox: nothing here is shared with ``campaigns.provider.sandbox``. It follows
``shared/provider/API.md`` ("What real code shows"): compact JSON; a send answers exactly
``{"code":0,"data":"发送成功"}``; balance ``data`` is an int; a lookup's ``data`` is an object
with exactly ``messageId, toNumber, message, createTime, status, appName``. Where the real
provider is unknown it is deliberately unkind: an unknown messageId gets a reply shape drawn at
random (``null``, ``""``, ``{}``, ``[]`` or code 100), and a share of connections is reset before
the request is read. It serves HTTP or HTTPS (the TLS handshake runs on the request's thread),
records every request body it read, and keeps its own ledger of accepted SMS.

Also here: certificates from a test CA (``trustme``), and name resolution of test host names to
127.0.0.1 inside the test process only.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme

from tests.support.serving import ServedInThread

TEST_DOMAIN = "zhenzi.test"
UNDERSCORE_HOST = f"sms_developer.{TEST_DOMAIN}"
SENT_TEXT = "发送成功"
UNKNOWN_SHAPES = ("null", "empty string", "empty object", "empty list", "code 100")


def resolve_test_hosts(monkeypatch) -> None:
    """``*.zhenzi.test`` resolves to 127.0.0.1 in this process; every other name as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").endswith(TEST_DOMAIN):
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass
class Certificates:
    """A test CA, the bundle file a client trusts, and server contexts for leaf certificates."""

    folder: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    @property
    def bundle(self) -> str:
        path = self.folder / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def server_files(self, *names: str) -> tuple[str, str]:
        """(chain, key) PEM files for a server that takes file names, like the sandbox."""
        leaf = self.ca.issue_cert(*names)
        chain, key = self.folder / "chain.pem", self.folder / "key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return str(chain), str(key)

    def server_context(self, *names: str, expired: bool = False) -> ssl.SSLContext:
        if expired:
            now = datetime.now(UTC)
            leaf = self.ca.issue_cert(
                *names, not_before=now - timedelta(days=60), not_after=now - timedelta(days=1)
            )
        else:
            leaf = self.ca.issue_cert(*names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        return context


@dataclass
class Sms:
    message_id: str
    number: str
    message: str
    create_time: str
    status: str


@dataclass
class DoubleConfig:
    app_id: str = "real-app"
    app_secret: str = "real-secret-Never-Shown"
    balance: int = 10_000
    reset_share: float = 0.0  # connections reset before the request is read
    # The status a lookup shows for an accepted SMS (default: the only value seen, "success").
    status_of: Callable[[Sms], str] = lambda sms: "success"
    # The replies an unknown messageId may get, one drawn at random per lookup.
    unknown_shapes: tuple[str, ...] = UNKNOWN_SHAPES
    # messageId -> (code, data): the lookup of that id answers this instead of its record.
    odd_lookups: dict[str, tuple[int, Any]] = field(default_factory=dict)
    seed: int = 12


class RealDouble(ServedInThread):
    """The provider as real code sees it; ``ledger`` is what the phones received."""

    def __init__(self, config: DoubleConfig, tls: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.tls = tls
        self.ledger: list[Sms] = []
        self.bodies: list[bytes] = []  # every request body read, in order
        self.handshake_failures = 0
        self.resets = 0
        self.unknown_shapes: list[str] = []
        self._records: dict[str, Sms] = {}
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        server = _Server(("127.0.0.1", 0), self)
        self._serve(server)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def delivered(self) -> int:
        with self._lock:
            return sum(self.config.status_of(sms) == "success" for sms in self.ledger)

    def chance(self, share: float) -> bool:
        with self._lock:
            return self._rng.random() < share

    # -- the four calls ----

    def answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.bodies.append(body)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        if form.get("appId") != self.config.app_id:
            return _reply(105, "appId错误或应用不存在")
        if form.get("appSecret") != self.config.app_secret:
            return _reply(110, "应用秘钥(AppSecret)错误")
        if path == "/sms/send.do":
            return self._send(form)
        if path == "/account/balance.do":
            return _reply(0, self.config.balance)
        if path == "/smslog/findSmsByMessageId.do":
            return self._find(form.get("messageId", ""))
        return 404, b"<html><body>404 Not Found</body></html>"

    def _send(self, form: dict[str, str]) -> tuple[int, bytes]:
        number, message = form.get("number", ""), form.get("message", "")
        if len(number) != 11 or not number.isdigit() or not message:
            return _reply(100, "参数格式错误")
        now = datetime.now(UTC) + timedelta(hours=8)
        sms = Sms(form.get("messageId", ""), number, message, f"{now:%Y-%m-%d %H:%M:%S}", "")
        with self._lock:
            self.ledger.append(sms)
            if sms.message_id:
                self._records[sms.message_id] = sms
        return _reply(0, SENT_TEXT)

    def _find(self, message_id: str) -> tuple[int, bytes]:
        if message_id in self.config.odd_lookups:
            return _reply(*self.config.odd_lookups[message_id])
        with self._lock:
            sms = self._records.get(message_id)
            shape = None if sms else self._rng.choice(self.config.unknown_shapes)
            if shape:
                self.unknown_shapes.append(shape)
        if sms is not None:
            return _reply(
                0,
                {
                    "messageId": sms.message_id,
                    "toNumber": sms.number,
                    "message": sms.message,
                    "createTime": sms.create_time,
                    "status": self.config.status_of(sms),
                    "appName": "真实应用",
                },
            )
        empty = {"null": None, "empty string": "", "empty object": {}, "empty list": []}
        if shape == "code 100":
            return _reply(100, "参数格式错误")
        return _reply(0, empty[shape])


def _reply(code: int, data: Any) -> tuple[int, bytes]:
    text = json.dumps({"code": code, "data": data}, ensure_ascii=False, separators=(",", ":"))
    return 200, text.encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], double: RealDouble) -> None:
        self.double = double
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake, on this request's thread (a slow client cannot stall the rest)."""
        if self.double.tls is not None:
            try:
                request = self.double.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with self.double._lock:
                    self.double.handshake_failures += 1
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is part of the game here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle_one_request(self) -> None:
        double = self.server.double
        if double.config.reset_share:
            # Wait for the request to start arriving: an idle keep-alive connection that is cut
            # is reopened by urllib3 unseen, while a request in flight is the case to test.
            try:
                arriving = self.rfile.peek(1)
            except OSError:
                arriving = b""
            if not arriving:
                self.close_connection = True
                return
            if double.chance(double.config.reset_share):
                with double._lock:
                    double.resets += 1
                self._reset()
                return
        super().handle_one_request()

    def _reset(self) -> None:
        """Abort the connection (RST) without reading the request."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.connection.close()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status, body = self.server.double.answer(self.path, self.rfile.read(length))
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""
