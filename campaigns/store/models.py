"""The tables: one row per campaign, one row per recipient message with its own state.

Timestamps are naive UTC; reports convert them to Asia/Shanghai.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

INVALID = "invalid"
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
STATES = (INVALID, PENDING, SENDING, SENT, FAILED, DELIVERED, UNDELIVERED)
FINAL_STATES = (INVALID, FAILED, DELIVERED, UNDELIVERED)


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
    # The one process allowed to send this campaign ("pid@host") and its last sign of life.
    sender: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)


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

    __table_args__ = (
        # Claims, status counts and reconcile all filter by campaign and state.
        Index("ix_messages_campaign_state", "campaign_id", "state"),
        Index("ix_messages_campaign_phone", "campaign_id", "phone"),
    )
