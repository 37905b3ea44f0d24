"""Senders share a campaign: per-message leases with a fencing owner, and a shared rate bucket.

Replaces the one-sender-per-campaign lock (campaigns.sender / heartbeat_at).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(120)))
        batch.add_column(sa.Column("lease_until", sa.DateTime))
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("sender")
        batch.drop_column("heartbeat_at")
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("next_slot", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("sender", sa.String(200)))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime))
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
