"""Who holds a ``sending`` message, for how long, and when a run may no longer send on its claims.

Each claim carries the sender's name (``claimed_by``, unique per run) and a lease that a
heartbeat thread renews. A sender that dies stops renewing; once its leases expire (at once when
it ran on this host and its PID is gone) another sender takes its ``sending`` messages over. A
run never starts a request on a lease about to expire.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from campaigns.store import send_queries
from campaigns.store.campaign_queries import utcnow
from campaigns.store.db import Store

# A lease outlives a request with all its retries many times over, and survives a few missed
# renewals (a database hiccup); a dead sender's messages wait at most this long for another.
LEASE = timedelta(seconds=30)
RENEW_EVERY = 5.0
# No request starts on a lease with less than this left: it must land while the lease holds.
LEASE_MARGIN = 12.0


def sender_name() -> str:
    """``pid@host/random``: names this run; its fenced writes cannot pass for another's."""
    return f"{os.getpid()}@{socket.gethostname()}/{secrets.token_hex(3)}"


def is_dead_here(holder: str | None) -> bool:
    """True for a sender of this host whose process is gone (its leases need not be waited out)."""
    if not holder:
        return True
    pid, _, rest = holder.partition("@")
    if rest.split("/")[0] != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases:
    """This run's name and the heartbeat that keeps its claims."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.me = sender_name()
        self._safe_until = time.monotonic() + LEASE.total_seconds() - LEASE_MARGIN
        # A renewal that comes after the safe window closed cannot vouch for older claims:
        # another sender may have taken them over meanwhile. Claims made before this moment
        # are never sent (their fenced write-back changes nothing if they were taken over).
        self._forfeit_before = float("-inf")

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """While it is open, a thread renews this run's leases every few seconds; on leaving,
        what the run still holds (outcome unknown) goes to the next sender at once."""
        done = threading.Event()
        thread = threading.Thread(target=self._renew, args=(done,), daemon=True, name="lease")
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            send_queries.release_leases(self.store, self.me)

    def _renew(self, done: threading.Event) -> None:
        while not done.wait(RENEW_EVERY):
            started = time.monotonic()
            if started >= self._safe_until:  # stopped, starved or cut off too long
                self._forfeit_before = started
            try:
                send_queries.renew_leases(self.store, self.me, utcnow() + LEASE)
            except SQLAlchemyError:
                continue  # a missed renewal only brings the lease's end closer
            self._safe_until = started + LEASE.total_seconds() - LEASE_MARGIN

    def may_send(self, claimed_at: float) -> bool:
        """True while a request on a claim made at ``claimed_at`` (monotonic) lands in time."""
        return time.monotonic() < self._safe_until and claimed_at > self._forfeit_before
