"""The ledger's hot statements, built once per Ledger with bound parameters.

Why: building ``sa.update(...).where(...).values(...)`` anew for every call, and hashing it into
SQLAlchemy's compiled-statement cache key, cost about 5 ms of CPU per publication, more than the
database itself (measured with cProfile over 500 publications on SQLite). A statement object built
once keeps its memoized cache key, so each execution only binds values. Time parameters carry the
ledger's UTC type explicitly: an untyped bind would hand an aware datetime to the driver as is.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as bp
from sqlalchemy.dialects import postgresql, sqlite


class Statements:
    """Prepared Core statements over the ``publications`` and ``publication_attempts`` tables."""

    def __init__(self, publications: sa.Table, attempts: sa.Table, open_states: tuple[str, ...], pg: bool,
                 time_type: Any) -> None:
        c, a = publications.c, attempts.c
        self._publications, self._open = publications, open_states
        t = lambda name: bp(name, type_=time_type)  # noqa: E731
        key = (c.campaign == bp("k_campaign"), c.slot_at == t("k_slot_at"), c.target == bp("k_target"),
               c.account == bp("k_account"))
        self.by_key = sa.select(publications).where(*key)
        self.insert_claim = ((postgresql.insert if pg else sqlite.insert)(publications)
                             .on_conflict_do_nothing().returning(*publications.c))
        self.take_over = (
            sa.update(publications)
            .where(*key, c.state.in_(open_states), c.lease_until <= t("k_now"))
            .values(state=bp("v_state"), owner=bp("v_owner"), lease_until=t("v_until"), next_attempt_at=None,
                    updated=t("v_updated"))
            .returning(*publications.c)
        )
        self.count_attempt = (sa.update(publications).where(c.id == bp("k_id"))
                              .values(attempts=c.attempts + 1, updated=t("v_updated")).returning(c.attempts))
        self.insert_attempt = sa.insert(attempts)
        self.uncertain_attempts = sa.select(sa.func.count()).where(
            a.publication_id == bp("k_id"), sa.or_(a.outcome.is_(None), a.outcome == "uncertain"))
        self.attempt_started = sa.select(a.started).where(a.publication_id == bp("k_id"), a.n == bp("k_n"))
        self.end_attempt = (sa.update(attempts).where(a.publication_id == bp("k_id"), a.n == bp("k_n"))
                            .values(ended=t("v_ended"), outcome=bp("v_outcome"), error=bp("v_error"),
                                    duration_ms=bp("v_duration")))
        self._finish: dict[tuple[Any, ...], sa.Update] = {}

    def finish(self, columns: tuple[str, ...], only_open: bool, by_owner: bool) -> sa.Update:
        """UPDATE publications SET <columns> WHERE id = :k_id [AND open] [AND owner = :k_owner]."""
        shape = (columns, only_open, by_owner)
        stmt = self._finish.get(shape)
        if stmt is None:
            c = self._publications.c
            where = [c.id == bp("k_id")]
            if only_open:
                where.append(c.state.in_(self._open))
            if by_owner:
                where.append(c.owner == bp("k_owner"))
            table = self._publications
            stmt = table.update().where(*where).values({name: bp(f"v_{name}", type_=table.c[name].type)
                                                        for name in columns})
            self._finish[shape] = stmt  # a handful of shapes: one per outcome and owner check
        return stmt


def key_params(key: Any) -> dict[str, Any]:
    """Bound values of a PublicationKey for ``Statements.by_key`` and ``take_over``."""
    return {"k_campaign": key.campaign, "k_slot_at": key.slot_at, "k_target": key.target, "k_account": key.account}
