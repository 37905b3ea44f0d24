"""The controls run from any terminal: cancel, the suppression list, retry, test sends."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update

from campaigns import ids
from campaigns.store.campaign_queries import rows_changed, utcnow
from campaigns.store.db import Store
from campaigns.store.models import (
    CANCELLED,
    DEFERRED,
    PENDING,
    SENT,
    SUPPRESSED,
    Message,
    MessageHistory,
    Suppression,
    TestSend,
)

# What a retried message forgets: the old attempt's answers now live in its history row.
_RETRY_CLEARS = (
    "error_code",
    "error_text",
    "sent_at",
    "final_at",
    "provider_record",
    "due_at",
    "claimed_by",
    "lease_until",
)


def cancel_unsent(store: Store, campaign_id: int) -> int:
    """Pending and deferred messages of a cancelled campaign are never sent."""
    with store.session.begin() as session:
        return rows_changed(
            session.execute(
                update(Message)
                .where(Message.campaign_id == campaign_id, Message.state.in_([PENDING, DEFERRED]))
                .values(state=CANCELLED, due_at=None)
            )
        )


def add_suppressions(store: Store, phones: Sequence[str], reason: str) -> int:
    now = utcnow()
    with store.session.begin() as session:
        known = set(
            session.scalars(select(Suppression.phone).where(Suppression.phone.in_(list(phones))))
        )
        fresh = [phone for phone in phones if phone not in known]
        session.add_all(Suppression(phone=p, reason=reason, added_at=now) for p in fresh)
        # Not yet sent in any campaign: never will be.
        session.execute(
            update(Message)
            .where(Message.phone.in_(fresh), Message.state.in_([PENDING, DEFERRED]))
            .values(state=SUPPRESSED, error_text="on the suppression list", due_at=None)
        )
    return len(fresh)


def remove_suppressions(store: Store, phones: Sequence[str]) -> int:
    with store.session.begin() as session:
        return rows_changed(
            session.execute(delete(Suppression).where(Suppression.phone.in_(list(phones))))
        )


def list_suppressions(store: Store) -> list[Suppression]:
    with store.session() as session:
        return list(session.scalars(select(Suppression).order_by(Suppression.added_at)))


def retry_messages(store: Store, campaign_id: int, states: list[str], codes: list[int]) -> int:
    """Back to pending under their next retry messageIds; the old attempt goes to history."""
    now = utcnow()
    query = select(Message).where(Message.campaign_id == campaign_id, Message.state.in_(states))
    if codes:
        query = query.where(Message.error_code.in_(codes))
    with store.session.begin() as session:
        messages = list(session.scalars(query))
        earlier = dict(
            session.execute(
                select(MessageHistory.message_pk, func.count())
                .where(MessageHistory.message_pk.in_([m.id for m in messages]))
                .group_by(MessageHistory.message_pk)
            ).all()
        )
        for message in messages:
            assert message.message_id is not None  # only sent messages can be retried
            session.add(
                MessageHistory(
                    message_pk=message.id,
                    message_id=message.message_id,
                    state=message.state,
                    error_code=message.error_code,
                    error_text=message.error_text,
                    attempts=message.attempts,
                    sent_at=message.sent_at,
                    final_at=message.final_at,
                    replaced_at=now,
                )
            )
            message.message_id = ids.retry_id(message.message_id, earlier.get(message.id, 0) + 1)
            message.state = PENDING
            for column in _RETRY_CLEARS:
                setattr(message, column, None)
    return len(messages)


def first_message(store: Store, campaign_id: int) -> tuple[str, str | None] | None:
    """(content, params) of the campaign's first valid message, for test sends."""
    with store.session() as session:
        row = session.execute(
            select(Message.content, Message.params)
            .where(Message.campaign_id == campaign_id, Message.message_id.is_not(None))
            .order_by(Message.id)
            .limit(1)
        ).first()
    return (row[0], row[1]) if row else None


def count_test_sends(store: Store, campaign_id: int) -> int:
    """How many test messages the campaign has sent (its next test id is numbered after them)."""
    with store.session() as session:
        return session.scalar(select(func.count()).where(TestSend.campaign_id == campaign_id)) or 0


def record_test_send(
    store: Store,
    campaign_id: int,
    phone: str,
    message_id: str,
    content: str,
    state: str,
    detail: str,
) -> None:
    with store.session.begin() as session:
        session.add(
            TestSend(
                campaign_id=campaign_id,
                phone=phone,
                message_id=message_id,
                content=content,
                state=state,
                error_text=None if state == SENT else detail,
                sent_at=utcnow(),
            )
        )
