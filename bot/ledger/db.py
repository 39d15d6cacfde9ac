"""The ledger's engine: its URL, its pool, and its schema brought to the newest migration when opened.

SQLite by default, PostgreSQL when hosted. The tables are declared in ``bot.ledger.schema``;
the migrations that build and change them are alembic's, in ``bot/ledger/migrations``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from bot.ledger import migrations
from bot.observability.redaction import redact

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_LOCK = 0x626F7401  # PostgreSQL advisory lock key held while the schema is migrated
MIGRATIONS = Path(migrations.__file__).parent


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


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
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

    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"idle connection is gone: {type(exc).__name__}") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def open_engine(url: str, *, migrate_in_child: bool = False) -> Engine:
    """An engine on ``url`` whose ledger schema is at the newest migration (created when the database is empty).

    ``migrate_in_child``: a ledger that needs migrating is migrated by a short-lived child process
    (``python -m bot.ledger.db``), so a long-running worker never imports alembic (see ``current_revision``).
    """
    if migrate_in_child:
        _migrate_in_child(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_timeout=POOL_WAIT)
        _ping_when_idle(engine)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def migrate(engine: Engine) -> None:
    """Bring the ledger to alembic's head, under a lock, so two workers starting together migrate it once.

    A ledger the first release made (its tables, no ``alembic_version``) is stamped with the
    revision that describes it, then upgraded; an empty database gets every revision in turn.
    """
    with engine.connect() as conn:
        # The second worker waits here; once the first commits, it finds the ledger at head.
        if engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        if current_revision(conn) != migrations.HEAD:
            _upgrade(conn)
        conn.commit()


def _migrate_in_child(url: str) -> None:
    probe = sa.create_engine(url)
    try:
        with probe.connect() as conn:
            if current_revision(conn) == migrations.HEAD:
                return
    finally:
        probe.dispose()
    # The URL travels in the environment, not the command line, where `ps` would show its password.
    done = subprocess.run(
        [sys.executable, "-m", "bot.ledger.db"],
        env={**os.environ, _CHILD_URL: url},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"migrating the ledger failed: {redact(last)}")


_CHILD_URL = "BOT_LEDGER_MIGRATE_URL"


def current_revision(conn: Connection) -> str | None:
    """The revision alembic recorded in ``alembic_version``; None when it has recorded none.

    Read here rather than with alembic's ``MigrationContext``: importing alembic loads every SQL
    dialect it supports and mako (about 12 MB of RSS and 0.5 s measured), which a worker opening
    a ledger already at head need not pay. Only a ledger that needs migrating imports it.
    """
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    version: str | None = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return version


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration for the ledger's migrations, run on ``connection`` (or on ``url``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(conn: Connection) -> None:
    from alembic import command

    config = alembic_config(conn)
    inspector = sa.inspect(conn)
    if not inspector.has_table("alembic_version") and inspector.has_table("publications"):
        # Made by the first release, which created its tables with create_all and had no alembic.
        command.stamp(config, migrations.FIRST_RELEASE)
    command.upgrade(config, "head")


if __name__ == "__main__":
    open_engine(os.environ[_CHILD_URL]).dispose()
