"""Why a run is ending: one object every room of a run may tell, below them all.

The gate (pause, cancel, schedule), the error budget, the workers (account refused, provider
down, a bug) and the run itself (Ctrl-C) each record their reason here; the run settles them at
the end by ``StopReason``'s precedence. Nothing here imports the rooms, so they never import
each other to stop the run.
"""

from __future__ import annotations

import threading

from campaigns.errors import AccountBlocked, StopReason

_PRECEDENCE = {reason: rank for rank, reason in enumerate(StopReason)}


class Stop:
    """Shared by the threads of one run; ``event`` is the caller's ``SendOptions.stop`` too, so a
    caller that sets it ends the run without a reason (it then returns its progress)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.account: AccountBlocked | None = None  # the refusal behind StopReason.ACCOUNT
        self.crashed: BaseException | None = None  # a bug: re-raised as it is
        self._reasons: dict[StopReason, str] = {}
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self.event.is_set()

    def request(self, reason: StopReason, detail: str = "") -> None:
        """Stop claiming; the first detail given for a reason is the one kept."""
        with self._lock:
            self._reasons.setdefault(reason, detail)
        self.event.set()

    def refused(self, exc: AccountBlocked) -> None:
        with self._lock:
            self.account = self.account or exc
        self.request(StopReason.ACCOUNT)

    def crash(self, exc: BaseException) -> None:
        with self._lock:
            self.crashed = self.crashed or exc
        self.event.set()

    def has(self, reason: StopReason) -> bool:
        return reason in self._reasons

    def settled(self) -> tuple[StopReason, str] | None:
        """The reason that wins, with its detail; None when nothing stopped the run early."""
        with self._lock:
            if not self._reasons:
                return None
            reason = min(self._reasons, key=_PRECEDENCE.__getitem__)
            return reason, self._reasons[reason]
