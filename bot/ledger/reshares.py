"""What hashtag tracking has read and decided: cursors, one decision per post, the review queue, a lease.

A decision row is claimed by its unique key (campaign, network, remote id, scope), so a
post is decided, and reshared, at most once even across restarts and overlapping workers.
``scope`` is ``*`` (one reshare per network) or the account id when ``across_accounts`` is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from bot.core.values import Mention
from bot.ledger.schema import RESERVED, cursors, decisions, leases, reviews
from bot.observability.redaction import redact


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_TIMES = ("created_at", "author_created_at")


def mention_to_json(mention: Mention) -> str:
    data = asdict(mention)
    for name in _TIMES:
        moment = getattr(mention, name)
        data[name] = moment.isoformat() if moment else None
    data["ref"] = dict(mention.ref)
    return json.dumps(data, ensure_ascii=False)


def mention_from_json(text: str) -> Mention:
    data = json.loads(text)
    for name in _TIMES:
        if data.get(name):
            data[name] = datetime.fromisoformat(data[name])
    return Mention(**data)


@dataclass(frozen=True)
class NewDecision:
    """One decision about to be recorded."""

    network: str
    platform: str
    scope: str
    account: str
    mention: Mention
    decision: str
    status: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AuthorRecord:
    last: datetime | None  # this account's latest row for the author
    day: int  # this account's rows for the author in the last 24 hours
    reshared_before: bool  # by any account of the campaign, on this network


@dataclass(frozen=True)
class Review:
    """A staff decision on a candidate that waited for review."""

    decision_id: int
    action: str  # approved | rejected
    reviewer: str
    note: str = ""


class ReshareLedger:
    """The reshare tables of one campaign."""

    def __init__(self, engine: Engine, campaign: str) -> None:
        self.engine = engine
        self.campaign = campaign

    # ---- cursors and decisions, recorded together ----

    def cursor(self, network: str, account: str, tags: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(cursors.c.cursor).where(
                    cursors.c.campaign == self.campaign,
                    cursors.c.network == network,
                    cursors.c.account == account,
                    cursors.c.tags == tags,
                )
            ).scalar_one_or_none()

    def decided(self, network: str, remote_ids: Iterable[str], scopes: Sequence[str]) -> set[tuple[str, str]]:
        """(remote_id, scope) pairs already decided among these."""
        ids = list(remote_ids)
        if not ids:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.remote_id, decisions.c.scope).where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.network == network,
                    decisions.c.remote_id.in_(ids),
                    decisions.c.scope.in_(list(scopes)),
                )
            )
            return {(r.remote_id, r.scope) for r in rows}

    def record(
        self,
        now: datetime,
        items: Sequence[NewDecision],
        cursor_key: tuple[str, str, str] | None = None,
        cursor: str | None = None,
    ) -> list[int | None]:
        """Insert decisions (a post already decided is left as it was: None) and move the cursor, atomically."""
        ids: list[int | None] = []
        with self.engine.begin() as conn:
            for item in items:
                ids.append(self._insert(conn, now, item))
            if cursor_key is not None:
                self._store_cursor(conn, now, cursor_key, cursor)
        return ids

    def _insert(self, conn: Connection, now: datetime, item: NewDecision) -> int | None:
        m = item.mention
        values = dict(
            campaign=self.campaign,
            network=item.network,
            platform=item.platform,
            remote_id=m.remote_id,
            scope=item.scope,
            account=item.account,
            author_id=m.author_id,
            author=m.author_handle,
            url=m.url,
            text=m.text[:2000],
            decision=item.decision,
            status=item.status,
            reason=item.reason,
            detail=item.detail,
            decided_at=now,
            attempts=0,
            mention=mention_to_json(m),
            acted_at=now if item.status == "would_have" else None,
        )
        inserted = conn.execute(_insert_ignoring_conflict(conn, values).returning(decisions.c.id)).scalar_one_or_none()
        return None if inserted is None else int(inserted)

    def _store_cursor(self, conn: Connection, now: datetime, key: tuple[str, str, str], value: str | None) -> None:
        network, account, tags = key
        where = (
            cursors.c.campaign == self.campaign,
            cursors.c.network == network,
            cursors.c.account == account,
            cursors.c.tags == tags,
        )
        updated = conn.execute(sa.update(cursors).where(*where).values(cursor=value, updated_at=now))
        if updated.rowcount == 0:
            conn.execute(
                sa.insert(cursors).values(
                    campaign=self.campaign, network=network, account=account, tags=tags, cursor=value, updated_at=now
                )
            )

    # ---- counts for the caps ----

    def counts(
        self, account: str, now: datetime, acted: Sequence[str], reserved: bool = True
    ) -> tuple[int, int, datetime | None]:
        """(last hour, last 24 hours, last reshare time) for ``account``.

        With ``reserved``, reshares scheduled but not yet made count too, as if made now.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.status, decisions.c.acted_at).where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.account == account,
                    sa.or_(
                        decisions.c.status.in_(RESERVED if reserved else ()),
                        sa.and_(decisions.c.status.in_(list(acted)), decisions.c.acted_at > now - timedelta(days=1)),
                    ),
                )
            ).all()
        hour = day = 0
        last: datetime | None = None
        for row in rows:
            when = _utc(row.acted_at) if row.status not in RESERVED else now
            day += 1
            hour += when > now - timedelta(hours=1)
            if row.status not in RESERVED and (last is None or when > last):
                last = when
        return hour, day, last

    def author_last(self, account: str, author_id: str, statuses: Sequence[str]) -> datetime | None:
        """When this author last had a row in one of ``statuses`` for ``account`` (reshared, scheduled, queued)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.status, decisions.c.acted_at, decisions.c.decided_at).where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.account == account,
                    decisions.c.author_id == author_id,
                    decisions.c.status.in_(list(statuses)),
                )
            ).all()
        times = [_utc(r.acted_at) or _utc(r.decided_at) for r in rows]
        return max(times) if times else None

    def author_record(
        self, network: str, account: str, author_id: str, now: datetime, counted: Sequence[str], reshared: Sequence[str]
    ) -> AuthorRecord:
        """What the per-author rules need: this account's last and 24-hour count of ``counted`` rows for the
        author, and whether any account of the campaign has a ``reshared`` row for them on ``network``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.account, decisions.c.status, decisions.c.acted_at, decisions.c.decided_at).where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.network == network,
                    decisions.c.author_id == author_id,
                    decisions.c.status.in_(list({*counted, *reshared})),
                )
            ).all()
        mine = [_utc(r.acted_at) or _utc(r.decided_at) for r in rows if r.account == account and r.status in counted]
        return AuthorRecord(
            last=max(mine) if mine else None,
            day=sum(1 for t in mine if t > now - timedelta(days=1)),
            reshared_before=any(r.status in reshared for r in rows),
        )

    # ---- the reshare queue ----

    def pending(self, account: str) -> Sequence[Row[Any]]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(decisions)
                .where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.account == account,
                    decisions.c.status == "pending",
                )
                .order_by(decisions.c.decided_at, decisions.c.id)
            ).all()

    def transition(self, row_id: int, frm: Sequence[str], **values: Any) -> bool:
        """Move a row out of one of the ``frm`` statuses; False when someone else moved it first."""
        if values.get("error"):
            values["error"] = redact(values["error"])  # a server may quote a token in its error
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(decisions).where(decisions.c.id == row_id, decisions.c.status.in_(list(frm))).values(**values)
            )
            return result.rowcount == 1

    def standing(
        self, *, network: str | None = None, remote_id: str | None = None, url: str | None = None
    ) -> Sequence[Row[Any]]:
        """Reshares standing (done) or still to take back (withdrawing), by post id or by URL of the post or reshare."""
        query = sa.select(decisions).where(
            decisions.c.campaign == self.campaign, decisions.c.status.in_(["done", "withdrawing"])
        )
        if network is not None:
            query = query.where(decisions.c.network == network)
        if remote_id is not None:
            query = query.where(decisions.c.remote_id == remote_id)
        if url is not None:
            query = query.where(
                sa.or_(decisions.c.url == url, decisions.c.reshare_url == url, decisions.c.remote_id == url)
            )
        with self.engine.connect() as conn:
            return conn.execute(query.order_by(decisions.c.id)).all()

    def waiting(self, network: str, remote_id: str) -> Sequence[Row[Any]]:
        """Rows of this post not yet reshared (scheduled or waiting for review)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(decisions).where(
                    decisions.c.campaign == self.campaign,
                    decisions.c.network == network,
                    decisions.c.remote_id == remote_id,
                    decisions.c.status.in_(["pending", "queued"]),
                )
            ).all()

    def review(self, review: Review, now: datetime, **values: Any) -> bool:
        """Move a queued row as staff decided and record who, when, why and the rule it waited for, atomically.

        False when the row was not waiting (decided already, or never queued).
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(decisions.c.campaign, decisions.c.reason, decisions.c.detail).where(
                    decisions.c.id == review.decision_id, decisions.c.status == "queued"
                )
            ).first()
            if row is None:
                return False
            moved = conn.execute(
                sa.update(decisions)
                .where(decisions.c.id == review.decision_id, decisions.c.status == "queued")
                .values(**values)
            ).rowcount
            if moved != 1:
                return False
            conn.execute(
                sa.insert(reviews).values(
                    decision_id=review.decision_id,
                    campaign=row.campaign,
                    action=review.action,
                    reviewer=review.reviewer[:200],
                    decided_at=now,
                    note=review.note,
                    waited_for=row.reason,
                    waited_detail=row.detail or "",
                )
            )
            return True

    def reviews(self, *, limit: int | None = None, every_campaign: bool = False) -> Sequence[Row[Any]]:
        """Staff review decisions, newest first, with the decision row's platform, account, author and url."""
        query = sa.select(
            reviews,
            decisions.c.platform,
            decisions.c.account,
            decisions.c.author,
            decisions.c.url,
            decisions.c.status,
        ).join(decisions, decisions.c.id == reviews.c.decision_id)
        if not every_campaign:
            query = query.where(reviews.c.campaign == self.campaign)
        query = query.order_by(reviews.c.decided_at.desc(), reviews.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def stuck(self) -> Sequence[Row[Any]]:
        """Reshares started but never recorded (the worker died mid-call)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(decisions).where(decisions.c.campaign == self.campaign, decisions.c.status == "resharing")
            ).all()

    def rows(
        self, *, status: Sequence[str] | None = None, ids: Sequence[int] | None = None, every_campaign: bool = False
    ) -> Sequence[Row[Any]]:
        """Decision rows by status or id (``every_campaign`` when the campaign files cannot be read)."""
        query = sa.select(decisions)
        if not every_campaign:
            query = query.where(decisions.c.campaign == self.campaign)
        if status is not None:
            query = query.where(decisions.c.status.in_(list(status)))
        if ids is not None:
            query = query.where(decisions.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return conn.execute(query.order_by(decisions.c.id)).all()

    def summary(self, limit: int, *, every_campaign: bool = False) -> dict[str, Any]:
        """What ``bot status`` shows of resharing: counts by status, by status and reason, and by account,
        the latest reshares done, the posts waiting for review and the failures."""
        scope = [] if every_campaign else [decisions.c.campaign == self.campaign]
        # A withdrawn reshare is counted by why it was withdrawn (edited, deleted, never_from, staff).
        reason = sa.case(
            (decisions.c.status.in_(["withdrawn", "withdrawing"]), sa.func.coalesce(decisions.c.withdrawn_reason, "")),
            else_=decisions.c.reason,
        )
        grouped = (
            sa.select(decisions.c.account, decisions.c.status, reason, sa.func.count())
            .where(*scope)
            .group_by(decisions.c.account, decisions.c.status, reason)
        )

        def latest(*statuses: str) -> sa.Select[Any]:
            return (
                sa.select(decisions)
                .where(*scope, decisions.c.status.in_(statuses))
                .order_by(sa.func.coalesce(decisions.c.acted_at, decisions.c.decided_at).desc(), decisions.c.id.desc())
                .limit(limit)
            )

        counts: dict[str, int] = {}
        reasons: dict[str, int] = {}
        by_account: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for account, status, reason, n in conn.execute(grouped):
                counts[status] = counts.get(status, 0) + n
                reasons[f"{status}:{reason}"] = reasons.get(f"{status}:{reason}", 0) + n
                mine = by_account.setdefault(account, {})
                mine[status] = mine.get(status, 0) + n
            done = conn.execute(latest("done", "would_have")).all()
            review = conn.execute(latest("queued")).all()
            failed = conn.execute(latest("failed")).all()
            withdrawn = conn.execute(latest("withdrawn", "withdrawing")).all()
        return {
            "counts": counts,
            "reasons": dict(sorted(reasons.items())),
            "by_account": dict(sorted(by_account.items())),
            "done": done,
            "waiting_review": review,
            "failed": failed,
            "reviewed": [
                {
                    "id": r.decision_id,
                    "action": r.action,
                    "reviewer": r.reviewer,
                    "at": _utc(r.decided_at).isoformat(),
                    "note": r.note or None,
                    "waited_for": r.waited_for,
                    "status": r.status,
                    "account": r.account,
                    "author": r.author,
                    "url": r.url,
                }
                for r in self.reviews(limit=limit, every_campaign=every_campaign)
            ],
            "withdrawn": withdrawn,
        }

    # ---- the tracker lease ----

    def acquire_lease(self, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the campaign's tracker lease; False while another live worker holds it."""
        name = f"tracker:{self.campaign}"
        expires = now + ttl
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, sa.or_(leases.c.owner == owner, leases.c.expires_at < now))
                .values(owner=owner, expires_at=expires)
            ).rowcount
            if taken:
                return True
            stmt = _insert_lease_ignoring_conflict(conn, dict(name=name, owner=owner, expires_at=expires))
            return conn.execute(stmt.returning(leases.c.name)).scalar_one_or_none() is not None

    def release_lease(self, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.name == f"tracker:{self.campaign}", leases.c.owner == owner))


def _dialect_insert(conn: Connection, table: sa.Table) -> sa.Insert:
    """The dialect's INSERT, which has ON CONFLICT; only the dialect in use is imported."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _insert_ignoring_conflict(conn: Connection, values: dict[str, Any]) -> sa.Insert:
    insert: Any = _dialect_insert(conn, decisions)  # both dialects' Insert have on_conflict_do_nothing
    done: sa.Insert = insert.values(**values).on_conflict_do_nothing(
        index_elements=["campaign", "network", "remote_id", "scope"]
    )
    return done


def _insert_lease_ignoring_conflict(conn: Connection, values: dict[str, Any]) -> sa.Insert:
    insert: Any = _dialect_insert(conn, leases)
    done: sa.Insert = insert.values(**values).on_conflict_do_nothing(index_elements=["name"])
    return done
