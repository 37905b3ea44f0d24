"""A test server that serves from a thread of its own while its ``with`` block lasts."""

from __future__ import annotations

import socketserver
import threading
from typing import Self


class ServedInThread:
    """Subclasses build their server, then call ``_serve(server)`` in ``__init__``."""

    _server: socketserver.BaseServer

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
