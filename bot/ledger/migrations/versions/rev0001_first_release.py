"""The first released schema: what ``metadata.create_all`` made at commit 9d65cd3, before alembic.

A ledger that release created has these tables and no ``alembic_version``: ``open_engine``
stamps it with this revision instead of running it. Types are written out (the ledger's UTC
type stores naive ``DateTime``) so that later changes to ``bot.ledger.schema`` leave this as it was.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("slot_at", sa.DateTime(), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("post", sa.String(300)),
        sa.Column("schedule", sa.String(200)),
        sa.Column("slot", sa.Integer),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("platform", sa.String(50)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime()),
        sa.Column("reason", sa.String(100)),
        sa.Column("last_error", sa.Text),
        sa.Column("remote_id", sa.String(300)),
        sa.Column("url", sa.Text),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("campaign", "slot_at", "target", "account", name="uq_publication_key"),
    )
    op.create_index("ix_publications_account_state", "publications", ["account", "state"])
    op.create_index("ix_publications_state_updated", "publications", ["state", "updated"])
    op.create_table(
        "publication_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("publication_id", sa.Integer, sa.ForeignKey("publications.id"), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("ended", sa.DateTime()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer),
        sa.UniqueConstraint("publication_id", "n", name="uq_attempt_n"),
    )
    op.create_index("ix_publication_attempts_publication_id", "publication_attempts", ["publication_id"])
    op.create_table(
        "reshare_cursors",
        sa.Column("campaign", sa.String(200), primary_key=True),
        sa.Column("network", sa.String(200), primary_key=True),
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("tags", sa.String(1000), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "reshare_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("network", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("remote_id", sa.String(500), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("author_id", sa.String(500), nullable=False),
        sa.Column("author", sa.String(500), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True)),
        sa.Column("acted_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reshare_id", sa.String(500)),
        sa.Column("reshare_url", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("mention", sa.Text, nullable=False),
        sa.UniqueConstraint("campaign", "network", "remote_id", "scope", name="uq_reshare_post"),
    )
    op.create_index("ix_reshare_account_status", "reshare_decisions", ["campaign", "account", "status"])
    op.create_table(
        "tracker_leases",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "tracker_leases",
        "reshare_decisions",
        "reshare_cursors",
        "publication_attempts",
        "publications",
        "schema_version",
    ):
        op.drop_table(table)
