"""Reshares can be withdrawn (issue 15.3): why, with what detail, and when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("reshare_decisions") as batch:
        batch.add_column(sa.Column("withdrawn_reason", sa.String(100)))
        batch.add_column(sa.Column("withdrawn_detail", sa.Text))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("reshare_decisions") as batch:
        batch.drop_column("withdrawn_at")
        batch.drop_column("withdrawn_detail")
        batch.drop_column("withdrawn_reason")
