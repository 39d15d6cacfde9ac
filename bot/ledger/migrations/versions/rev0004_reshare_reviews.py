"""Add ``reshare_reviews`` (issue 15.5): who approved or rejected a reshare candidate, when, why, and the rule it waited for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "reshare_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer, sa.ForeignKey("reshare_decisions.id"), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("waited_for", sa.String(100), nullable=False),
        sa.Column("waited_detail", sa.Text, nullable=False),
    )
    op.create_index("ix_reshare_reviews_decision_id", "reshare_reviews", ["decision_id"])


def downgrade() -> None:
    op.drop_index("ix_reshare_reviews_decision_id", table_name="reshare_reviews")
    op.drop_table("reshare_reviews")
