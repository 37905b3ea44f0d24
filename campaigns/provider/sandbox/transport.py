"""HTTP (and HTTPS) framing around ``Provider``: request bodies, refusals, faults that cut the wire.

A request whose framing is broken never reaches the provider's rules: a bad, negative, repeated or
missing ``Content-Length``, a chunked body, a body over ``max_body_bytes`` or one that is not
UTF-8 gets an HTTP 400 (411 when the length is missing) with a JSON body, and its connection is
closed; every other connection goes on being served. Client hang-ups, timeouts and refused TLS
handshakes are normal for a provider and never print a traceback.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from campaigns.provider.sandbox.provider import Provider
from campaigns.provider.sandbox.wire import MalformedRequest, Reply, bad_request_reply

HANDSHAKE_TIMEOUT_S = 10.0
# After refusing a request, read (and drop) at most this much of its unread body, for at most
# this long, so the client sees our reply instead of a connection reset.
LINGER_BYTES = 1024 * 1024
LINGER_S = 2.0

_DIGITS = re.compile(r"[0-9]+")


def tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    """A server context for ``cert`` (PEM chain) and ``key`` (None: the key is in ``cert``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        files = f"{cert} and {key}" if key else cert
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise ValueError(f"cannot load a TLS certificate and key from {files}: {reason}") from None
    return context


class SandboxServer(ThreadingHTTPServer):
    """Threaded server, optionally TLS, that also cuts its open connections when it closes."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], provider: Provider, tls: ssl.SSLContext | None
    ) -> None:
        self.provider = provider
        self.tls = tls
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._track(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's own thread, so a slow handshake never blocks accepting."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return  # the client refused our certificate, or does not speak TLS
        self._untrack(request)
        self._track(secure)
        try:
            super().finish_request(secure, client_address)
        finally:
            self._untrack(secure)
            with contextlib.suppress(OSError):
                secure.close()

    def shutdown_request(self, request: Any) -> None:
        self._untrack(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open = list(self._open)
        for conn in still_open:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for TLS ones: the reader wakes up to an EOF.
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Hang-ups, timeouts and TLS failures are the network's doing: no traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def _track(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(conn)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zhenzi-sandbox"
    disable_nagle_algorithm = True
    server: SandboxServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.provider.config.idle_timeout_s)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default logs every request to stderr."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, huge headers) as JSON too;
        how much of the request is left unread is not known, so linger as long as allowed."""
        reason = message or HTTPStatus(code).phrase
        self._refuse(MalformedRequest(reason, code), unread=LINGER_BYTES)

    def _serve(self, method: str) -> None:
        provider = self.server.provider
        try:
            length = self._body_length(method)
        except MalformedRequest as bad:
            self._refuse(bad, unread=_declared_length(self.headers.get("Content-Length")))
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True  # the client hung up mid-body: nobody to answer
            return
        try:
            reply = provider.answer(method, urlsplit(self.path).path, body)
        except MalformedRequest as bad:
            self._refuse(bad, unread=0)
            return
        self._deliver(reply)

    def _body_length(self, method: str) -> int:
        """The declared body length, if it is one we accept."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise MalformedRequest("chunked bodies are not accepted; send a Content-Length", 411)
        values = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if not values:
            if method == "POST":
                raise MalformedRequest("Content-Length is required", 411)
            return 0
        if len(values) > 1:
            raise MalformedRequest("conflicting Content-Length headers")
        (value,) = values
        shown = value if len(value) <= 40 else value[:40] + "…"
        length = _byte_count(value)
        if length is None:
            raise MalformedRequest(f"Content-Length {shown!r} is not a byte count")
        limit = self.server.provider.config.max_body_bytes
        if length > limit:
            raise MalformedRequest(f"a body of {shown} bytes is over the limit of {limit} bytes")
        return length

    def _deliver(self, reply: Reply) -> None:
        config = self.server.provider.config
        if config.latency_ms > 0:
            time.sleep(config.latency_ms / 1000)
        if reply.after == "drop":
            self._drop()
            return
        if reply.after == "slow":
            time.sleep(config.slow_reply_s)
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    def _refuse(self, bad: MalformedRequest, unread: int) -> None:
        """Answer, then close; first drain a little of the unread body (see ``LINGER_BYTES``)."""
        self.close_connection = True
        self._write(bad_request_reply(str(bad), bad.status))
        if unread <= 0:
            return
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.connection, socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            deadline = time.monotonic() + LINGER_S
            budget = min(unread, LINGER_BYTES)
            while budget > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(budget, 65536))
                if not chunk:
                    return
                budget -= len(chunk)

    def _drop(self) -> None:
        """Hang up without a word, as a provider that crashed after sending would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)


def _byte_count(value: str) -> int | None:
    """A plain decimal count, saturated at 10**18 (``int`` refuses over 4300 digits)."""
    if not _DIGITS.fullmatch(value):
        return None
    digits = value.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


def _declared_length(value: str | None) -> int:
    """How many body bytes the client may still send: the declared count, if it is one."""
    return _byte_count((value or "").strip()) or 0
