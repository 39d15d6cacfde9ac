"""What the publication ledger stores: its two tables, their states and the key that makes a publication unique.

The claim and outcome logic over these tables is ``bot.ledger.publications.Ledger``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.ledger.db import metadata


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, stored naive so SQLite and PostgreSQL compare alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"ledger times must be timezone-aware, got: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


CLAIMED, RETRYING, PUBLISHED, SKIPPED, FAILED = "claimed", "retrying", "published", "skipped", "failed"
OPEN_STATES = (CLAIMED, RETRYING)
USED_FAILURES = ("rejected", "duplicate", "gave_up_uncertain")
"""Failure reasons that consume a queue post: it would fail the same way again, or may already be live."""

publications = sa.Table(
    "publications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("slot_at", UTCDateTime, nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
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


@dataclass(frozen=True)
class PublicationKey:
    """What makes a publication unique. The post's text is not part of it: editing a post never republishes."""

    campaign: str
    slot_at: datetime
    target: str  # "post:<id>" or "queue:<name>"
    account: str

    def __post_init__(self) -> None:
        if self.slot_at.tzinfo is None:
            raise ValueError(f"slot_at must be timezone-aware, got: {self.slot_at!r}")
        # Sub-second parts would make equal slots differ between databases.
        object.__setattr__(self, "slot_at", self.slot_at.astimezone(UTC).replace(microsecond=0))

    @property
    def slot_iso(self) -> str:
        return self.slot_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def token(self) -> str:
        """``pub1-`` + 32 hex digits of SHA-256 over the four key fields (see bot/publishing.py)."""
        raw = "\x1f".join((self.campaign, self.slot_iso, self.target, self.account))
        return "pub1-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]
