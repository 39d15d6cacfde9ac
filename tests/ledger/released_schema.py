"""The first release's tables (commit 9d65cd3), copied as it declared them: what its ``create_all`` made.

Tests build a ledger "made by the first release" from this, to check that ``open_engine``
recognises and upgrades it. Frozen on purpose: never edit it to follow ``bot.ledger.schema``.
The ledger's UTC type stored plain ``DateTime``, which is what it is here.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

publications = sa.Table(
    "publications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("slot_at", sa.DateTime, nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("post", sa.String(300)),
    sa.Column("schedule", sa.String(200)),
    sa.Column("slot", sa.Integer),
    sa.Column("manual", sa.Boolean, nullable=False, default=False),
    sa.Column("platform", sa.String(50)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("reason", sa.String(100)),
    sa.Column("last_error", sa.Text),
    sa.Column("remote_id", sa.String(300)),
    sa.Column("url", sa.Text),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.UniqueConstraint("campaign", "slot_at", "target", "account", name="uq_publication_key"),
    sa.Index("ix_publications_account_state", "account", "state"),
    sa.Index("ix_publications_state_updated", "state", "updated"),
)

attempts = sa.Table(
    "publication_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("publication_id", sa.Integer, sa.ForeignKey("publications.id"), nullable=False, index=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("ended", sa.DateTime),
    sa.Column("outcome", sa.String(16)),  # NULL: the worker died mid-attempt, so the platform may have the post
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Integer),
    sa.UniqueConstraint("publication_id", "n", name="uq_attempt_n"),
)

cursors = sa.Table(
    "reshare_cursors",
    metadata,
    sa.Column("campaign", sa.String(200), primary_key=True),
    sa.Column("network", sa.String(200), primary_key=True),
    sa.Column("account", sa.String(200), primary_key=True),
    sa.Column("tags", sa.String(1000), primary_key=True),
    sa.Column("cursor", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

decisions = sa.Table(
    "reshare_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # the ID staff type in `bot review`
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
    sa.Column("decision", sa.String(20), nullable=False),  # allow | skip | review
    sa.Column("status", sa.String(20), nullable=False),  # see STATUSES
    sa.Column("reason", sa.String(100), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True)),
    sa.Column("acted_at", sa.DateTime(timezone=True)),  # when reshared (or would have been, in dry-run)
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("reshare_id", sa.String(500)),
    sa.Column("reshare_url", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("mention", sa.Text, nullable=False),  # the post as read, to reshare it later
    sa.UniqueConstraint("campaign", "network", "remote_id", "scope", name="uq_reshare_post"),
    sa.Index("ix_reshare_account_status", "campaign", "account", "status"),
)

leases = sa.Table(
    "tracker_leases",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
