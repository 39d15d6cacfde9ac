"""Drop ``schema_version``: the first release created it and never wrote a row; ``alembic_version`` now says.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_table("schema_version")


def downgrade() -> None:
    op.create_table("schema_version", sa.Column("version", sa.Integer, nullable=False))
