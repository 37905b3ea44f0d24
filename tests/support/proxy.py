"""A loopback HTTP proxy in front of the sandbox that answers chosen requests itself.

Faults injected here stay outside the sandbox's own code path: the sandbox sees only what the
proxy lets through, and its ledger still says what the phones received.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.serving import ServedInThread


@dataclass(frozen=True)
class Answer:
    """A reply the proxy gives instead of forwarding the request."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"


@dataclass(frozen=True)
class AfterForward:
    """Forward the request to the sandbox (it is accepted there), then drop the reply (the
    client sees the connection cut) or hold it ``hold`` seconds before passing it on."""

    drop: bool = False
    hold: float = 0.0
    until: threading.Event | None = None  # with ``hold``: pass the reply on early once set


@dataclass(frozen=True)
class CutOff:
    """Close the connection without passing the request on: the client cannot tell it from a
    reply lost on the way back, but the provider never got it."""


def dropped_reply() -> AfterForward:
    return AfterForward(drop=True)


def held_reply(seconds: float, until: threading.Event | None = None) -> AfterForward:
    return AfterForward(hold=seconds, until=until)


def bad_gateway() -> Answer:
    return Answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")


def provider_code(code: int, text: str = "injected by the test proxy") -> Answer:
    """A provider error reply, as the API sends it: HTTP 200 with ``{"code", "data"}``."""
    return Answer(200, json.dumps({"code": code, "data": text}, ensure_ascii=False).encode())


# (path, how many requests to that path came before this one) -> an answer, a fault to apply to
# the forwarded reply, or None to forward.
Fault = Answer | AfterForward | CutOff
Intercept = Callable[[str, int], Fault | None]


def forward_everything(path: str, seen: int) -> Fault | None:
    return None


class FaultProxy(ServedInThread):
    """``with FaultProxy(sandbox.url) as proxy:`` point the client at ``proxy.url``; set
    ``proxy.intercept`` (any time) to answer some requests instead of the sandbox."""

    def __init__(self, target_url: str, intercept: Intercept = forward_everything) -> None:
        self.target = urlsplit(target_url)
        self.intercept = intercept
        self.seen: Counter[str] = Counter()
        # (time.monotonic(), path, messageId or "") of each request, in order of arrival
        self.arrivals: list[tuple[float, str, str]] = []
        self.holding = 0  # replies held up right now
        self._lock = threading.Lock()
        self._connections = threading.local()
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._serve(server)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, body: bytes) -> Fault | None:
        message_id = parse_qs(body.decode("utf-8", "replace")).get("messageId", [""])[0]
        with self._lock:
            seen = self.seen[path]
            self.seen[path] += 1
            self.arrivals.append((time.monotonic(), path, message_id))
        return self.intercept(path, seen)

    def forward(self, path: str, body: bytes, content_type: str) -> Answer:
        """Over this handler thread's own keep-alive connection (a fresh one per request would
        make the proxy, not the faults, what limits a fast run)."""
        connection = getattr(self._connections, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.target.hostname, self.target.port, timeout=30
            )
            self._connections.connection = connection
        try:
            connection.request("POST", path, body, {"Content-Type": content_type})
            reply = connection.getresponse()
            return Answer(reply.status, reply.read(), reply.getheader("Content-Type") or "")
        except (OSError, http.client.HTTPException):
            connection.close()
            self._connections.connection = None
            raise

    def hold(self, fault: AfterForward) -> None:
        """The injected fault: a reply held up on the way."""
        with self._lock:
            self.holding += 1
        try:
            if fault.until is not None:
                fault.until.wait(fault.hold)
            else:
                time.sleep(fault.hold)
        finally:
            with self._lock:
                self.holding -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Head and body go out as two writes: with Nagle's algorithm the body would wait for
            # the client's delayed ACK (~40 ms), and the proxy, not the faults, would set the pace.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                fault = proxy.answer(path, body)
                if isinstance(fault, CutOff):
                    self._hang_up()
                    return
                if isinstance(fault, Answer):
                    answer = fault
                else:
                    answer = proxy.forward(path, body, self.headers.get("Content-Type", ""))
                if isinstance(fault, AfterForward) and fault.drop:
                    self._hang_up()
                    return
                if isinstance(fault, AfterForward) and fault.hold:
                    proxy.hold(fault)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def _hang_up(self) -> None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler
