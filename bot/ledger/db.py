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


class LedgerUnavailable(RuntimeError):
    """The ledger cannot be used (corrupt, unreadable, deleted or replaced): the message names it and what to do."""


class LedgerFull(RuntimeError):
    """A ledger write failed for lack of space (SQLite's "database or disk is full", PostgreSQL's disk_full)."""


SQLITE_FULL = 13  # sqlite3.SQLITE_FULL (sqlite3's constants are only exported from Python 3.11's C module)
PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether a SQLAlchemy error is the database's "no space left" (SQLite, PostgreSQL)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL or getattr(orig, "sqlstate", None) == PG_DISK_FULL


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file of a SQLite ledger URL (None for PostgreSQL or an in-memory database)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def lost_marker(path: Path) -> Path:
    """The file a worker leaves beside a SQLite ledger it saw deleted or replaced: no new ledger is made silently."""
    return path.with_name(path.name + ".lost")


class FileGuard:
    """The SQLite file a ledger was opened on, to notice it deleted or replaced under a running worker.

    SQLite keeps writing to a file unlinked under it, and a new file at the path is a new, empty
    ledger: either way publications would no longer be recorded where the next start looks.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        st = os.stat(path)
        self.identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """What happened to the file, or None while it is the one opened (one stat: about 1 microsecond)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "was deleted"
        except OSError as exc:
            return f"cannot be checked ({exc.strerror})"
        if (st.st_dev, st.st_ino) != self.identity:
            return "was replaced by another file"
        return None

    def check(self) -> None:
        """Raise ``LedgerUnavailable`` once the file is not the one opened."""
        problem = self.problem()
        if problem is not None:
            raise LedgerUnavailable(lost_message(self.path, problem))


def lost_message(path: Path, problem: str) -> str:
    return (
        f"{path}: the ledger {problem} while the worker ran; publishing stopped so that nothing goes out twice. "
        f"Restore the file from a backup, then delete {lost_marker(path).name} and start the worker again"
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


MIGRATION_WAIT = 120.0
"""Seconds an opener waits for another process migrating the same SQLite ledger before it gives up."""

POOL_SIZE = 30
"""PostgreSQL connections a worker keeps open (``BOT_LEDGER_CONNECTIONS`` overrides): the ledger's
statements are short, so 30 serve a 256-thread fan-out; N workers hold N times as many, which a
managed PostgreSQL plan must allow (its connection limit is in the README's hosting section)."""


def pool_size() -> int:
    """``POOL_SIZE``, or the positive whole number in ``BOT_LEDGER_CONNECTIONS``."""
    raw = os.environ.get("BOT_LEDGER_CONNECTIONS", "").strip()
    if not raw:
        return POOL_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise LedgerUnavailable(f"BOT_LEDGER_CONNECTIONS={raw!r}: expected a positive whole number of connections")
    return int(raw)


def open_connections(engine: Engine, wanted: int) -> int:
    """Open up to ``wanted`` of a PostgreSQL engine's pooled connections now (SQLite: none); how many opened.

    A fan-out's first publications would otherwise each wait for a new connection (a server process,
    its authentication) at the slot; the pool keeps them (``_ping_when_idle`` checks them after idling).
    """
    if engine.dialect.name != "postgresql":
        return 0
    held: list[Connection] = []
    try:
        for _ in range(min(wanted, engine.pool.size())):  # type: ignore[attr-defined]  # QueuePool's public size()
            held.append(engine.connect())
    except sa.exc.SQLAlchemyError:
        pass  # the server refuses more (its connection limit): those opened are kept, the rest open on use
    finally:
        for conn in held:
            conn.close()
    return len(held)


def side_engine(engine: Engine, size: int) -> Engine:
    """A few PostgreSQL connections of their own (``size``, as many again when busy) beside ``engine``'s pool, for a
    thread that must not queue behind the publishing threads for the ledger's; ``engine`` itself on SQLite.

    Dispose of it with ``engine.dispose()`` only when it ``is not`` the ledger's engine.
    """
    if engine.dialect.name != "postgresql":
        return engine
    return sa.create_engine(engine.url, pool_size=size, max_overflow=size, pool_pre_ping=True)


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
    file = sqlite_file(url)
    if file is not None:
        marker = lost_marker(file)
        if marker.exists():
            raise LedgerUnavailable(
                f"{file}: a worker saw this ledger deleted or replaced ({_first_line(marker)}); "
                f"a new or restored ledger is not used silently. Restore the file from a backup, "
                f"then delete {marker} to use it (publications it does not hold may go out again)"
            )
    try:
        return _open_engine(url, migrate_in_child)
    except sa.exc.DBAPIError as exc:
        raise LedgerUnavailable(_unreadable(url, file, exc)) from None


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0][:200]
    except (OSError, IndexError):
        return "no details"


def _unreadable(url: str, file: Path | None, exc: sa.exc.DBAPIError) -> str:
    """One readable message naming the ledger and what to do, instead of a driver's traceback."""
    detail = redact(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__)
    if file is None:
        where = sa.make_url(url).render_as_string(hide_password=True)
        return (
            f"{where}: the ledger cannot be used ({detail}); check that the database server runs and the URL is right"
        )
    if is_disk_full(exc):
        remedy = "free space on its disk, then start again"
    elif "unable to open" in detail:
        remedy = "check that its folder exists and the worker's user may read and write it"
    else:
        remedy = (
            f"it is damaged or not a ledger: move it aside and restore {file.name} from a backup "
            "(starting without one makes a new, empty ledger, and publications it held may go out again)"
        )
    return f"{file}: the ledger cannot be read ({detail}); {remedy}"


def _open_engine(url: str, migrate_in_child: bool) -> Engine:
    if migrate_in_child:
        _migrate_in_child(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # A fixed pool, no overflow: an overflow connection is closed at its checkin, and a fan-out then
        # opened and closed PostgreSQL connections (a server process each) for every few publications.
        engine = sa.create_engine(url, pool_size=pool_size(), max_overflow=0, pool_timeout=POOL_WAIT)
        _ping_when_idle(engine)
    deadline = time.monotonic() + MIGRATION_WAIT
    try:
        while True:
            try:
                migrate(engine)
                break
            except sa.exc.OperationalError as exc:
                # Another process holds the schema lock while it migrates (alembic's import and seven revisions
                # took over SQLite's 10 s busy wait on a loaded machine): wait for it, it is not damage.
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
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
