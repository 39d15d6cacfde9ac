"""Add publications ``notes``, ``resolved_by`` and ``resolved_at``: the ``needs_attention`` state and its resolution.

``notes`` is a publication's durable scratchpad (JSON): what an adapter must remember across a crash to
reconcile without an idempotency key (Instagram's container id before ``media_publish``). The state
``needs_attention`` (a publication nobody can tell went out) needs no schema change; who resolved it,
and when, does.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("publications") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("publications") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("resolved_by")
        batch.drop_column("notes")
