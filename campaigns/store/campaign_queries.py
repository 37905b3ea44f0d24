"""Campaign rows and their counts: what every stage reads, and the one campaign update."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Result, func, select, update
from sqlalchemy.orm import Session

from campaigns.errors import UserError
from campaigns.store.db import Store
from campaigns.store.models import (
    DEFERRED,
    EXPIRED,
    FAILED,
    INVALID,
    PENDING,
    SENDING,
    STATES,
    SUPPRESSED,
    Campaign,
    Message,
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def get_campaign(session: Session, name: str) -> Campaign | None:
    return session.scalar(select(Campaign).where(Campaign.name == name))


def find_campaign(session: Session, name: str) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign is None:
        names = session.scalars(select(Campaign.name).order_by(Campaign.id).limit(10)).all()
        known = ", ".join(names) if names else "none yet; create one with `campaigns import`"
        where = session.get_bind().engine.url.render_as_string(hide_password=True)
        raise UserError(f"no campaign named {name!r} in {where} (campaigns: {known})")
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


def campaign_control(store: Store, campaign_id: int) -> str | None:
    with store.session() as session:
        return session.scalar(select(Campaign.control).where(Campaign.id == campaign_id))


# -- counts ----


def counts_by_campaign(store: Store) -> dict[int, dict[str, int]]:
    with store.session() as session:
        rows = session.execute(
            select(Message.campaign_id, Message.state, func.count()).group_by(
                Message.campaign_id, Message.state
            )
        ).all()
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, count in rows:
        counts.setdefault(campaign_id, dict.fromkeys(STATES, 0))[state] = count
    return counts


def counts_by_state(store: Store, campaign_id: int) -> dict[str, int]:
    """Messages per state, every state included.

    One count per state, each over its own range of the (campaign, state) index, in one
    statement: SQLite counts a range twice as fast as it groups the campaign's rows by state
    (about 35 ms against 70 ms for a million messages).
    """
    counts = [
        select(func.count())
        .where(Message.campaign_id == campaign_id, Message.state == state)
        .scalar_subquery()
        for state in STATES
    ]
    with store.session() as session:
        row = session.execute(select(*counts)).one()
    return dict(zip(STATES, row, strict=True))


# Undelivered receipts are not here: reports break them down separately, by receipt text.
ERROR_STATES = (INVALID, SUPPRESSED, DEFERRED, FAILED, EXPIRED)


def errors_by_code(store: Store, campaign_id: int) -> list[tuple[int | None, str | None, int]]:
    """(provider code, reason, count) for every message that did not (yet) get through.

    ``reason`` is the import reason code, or else the provider's receipt text / our note; only
    the states that carry an error are read, through the (campaign, state) index.
    """
    reason = func.coalesce(Message.reason, Message.error_text, Message.state)
    with store.session() as session:
        rows = session.execute(
            select(Message.error_code, reason, func.count())
            .where(Message.campaign_id == campaign_id, Message.state.in_(ERROR_STATES))
            .group_by(Message.error_code, reason)
            .order_by(func.count().desc())
        )
        return [(code, text, count) for code, text, count in rows]


def unsent_segments(store: Store, campaign_id: int) -> tuple[int, int]:
    """(messages, SMS segments) still to send: pending, deferred or in flight."""
    with store.session() as session:
        count, segments = session.execute(
            select(func.count(), func.coalesce(func.sum(Message.segments), 0)).where(
                Message.campaign_id == campaign_id,
                Message.state.in_([PENDING, DEFERRED, SENDING]),
            )
        ).one()
    return count, segments


def next_due(store: Store, campaign_id: int) -> tuple[int, datetime | None]:
    """How many messages are deferred, and when the first is due."""
    with store.session() as session:
        count, first = session.execute(
            select(func.count(), func.min(Message.due_at)).where(
                Message.campaign_id == campaign_id, Message.state == DEFERRED
            )
        ).one()
    return count, first


def active_senders(store: Store, campaign_id: int) -> list[str]:
    """The senders holding a live lease on the campaign's messages (shown by ``status``)."""
    with store.session() as session:
        return list(
            session.scalars(
                select(Message.claimed_by)
                .where(
                    Message.campaign_id == campaign_id,
                    Message.state == SENDING,
                    Message.lease_until >= utcnow(),
                )
                .distinct()
            )
        )
