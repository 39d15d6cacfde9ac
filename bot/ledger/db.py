"""Engine and schema ownership for the ledger: SQLite by default, PostgreSQL when hosted.

Every ledger module declares its tables on the one ``metadata`` below; ``open_engine``
creates missing tables and applies migrations, so the bot sets up its own schema.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

metadata = sa.MetaData()
SCHEMA_LOCK = 0x626F7401  # PostgreSQL advisory lock key held while the schema is created

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)


def default_url(campaign_root: Path) -> str:
    """``BOT_DATABASE_URL`` when set (``postgres://`` forms accepted), else SQLite in ``state/bot.db``."""
    url = os.environ.get("BOT_DATABASE_URL")
    if url:
        # Hosts hand out postgres:// URLs; SQLAlchemy wants the dialect and our driver spelled out.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
    state = campaign_root / "state"
    state.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{state / 'bot.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `bot status` read while the worker writes; busy_timeout waits out a writer instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# The worker runs up to 256 publications at once on 30 PostgreSQL connections. Waiting for one is
# normal; under CPU load the wait passed SQLAlchemy's default 30 s and failed the publication,
# which then waited for its lease to expire (seen in bench/scaleout.py).
POOL_WAIT = 600.0


PING_AFTER = 30.0
"""Seconds a pooled PostgreSQL connection may sit idle before it is checked when taken again."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection at checkout only when it has idled ``PING_AFTER`` seconds or more.

    A worker idles for hours between slots, and hosts cut idle connections: those must be
    tested before use. SQLAlchemy's ``pool_pre_ping`` tests every checkout, a round trip that
    cost as much as the ledger's own statement during a fan-out (about 0.5 ms a publication).
    """

    def checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"idle connection is gone: {type(exc).__name__}") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def open_engine(url: str) -> Engine:
    """An engine with every table created; importing the ledger modules registers their tables."""
    from bot.ledger import tables  # noqa: F401  (registers every table on `metadata`)

    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_timeout=POOL_WAIT)
        _ping_when_idle(engine)
    with engine.connect() as conn:
        # Two workers starting together (a deploy overlap) must not both create the tables.
        if engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(conn)
        conn.commit()
    return engine
