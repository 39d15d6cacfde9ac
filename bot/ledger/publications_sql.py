"""The ledger's hot statements, built once per Ledger with bound parameters.

Why: building ``sa.update(...).where(...).values(...)`` anew for every call, and hashing it into
SQLAlchemy's compiled-statement cache key, cost about 5 ms of CPU per publication, more than the
database itself (measured with cProfile over 500 publications on SQLite). A statement object built
once keeps its memoized cache key, so each execution only binds values. Time parameters carry the
ledger's UTC type explicitly: an untyped bind would hand an aware datetime to the driver as is.
The statements of a publication's claim and outcome go further: compiled once for the engine's
dialect and run on the driver's cursor (``Driver``), a few statements per publication in all
(``bench/ledger_ops.py`` measures them).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as bp
from sqlalchemy.engine import Connection, Dialect, Row


def _upsert_insert(pg: bool) -> Any:
    """The dialect's INSERT with ON CONFLICT; only the dialect in use is imported (the other weighs ~2 MB)."""
    if pg:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class Statements:
    """Prepared Core statements over the ``publications`` and ``publication_attempts`` tables."""

    def __init__(
        self, publications: sa.Table, attempts: sa.Table, open_states: tuple[str, ...], dialect: Dialect, time_type: Any
    ) -> None:
        c, a = publications.c, attempts.c
        pg = dialect.name == "postgresql"
        self._publications, self._open, self._dialect = publications, open_states, dialect
        t = lambda name: bp(name, type_=time_type)
        key = (
            c.campaign == bp("k_campaign"),
            c.slot_at == t("k_slot_at"),
            c.target == bp("k_target"),
            c.account == bp("k_account"),
        )
        self.by_key = sa.select(publications).where(*key)
        insert = _upsert_insert(pg)
        self.insert_claim = insert(publications).on_conflict_do_nothing().returning(*publications.c)
        self.claim_begin = Driver(self._claim_begin(insert, publications, attempts, open_states, pg, t), dialect)
        self.take_over = (
            sa.update(publications)
            .where(*key, is_open(c.state, open_states), c.lease_until <= t("k_now"))
            .values(
                state=bp("v_state"),
                owner=bp("v_owner"),
                lease_until=t("v_until"),
                next_attempt_at=None,
                updated=t("v_updated"),
            )
            .returning(*publications.c)
        )
        one = sa.literal_column("1", sa.Integer)
        self.count_attempt = Driver(
            sa.update(publications)
            .where(c.id == bp("k_id"))
            .values(attempts=c.attempts + one, updated=t("v_updated"))
            .returning(c.attempts),
            dialect,
        )
        self.insert_attempt = Driver(
            sa.insert(attempts)
            .inline()
            .values(
                publication_id=bp("k_id", type_=sa.Integer),
                n=bp("k_n", type_=sa.Integer),
                owner=bp("v_owner", type_=sa.String),
                started=t("v_started"),
            ),
            dialect,
        )
        uncertain = (
            a.publication_id == bp("k_id", type_=sa.Integer),
            sa.or_(a.outcome.is_(None), a.outcome == sa.literal_column("'uncertain'")),
        )
        self.uncertain_attempts = Driver(sa.select(sa.func.count()).where(*uncertain), dialect)
        self.uncertain_before = Driver(
            sa.select(sa.func.count()).where(*uncertain, a.n < bp("k_n", type_=sa.Integer)), dialect
        )
        self.attempt_started = sa.select(a.started).where(a.publication_id == bp("k_id"), a.n == bp("k_n"))
        self._end_attempt = (
            sa.update(attempts)
            .where(a.publication_id == bp("k_id"), a.n == bp("k_n"))
            .values(ended=t("v_ended"), outcome=bp("v_outcome"), error=bp("v_error"), duration_ms=bp("v_duration"))
        )
        self.end_attempt = Driver(self._end_attempt, dialect)
        self._pg = pg
        self._finish: dict[tuple[Any, ...], sa.Executable] = {}

    @staticmethod
    def _claim_begin(
        insert: Any, publications: sa.Table, attempts: sa.Table, open_states: tuple[str, ...], pg: bool, t: Any
    ) -> sa.Executable:
        """Claim a key (a new row, or a take-over of an open row whose lease ran out) counting one more attempt.

        One upsert instead of a look-up, an insert and an update: a fresh row is inserted with
        ``attempts = 1``; a conflicting row is taken over only where ``take_over`` would have,
        and nothing comes back otherwise (finished, or another owner's live lease). The row
        returned is the row as claimed, ``attempts`` being those before this one. On PostgreSQL the
        attempt's own row is inserted by the same statement (one round trip); SQLite, in process,
        inserts it next.
        """
        c = publications.c
        one = sa.literal_column("1", sa.Integer)
        # Each bound value once (``v_now`` is the creation, update and lease-check time): every bound
        # value costs type processing at every execution.
        values = {
            name: bp("i_" + name, type_=c[name].type)
            for name in ("campaign", "slot_at", "target", "account", "post", "schedule", "slot", "manual", "platform")
        }
        values.update(
            state=bp("v_state", type_=sa.String),
            owner=bp("v_owner", type_=sa.String),
            lease_until=t("v_until"),
            attempts=one,
            created=t("v_now"),
            updated=t("v_now"),
        )
        upsert = (
            insert(publications)
            .values(values)
            .on_conflict_do_update(
                index_elements=[c.campaign, c.slot_at, c.target, c.account],
                set_=dict(
                    state=values["state"],
                    owner=values["owner"],
                    lease_until=values["lease_until"],
                    next_attempt_at=sa.null(),
                    updated=values["updated"],
                    attempts=c.attempts + one,
                ),
                where=sa.and_(is_open(c.state, open_states), c.lease_until <= values["updated"]),
            )
            .returning(*[(col - one).label("attempts") if col.name == "attempts" else col for col in publications.c])
        )
        if not pg:
            return upsert
        claimed = upsert.cte("claimed")
        began = (
            sa.insert(attempts)
            .from_select(
                ["publication_id", "n", "owner", "started"],
                sa.select(claimed.c.id, claimed.c.attempts + one, values["owner"], values["updated"]),
            )
            .cte("began")
        )
        return sa.select(claimed).add_cte(began)

    def finish(self, columns: tuple[str, ...], only_open: bool, by_owner: bool, *, attempt: bool = False) -> Driver:
        """UPDATE publications SET <columns> WHERE id = :k_id [AND open] [AND owner = :k_owner].

        ``attempt`` (PostgreSQL only): the same statement ends attempt ``:k_n`` as ``end_attempt``
        does, and returns how many publication rows it updated (one round trip instead of two).
        """
        shape = (columns, only_open, by_owner, attempt)
        stmt = self._finish.get(shape)
        if stmt is None:
            c = self._publications.c
            where = [c.id == bp("k_id")]
            if only_open:
                where.append(is_open(c.state, self._open))
            if by_owner:
                where.append(c.owner == bp("k_owner"))
            table = self._publications
            stmt = (
                table.update()
                .where(*where)
                .values({name: bp(f"v_{name}", type_=table.c[name].type) for name in columns})
            )
            if attempt:
                if not self._pg:
                    raise ValueError("ending the attempt in the same statement needs PostgreSQL")
                finished = stmt.returning(c.id).cte("finished")
                stmt = sa.select(sa.func.count()).select_from(finished).add_cte(self._end_attempt.cte("ended"))
            stmt = Driver(stmt, self._dialect)
            self._finish[shape] = stmt  # a handful of shapes: one per outcome and owner check
        return stmt


class Driver:
    """A Core statement compiled once for one dialect, then run on the driver's cursor.

    Why: ``Connection.execute`` of a statement SQLAlchemy has cached still costs about 45 µs of
    CPU (cache look-up, parameters, result set-up; a RETURNING of this table's 21 columns,
    about 80), the driver's cursor a few µs, and the ledger runs several per publication. Bound
    values and result columns go through their types' processors as SQLAlchemy would, and a row
    comes back as a ``Row``. Runs inside the connection's transaction; errors are the driver's
    own (nothing in the ledger's callers catches SQLAlchemy's wrappers).
    """

    def __init__(self, stmt: sa.Executable, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("a statement rendered again at each execution cannot run as fixed driver SQL")
        self.sql = compiled.string
        self._dialect = dialect
        binds = compiled.binds
        self._order = tuple(compiled.positiontup) if compiled.positional else None
        self._given = tuple(name for name, bind in binds.items() if bind.required)
        self._fixed = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in binds.items()}
        self._convert = tuple((name, proc) for name, proc in processors.items() if proc is not None)
        columns = list(stmt.exported_columns)
        self._row = sa.result_tuple([col.key for col in columns])
        self._results = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns)

    def rowcount(self, conn: Connection, values: dict[str, Any]) -> int:
        """Run it; how many rows it changed."""
        return self._run(conn, values)[0]

    def scalar(self, conn: Connection, values: dict[str, Any]) -> Any:
        """Run it; the first column of its first row (None when no row)."""
        row = self.first(conn, values)
        return None if row is None else row[0]

    def first(self, conn: Connection, values: dict[str, Any]) -> Row | None:
        """Run it; its first row, or None."""
        raw = self._run(conn, values)[1]
        if raw is None:
            return None
        return self._row([value if proc is None else proc(value) for value, proc in zip(raw, self._results)])

    def _run(self, conn: Connection, values: dict[str, Any]) -> tuple[int, Any]:
        params = {name: values[name] for name in self._given}
        params.update(self._fixed)
        for name, proc in self._convert:
            params[name] = proc(params[name])
        dbapi = conn.connection.dbapi_connection
        cursor = dbapi.cursor()
        try:
            cursor.execute(self.sql, params if self._order is None else tuple(params[n] for n in self._order))
            raw = cursor.fetchone() if cursor.description is not None else None
            while raw is not None and cursor.fetchone() is not None:  # a statement runs to its end
                pass
            return cursor.rowcount, raw
        except Exception as exc:
            # As Connection.execute would: a connection the server dropped never goes back to the pool.
            if self._dialect.is_disconnect(exc, dbapi, cursor):
                _close_quietly(cursor)
                conn.invalidate(exc)
            raise
        finally:
            _close_quietly(cursor)


def _close_quietly(cursor: Any) -> None:
    try:
        cursor.close()
    except Exception:  # noqa: BLE001  (its connection is gone: nothing left to release)
        pass


def is_open(state: Any, open_states: tuple[str, ...]) -> Any:
    """``state IN ('claimed', 'retrying')`` with the states written in the SQL.

    Why: an IN over bound values is an "expanding" parameter that SQLAlchemy renders again at
    every execution (about 0.1 ms per statement on SQLite).
    """
    return state.in_([sa.literal_column(f"'{name}'") for name in open_states])


def key_params(key: Any) -> dict[str, Any]:
    """Bound values of a PublicationKey for ``Statements.by_key`` and ``take_over``."""
    return {"k_campaign": key.campaign, "k_slot_at": key.slot_at, "k_target": key.target, "k_account": key.account}
