"""Every ledger table on the one ``metadata``, the UTC time type and the states rows move through.

The database is brought to this schema by the migrations in ``bot/ledger/migrations`` (run by
``bot.ledger.db.open_engine``); a change here needs a new revision there, and
``tests/ledger/test_migrations.py`` fails until the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored naive so SQLite and PostgreSQL compare alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"ledger times must be timezone-aware, got: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# ---- publications ----

CLAIMED, RETRYING, PUBLISHED, SKIPPED, FAILED = "claimed", "retrying", "published", "skipped", "failed"
NEEDS_ATTENTION = "needs_attention"
"""Nobody can tell whether the post went out (no idempotency key, no read-back): never sent again by the
bot; shown by ``bot status`` until a person resolves it with ``bot attention resolve``."""
STATES = (CLAIMED, RETRYING, PUBLISHED, SKIPPED, FAILED, NEEDS_ATTENTION)
OPEN_STATES = (CLAIMED, RETRYING)
USED_FAILURES = ("rejected", "duplicate", "gave_up_uncertain")
"""Failure reasons that consume a queue post: it would fail the same way again, or may already be live."""

publications = sa.Table(
    "publications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("slot_at", UTCDateTime, nullable=False),
    sa.Column("target", sa.String(300), nullable=False),  # "post:<id>" or "queue:<name>"
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("post", sa.String(300)),
    sa.Column("schedule", sa.String(200)),
    sa.Column("slot", sa.Integer),
    sa.Column("manual", sa.Boolean, nullable=False, default=False),
    sa.Column("platform", sa.String(50)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("reason", sa.String(100)),
    sa.Column("last_error", sa.Text),
    sa.Column("remote_id", sa.String(300)),
    sa.Column("url", sa.Text),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("notes", sa.Text),  # JSON object: the adapter's durable scratchpad (``Outgoing.notes``)
    sa.Column("resolved_by", sa.String(200)),  # who settled a needs_attention publication by hand
    sa.Column("resolved_at", UTCDateTime),
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
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("ended", UTCDateTime),
    sa.Column("outcome", sa.String(16)),  # NULL: the worker died mid-attempt, so the platform may have the post
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Integer),
    sa.UniqueConstraint("publication_id", "n", name="uq_attempt_n"),
)

# ---- hashtag tracking and resharing ----

RESHARE_STATUSES = (
    "pending",
    "resharing",
    "done",
    "skipped",
    "queued",
    "rejected",
    "failed",
    "would_have",
    "withdrawing",  # a reshare to take back: recorded before the platform call, retried until it is gone
    "withdrawn",
)
RESERVED = ("pending", "resharing")
"""Reshare statuses that count against the caps before they happen."""

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
    sa.Column("scope", sa.String(200), nullable=False),  # "*" (one reshare per network) or the account id
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("author_id", sa.String(500), nullable=False),
    sa.Column("author", sa.String(500), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),  # allow | skip | review
    sa.Column("status", sa.String(20), nullable=False),  # see RESHARE_STATUSES
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
    # A reshare taken back: why (edited, deleted, never_from, staff), what the edit showed, and when.
    sa.Column("withdrawn_reason", sa.String(100)),
    sa.Column("withdrawn_detail", sa.Text),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("campaign", "network", "remote_id", "scope", name="uq_reshare_post"),
    sa.Index("ix_reshare_account_status", "campaign", "account", "status"),
)

reviews = sa.Table(
    "reshare_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("reshare_decisions.id"), nullable=False, index=True),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # approved | rejected
    sa.Column("reviewer", sa.String(200), nullable=False),  # BOT_REVIEWER, else the OS user
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("waited_for", sa.String(100), nullable=False),  # the rule that routed it to review
    sa.Column("waited_detail", sa.Text, nullable=False, default=""),
)
"""Staff decisions on reshare candidates (``bot review``): who, when, why; the decision row moves on."""

leases = sa.Table(
    "tracker_leases",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


workers = sa.Table(
    "workers",
    metadata,
    # Which workers are alive: each beats every few seconds; one unseen for long is dead, and its
    # claims and tracker lease are released for the others at once instead of at the lease's end.
    sa.Column("owner", sa.String(300), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),  # wall time, whatever clock the worker runs on
)

rate_budgets = sa.Table(
    "rate_budgets",
    metadata,
    # Rate limits shared by every worker on this ledger (bot.ledger.budgets): per platform and bucket
    # (an account's or an app's), until when the platform said to stop, and a sliding-window count of
    # uses for caps no header announces in time (X's per-app 24-hour cap of POST /2/tweets).
    sa.Column("platform", sa.String(50), primary_key=True),
    sa.Column("bucket", sa.String(300), primary_key=True),
    sa.Column("blocked_until", UTCDateTime, nullable=True),
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_count", sa.Integer, nullable=False, default=0),
    sa.Column("previous_count", sa.Integer, nullable=False, default=0),
)
