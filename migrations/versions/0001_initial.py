"""Campaigns and their messages, one row per recipient.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("token", sa.String(32), nullable=False, unique=True),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("stop_code", sa.Integer),
        sa.Column("stop_reason", sa.Text),
        sa.Column("sender", sa.String(200)),
        sa.Column("heartbeat_at", sa.DateTime),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_number", sa.Integer, nullable=False),
        sa.Column("raw_phone", sa.Text, nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.Column("message_id", sa.String(64), unique=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_text", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("sending_at", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("final_at", sa.DateTime),
        sa.Column("provider_record", sa.Text),
    )
    op.create_index("ix_messages_campaign_state", "messages", ["campaign_id", "state"])
    op.create_index("ix_messages_campaign_phone", "messages", ["campaign_id", "phone"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("campaigns")
