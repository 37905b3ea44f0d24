"""What became of a message, as one typed value, and the one write that records a batch of them.

Sending and reconcile both describe results as ``Outcome`` values; which columns a write sets
follows from the kind of outcome, never from which keys a dict happens to carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update

from campaigns.store.db import Store
from campaigns.store.models import Message

# What each kind of outcome writes. A send attempt settles the first five and gives the lease up
# (a deferral also sets when the message may go); an unknown outcome keeps the lease; a delivery
# answer (reconcile) writes only what the lookup found.
ATTEMPT_COLUMNS = ("state", "attempts", "sent_at", "error_code", "error_text")
RELEASE_COLUMNS = (*ATTEMPT_COLUMNS, "lease_until")
DEFER_COLUMNS = (*RELEASE_COLUMNS, "due_at")
DELIVERY_COLUMNS = ("state", "final_at", "provider_record", "error_text")
# Bind names of each column (``b_`` keeps them apart from the columns the statement names).
_BIND = {c: f"b_{c}" for c in ("id", *DEFER_COLUMNS, *DELIVERY_COLUMNS)}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One message's new state and the columns that go with it.

    ``keep_lease``: the message stays ``sending`` with its outcome unknown, and this sender keeps
    holding it until a lookup settles it; every other attempt outcome gives the lease up.
    ``delivery``: an answer from reconcile, which leaves what the send recorded alone.
    """

    id: int
    state: str
    attempts: int = 0
    sent_at: datetime | None = None
    error_code: int | None = None
    error_text: str | None = None
    due_at: datetime | None = None
    keep_lease: bool = False
    delivery: bool = False
    final_at: datetime | None = None
    provider_record: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        if self.delivery:
            return DELIVERY_COLUMNS
        if self.keep_lease:
            return ATTEMPT_COLUMNS
        return RELEASE_COLUMNS if self.due_at is None else DEFER_COLUMNS

    def values(self) -> dict[str, Any]:
        """The Message columns this outcome writes (``lease_until`` None: the lease is given up)."""
        return {column: getattr(self, column, None) for column in self.columns}

    def binds(self) -> dict[str, Any]:
        """``values()`` and the id, under the bind names ``record_outcomes`` uses."""
        binds = {_BIND[column]: getattr(self, column, None) for column in self.columns}
        binds["b_id"] = self.id
        return binds


def record_outcomes(store: Store, outcomes: Sequence[Outcome], me: str | None = None) -> None:
    """One transaction for a batch of outcomes.

    With ``me``, each write is fenced: it applies only while ``me`` still holds the message, so a
    sender whose lease expired (and whose messages another sender took over) changes nothing.
    """
    if not outcomes:
        return
    by_columns: dict[tuple[str, ...], list[Outcome]] = {}
    for outcome in outcomes:
        by_columns.setdefault(outcome.columns, []).append(outcome)
    with store.session.begin() as session:
        for columns, group in by_columns.items():
            fence = [Message.id == bindparam(_BIND["id"])]
            if me is not None:
                fence.append(Message.claimed_by == me)
            statement = (
                update(Message)
                .where(*fence)
                .values({column: bindparam(_BIND[column]) for column in columns})
            )
            session.connection().execute(statement, [outcome.binds() for outcome in group])
