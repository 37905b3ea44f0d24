"""What a send reads and writes between its claims: claims, leases, the shared rate bucket, the
suppression list and caps as a send screens them, and the sent messages reconcile pages through."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select, update

from campaigns.store.campaign_queries import rows_changed, utcnow
from campaigns.store.db import Store
from campaigns.store.models import DEFERRED, PENDING, SENDING, SENT, Message, RateLimit, Suppression


@dataclass(frozen=True)
class Claim:
    """A message marked ``sending`` (committed) and handed to a worker."""

    id: int
    message_id: str
    phone: str
    content: str
    attempts: int
    params: str | None = None  # v2 templateParams (JSON list)


CLAIM_COLUMNS = (
    Message.id,
    Message.message_id,
    Message.phone,
    Message.content,
    Message.attempts,
    Message.params,
)


def _claims(rows: Iterable[Any]) -> list[Claim]:
    """Claims from rows of CLAIM_COLUMNS, in id order. Only messages with an id and a phone are
    ever pending or sending, so the columns the model allows to be NULL are not here."""
    return sorted((Claim(*row) for row in rows), key=lambda claim: claim.id)


def claim_batch(
    store: Store, campaign_id: int, limit: int, me: str, lease: timedelta
) -> list[Claim]:
    """Mark up to ``limit`` pending messages ``sending`` for ``me`` and commit, before any request.

    On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several senders claim at once without waiting
    for or overlapping each other; SQLite serialises writers, which gives the same guarantee.
    """
    candidates = (
        select(Message.id)
        .where(Message.campaign_id == campaign_id, Message.state == PENDING)
        .order_by(Message.id)
        .limit(limit)
    )
    return _claim(store, candidates, me, utcnow() + lease, attempts=Message.attempts + 1)


def in_flight(store: Store, campaign_id: int, holder: str) -> list[Claim]:
    """``holder``'s messages still ``sending``: their outcome is unknown until looked up."""
    with store.session() as session:
        rows = session.execute(
            select(*CLAIM_COLUMNS)
            .where(
                Message.campaign_id == campaign_id,
                Message.state == SENDING,
                Message.claimed_by == holder,
            )
            .order_by(Message.id)
        )
        return _claims(rows)


def renew_leases(store: Store, me: str, until: datetime) -> None:
    """Keep this sender's in-flight claims: a live sender never loses them to another.

    Rows this sender's own outcome write holds locked are skipped (they are being settled): on
    PostgreSQL the heartbeat must never wait for the writer while the writer waits for it.
    """
    mine = select(Message.id).where(Message.claimed_by == me, Message.state == SENDING)
    if not store.is_sqlite:
        mine = mine.with_for_update(skip_locked=True)
    with store.session.begin() as session:
        session.execute(
            update(Message).where(Message.id.in_(mine.scalar_subquery())).values(lease_until=until)
        )


def release_leases(store: Store, me: str) -> None:
    """A run that ends hands what it still holds (outcome unknown) to the next sender at once."""
    with store.session.begin() as session:
        session.execute(
            update(Message)
            .where(Message.claimed_by == me, Message.state == SENDING)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def holders_in_flight(store: Store, campaign_id: int) -> list[str]:
    """The senders that hold ``sending`` messages of the campaign (live or dead)."""
    with store.session() as session:
        return list(
            session.scalars(
                select(Message.claimed_by)
                .where(Message.campaign_id == campaign_id, Message.state == SENDING)
                .distinct()
            )
        )


def take_over(
    store: Store, campaign_id: int, me: str, lease: timedelta, dead: Sequence[str], limit: int
) -> list[Claim]:
    """Claim ``sending`` messages whose sender is gone (lease expired, or known dead)."""
    now = utcnow()
    orphaned = (
        select(Message.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.state == SENDING,
            or_(
                Message.lease_until.is_(None),
                Message.lease_until < now,
                Message.claimed_by.in_(list(dead)),
            ),
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return _claim(store, orphaned, me, now + lease, attempts=Message.attempts)


def _claim(
    store: Store, candidates: Select[Any], me: str, lease_until: datetime, attempts: Any
) -> list[Claim]:
    if not store.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(Message)
        .where(Message.id.in_(candidates.scalar_subquery()))
        .values(state=SENDING, claimed_by=me, lease_until=lease_until, attempts=attempts)
        .returning(*CLAIM_COLUMNS)
    )
    with store.session.begin() as session:
        rows = session.execute(statement).all()
    return _claims(rows)


def reserve_slots(store: Store, name: str, count: int, interval: float) -> float:
    """Take ``count`` consecutive send slots from the account's shared bucket; return the first.

    A bucket idle for a while restarts at now, never further back: no burst after a pause.
    """
    now = time.time()
    span = count * interval
    # The dialect's own INSERT (for ON CONFLICT), imported here: loading PostgreSQL's takes
    # ~50 ms that commands on SQLite, `status` first, should not pay.
    if store.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    with store.session.begin() as session:
        # Two senders may create the bucket at the same moment: the second one's insert is a no-op.
        session.execute(insert(RateLimit).values(name=name, next_slot=now).on_conflict_do_nothing())
        next_slot = session.execute(
            update(RateLimit)
            .where(RateLimit.name == name)
            .values(
                next_slot=case((RateLimit.next_slot > now, RateLimit.next_slot), else_=now) + span
            )
            .returning(RateLimit.next_slot)
        ).scalar_one()
    return next_slot - span


def wake_deferred(store: Store, campaign_id: int, now: datetime) -> int:
    """Deferred messages whose time has come go back to pending."""
    with store.session.begin() as session:
        return rows_changed(
            session.execute(
                update(Message)
                .where(
                    Message.campaign_id == campaign_id,
                    Message.state == DEFERRED,
                    Message.due_at <= now,
                )
                .values(state=PENDING, due_at=None)
            )
        )


# -- screening a claim: the suppression list and the cap ----


def suppressed_among(store: Store, phones: Sequence[str]) -> set[str]:
    with store.session() as session:
        return set(
            session.scalars(select(Suppression.phone).where(Suppression.phone.in_(list(phones))))
        )


def suppressed_since(store: Store, since: datetime | None) -> tuple[set[str], datetime | None]:
    """Numbers added to the suppression list after ``since``, and the newest addition time."""
    query = select(Suppression.phone, Suppression.added_at)
    if since is not None:
        query = query.where(Suppression.added_at > since)
    with store.session() as session:
        rows = session.execute(query).all()
    newest = max((added for _, added in rows), default=since)
    return {phone for phone, _ in rows}, newest


def recently_received(
    store: Store, phones: Sequence[str], since: datetime
) -> dict[str, tuple[int, datetime]]:
    """Per number: messages sent to it since ``since`` across all campaigns, and the oldest."""
    with store.session() as session:
        rows: Iterable[Any] = session.execute(
            select(Message.phone, func.count(), func.min(Message.sent_at))
            .where(Message.phone.in_(list(phones)), Message.sent_at >= since)
            .group_by(Message.phone)
        )
        return {phone: (count, oldest) for phone, count, oldest in rows}


# -- after the send: reconcile ----


def sent_not_final(
    store: Store, campaign_id: int, after_id: int, limit: int
) -> list[tuple[int, str, datetime | None]]:
    """(id, messageId, sent_at) of sent messages awaiting a delivery answer, in id order, paged."""
    with store.session() as session:
        rows: Iterable[Any] = session.execute(
            select(Message.id, Message.message_id, Message.sent_at)
            .where(Message.campaign_id == campaign_id, Message.state == SENT, Message.id > after_id)
            .order_by(Message.id)
            .limit(limit)
        )
        return [(pk, message_id, sent_at) for pk, message_id, sent_at in rows]
