"""Send settings stored with the campaign, and each message's import.

A resumed send (from any host) reads the campaign's settings instead of starting over at the
defaults; a message names the file it came from, since row numbers of several files collide.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("send_settings", sa.Text))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("import_id", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("import_id")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("send_settings")
