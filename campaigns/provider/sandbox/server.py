"""``Sandbox``: start and stop the simulated provider, and look inside it from tests."""

from __future__ import annotations

import threading
from typing import Any

from campaigns.provider.sandbox.config import SandboxConfig
from campaigns.provider.sandbox.provider import Provider
from campaigns.provider.sandbox.transport import SandboxServer, tls_context


class Sandbox:
    """The simulated provider: its rules and account, and the server that exposes them."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._provider = Provider(config)
        self._lock = threading.Lock()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----

    def start(self) -> Sandbox:
        """Serve on a daemon thread; the socket listens before this returns.

        Raises ``OSError`` when the address cannot be bound, ``ValueError`` for TLS files that
        cannot be loaded."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="zhenzi-sandbox",
            daemon=True,
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
        """Base URL to give the client as ``apiUrl``: ``https://`` when serving TLS."""
        server = self._serving()
        host, port = server.socket.getsockname()[:2]
        scheme = "https" if server.tls is not None else "http"
        return f"{scheme}://{host}:{port}"

    @property
    def port(self) -> int:
        """The port served, for URLs that name the host differently (TLS host-name tests)."""
        return int(self._serving().socket.getsockname()[1])

    def _serving(self) -> SandboxServer:
        if self._server is None:
            raise RuntimeError("sandbox is not serving")
        return self._server

    def _bind(self) -> SandboxServer:
        config = self.config
        if config.tls_key and not config.tls_cert:
            raise ValueError("a TLS key needs its certificate (tls_cert)")
        tls = tls_context(config.tls_cert, config.tls_key) if config.tls_cert else None
        with self._lock:
            if self._server is not None:
                raise RuntimeError("sandbox is already serving")
            if config.ledger:
                self._provider.account.open_ledger(config.ledger)
            try:
                self._server = SandboxServer((config.host, config.port), self._provider, tls)
            except OSError:
                self._provider.account.close_ledger()
                raise
            return self._server

    def _release(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.server_close()
        self._provider.account.close_ledger()

    # -- looking inside ----

    def ledger_entries(self) -> list[dict[str, Any]]:
        """Copy of every ledger line written so far (also kept when no ledger file is set)."""
        return self._provider.account.ledger_entries()

    def set_balance(self, n: int) -> None:
        """Top the account up or drain it."""
        self._provider.account.set_balance(n)

    @property
    def balance(self) -> int:
        return self._provider.account.balance

    def arrival_times(self) -> list[float]:
        """``time.monotonic()`` of each send request's arrival, for rate measurements."""
        return self._provider.arrival_times()

    def open_connections(self) -> int:
        """Connections whose handler has not finished yet (0 once every client is done)."""
        return self._serving().open_connections()

    def request_count(self, path: str) -> int:
        """Requests received on ``path``, whatever their outcome."""
        return self._provider.request_count(path)
