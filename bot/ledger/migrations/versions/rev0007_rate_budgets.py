"""Add ``rate_budgets`` (issue 19.2): rate limits shared by the workers of one ledger.

Per (platform, bucket): until when any worker was told to stop (a 429 or a header's remaining 0),
and a sliding-window count of uses for app-wide caps, so N workers together stay within them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("platform", sa.String(50), primary_key=True),
        sa.Column("bucket", sa.String(300), primary_key=True),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.Column("window_start", sa.DateTime(), nullable=True),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("previous_count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
