"""Every read and write the pipeline makes; the only module that speaks SQL."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from campaigns.errors import UserError
from campaigns.store.db import Store
from campaigns.store.models import PENDING, SENDING, SENT, STATES, Campaign, Message


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def this_process() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


@dataclass(frozen=True)
class Claim:
    """A message marked ``sending`` (committed) and handed to a worker."""

    id: int
    message_id: str
    phone: str
    content: str
    attempts: int


# -- campaigns ----


def get_campaign(session: Session, name: str) -> Campaign | None:
    return session.scalar(select(Campaign).where(Campaign.name == name))


def find_campaign(session: Session, name: str) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign is None:
        names = session.scalars(select(Campaign.name).order_by(Campaign.id).limit(10)).all()
        known = ", ".join(names) if names else "none yet; create one with `campaigns import`"
        raise UserError(f"no campaign named {name!r} (campaigns: {known})")
    return campaign


def campaign_by_name(store: Store, name: str) -> Campaign:
    with store.session() as session:
        return find_campaign(session, name)


def list_campaigns(store: Store) -> list[Campaign]:
    with store.session() as session:
        return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def update_campaign(store: Store, campaign_id: int, **values: Any) -> None:
    with store.session.begin() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))


# -- import ----


def existing_phones(session: Session, campaign_id: int) -> dict[str, int]:
    """Numbers already in the campaign, with the row that brought each (for de-duplication)."""
    rows = session.execute(
        select(Message.phone, func.min(Message.row_number))
        .where(Message.campaign_id == campaign_id, Message.message_id.is_not(None))
        .group_by(Message.phone)
    )
    return {phone: row for phone, row in rows}


def accepted_count(session: Session, campaign_id: int) -> int:
    return session.scalar(
        select(func.count()).where(
            Message.campaign_id == campaign_id, Message.message_id.is_not(None)
        )
    )


def insert_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Message), rows)


# -- counts ----


def counts_by_state(store: Store, campaign_id: int) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(Message.state, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.state)
        )
        found = {state: count for state, count in rows}
    return {state: found.get(state, 0) for state in STATES}


def errors_by_code(store: Store, campaign_id: int) -> list[tuple[int | None, str | None, int]]:
    """(provider code, import reason, count) for every message that did not get through."""
    with store.session() as session:
        rows = session.execute(
            select(Message.error_code, Message.reason, func.count())
            .where(
                Message.campaign_id == campaign_id,
                or_(Message.error_code.is_not(None), Message.reason.is_not(None)),
            )
            .group_by(Message.error_code, Message.reason)
            .order_by(func.count().desc())
        )
        return [tuple(row) for row in rows]


# -- sending ----


def claim_batch(store: Store, campaign_id: int, limit: int) -> list[Claim]:
    """Mark up to ``limit`` pending messages ``sending`` and commit before any request leaves."""
    candidates = (
        select(Message.id)
        .where(Message.campaign_id == campaign_id, Message.state == PENDING)
        .order_by(Message.id)
        .limit(limit)
    )
    if not store.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(Message)
        .where(Message.id.in_(candidates.scalar_subquery()))
        .values(state=SENDING, sending_at=utcnow(), attempts=Message.attempts + 1)
        .returning(Message.id, Message.message_id, Message.phone, Message.content, Message.attempts)
    )
    with store.session.begin() as session:
        rows = session.execute(statement).all()
    return sorted((Claim(*row) for row in rows), key=lambda claim: claim.id)


def in_flight(store: Store, campaign_id: int) -> list[Claim]:
    """Messages left ``sending``: their outcome is unknown until they are looked up."""
    with store.session() as session:
        rows = session.execute(
            select(Message.id, Message.message_id, Message.phone, Message.content, Message.attempts)
            .where(Message.campaign_id == campaign_id, Message.state == SENDING)
            .order_by(Message.id)
        )
        return [Claim(*row) for row in rows]


def record_outcomes(store: Store, outcomes: Sequence[dict[str, Any]]) -> None:
    """One transaction for a batch of outcomes (each a dict of Message columns with its ``id``)."""
    if not outcomes:
        return
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_shape.setdefault(tuple(sorted(outcome)), []).append(outcome)
    with store.session.begin() as session:
        for rows in by_shape.values():
            session.execute(update(Message), rows)


def acquire_sender(store: Store, campaign_id: int, me: str, stale_after: timedelta) -> str | None:
    """Make ``me`` the campaign's only sender; return the current holder if another one is alive."""
    now = utcnow()
    with store.session.begin() as session:
        taken = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                or_(
                    Campaign.sender.is_(None),
                    Campaign.sender == me,
                    Campaign.heartbeat_at < now - stale_after,
                ),
            )
            .values(sender=me, heartbeat_at=now)
        ).rowcount
        if taken:
            return None
        holder = session.scalar(select(Campaign.sender).where(Campaign.id == campaign_id))
        if holder and _dead_on_this_host(holder):
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.sender == holder)
                .values(sender=me, heartbeat_at=now)
            )
            return None
        return holder


def _dead_on_this_host(holder: str) -> bool:
    pid, _, host = holder.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def heartbeat(store: Store, campaign_id: int, me: str) -> None:
    with store.session.begin() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.sender == me)
            .values(heartbeat_at=utcnow())
        )


def release_sender(store: Store, campaign_id: int, me: str) -> None:
    with store.session.begin() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.sender == me)
            .values(sender=None, heartbeat_at=None)
        )


# -- reconcile ----


def sent_not_final(
    store: Store, campaign_id: int, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """(id, messageId) of sent messages awaiting a delivery answer, in id order, paged."""
    with store.session() as session:
        rows = session.execute(
            select(Message.id, Message.message_id)
            .where(Message.campaign_id == campaign_id, Message.state == SENT, Message.id > after_id)
            .order_by(Message.id)
            .limit(limit)
        )
        return [(pk, message_id) for pk, message_id in rows]


# -- reports ----

REPORT_COLUMNS = (
    "row_number",
    "raw_phone",
    "phone",
    "message_id",
    "state",
    "reason",
    "error_code",
    "error_text",
    "attempts",
    "segments",
    "content",
    "fields",
    "queued_at",
    "sent_at",
    "final_at",
)


def report_frame(store: Store, campaign_id: int, states: Sequence[str] | None = None) -> Any:
    """The report's rows as a pandas DataFrame (pandas loads only when a report is made)."""
    import pandas as pd

    columns = [getattr(Message, name) for name in REPORT_COLUMNS]
    query = (
        select(*columns)
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.row_number, Message.id)
    )
    if states:
        query = query.where(Message.state.in_(states))
    with store.session() as session:
        rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
