"""The tables: one row per campaign, one row per recipient message with its own state.

Timestamps are naive UTC; reports convert them to Asia/Shanghai.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

INVALID = "invalid"  # rejected at import (reason)
SUPPRESSED = "suppressed"  # on the suppression list: never sent
PENDING = "pending"
DEFERRED = "deferred"  # waits until due_at (daily limit 109, a cap)
SENDING = "sending"  # claimed; committed before its request leaves
SENT = "sent"
FAILED = "failed"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
EXPIRED = "expired"  # sent, never confirmed within the expiry time
CANCELLED = "cancelled"
STATES = (
    INVALID,
    SUPPRESSED,
    PENDING,
    DEFERRED,
    SENDING,
    SENT,
    FAILED,
    DELIVERED,
    UNDELIVERED,
    EXPIRED,
    CANCELLED,
)
FINAL_STATES = (INVALID, SUPPRESSED, FAILED, DELIVERED, UNDELIVERED, EXPIRED, CANCELLED)
PAUSE = "pause"
CANCEL = "cancel"


class Base(DeclarativeBase):
    pass


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    template: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Why the last send stopped early (provider code and advice); cleared when a send resumes.
    stop_code: Mapped[int | None] = mapped_column(Integer)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    # Content warnings found at import (a JSON list of plain-English strings), shown before sending.
    warnings: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    # "pause" or "cancel", set from another terminal; a running send stops within a second.
    control: Mapped[str | None] = mapped_column(String(16))
    # Set for campaigns sent through an approved v2 template (messages then carry params).
    template_id: Mapped[str | None] = mapped_column(String(64))
    # How `send` runs it (JSON of campaigns.send_settings.SendSettings), stored when a send first
    # starts: a resume on any host uses them, and an option given again replaces its value.
    send_settings: Mapped[str | None] = mapped_column(Text)


class Import(Base):
    """One file imported into a campaign: the same bytes imported again add nothing."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))  # of the file's bytes
    source: Mapped[str] = mapped_column(Text)  # the file name
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("campaign_id", "sha256", name="uq_imports_campaign_sha256"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    raw_phone: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fields: Mapped[str] = mapped_column(Text, default="{}")
    queued_at: Mapped[datetime] = mapped_column(DateTime)
    sending_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    final_at: Mapped[datetime | None] = mapped_column(DateTime)
    provider_record: Mapped[str | None] = mapped_column(Text)
    # The sender holding a `sending` message ("pid@host/run") and until when; outcome writes are
    # fenced on claimed_by, so a sender whose lease expired cannot overwrite its successor's.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)  # when a deferred message may go
    params: Mapped[str | None] = mapped_column(Text)  # v2 templateParams (JSON list)
    import_id: Mapped[int | None] = mapped_column(Integer)  # the Import (file) it came from

    __table_args__ = (
        # Claims, status counts and reconcile all filter by campaign and state.  No index on
        # phone: import de-duplicates in memory, and that index made a 1M-row import 2x slower.
        Index("ix_messages_campaign_state", "campaign_id", "state"),
        # Partial: only sent messages (for --cap). Migration 0004 gives PostgreSQL the same
        # WHERE; naming postgresql_where here would load that dialect (~50 ms) in every command.
        Index(
            "ix_messages_phone_sent", "phone", "sent_at", sqlite_where=text("sent_at IS NOT NULL")
        ),
    )


class RateLimit(Base):
    """The account's shared send rate: the time (epoch seconds) of the next free slot."""

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)


class Suppression(Base):
    """A number that opted out (退订) or must never be texted, across all campaigns."""

    __tablename__ = "suppressions"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime)


class TestSend(Base):
    """A test message sent to an operator's phone; the campaign itself is untouched."""

    __tablename__ = "test_sends"
    __test__ = False  # not a pytest test class, despite its name

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_text: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime)


class MessageHistory(Base):
    """An earlier attempt of a message that `retry` gave a new messageId."""

    __tablename__ = "message_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    final_at: Mapped[datetime | None] = mapped_column(DateTime)
    replaced_at: Mapped[datetime] = mapped_column(DateTime)
