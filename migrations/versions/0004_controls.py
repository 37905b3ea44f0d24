"""Campaign controls: pause/cancel, deferred messages, v2 templates, suppression list, caps,
test sends and the history of retried messageIds.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("control", sa.String(16)))
        batch.add_column(sa.Column("template_id", sa.String(64)))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime))
        batch.add_column(sa.Column("params", sa.Text))
    # Caps count what a number received across campaigns; only sent rows are indexed, so an
    # import (nothing sent yet) pays nothing for it.
    op.create_index(
        "ix_messages_phone_sent",
        "messages",
        ["phone", "sent_at"],
        sqlite_where=sa.text("sent_at IS NOT NULL"),
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )
    op.create_table(
        "suppressions",
        sa.Column("phone", sa.String(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "test_sends",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_text", sa.Text),
        sa.Column("sent_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "message_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "message_pk",
            sa.Integer,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_text", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("final_at", sa.DateTime),
        sa.Column("replaced_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_history")
    op.drop_table("test_sends")
    op.drop_table("suppressions")
    op.drop_index("ix_messages_phone_sent", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("params")
        batch.drop_column("due_at")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("template_id")
        batch.drop_column("control")
