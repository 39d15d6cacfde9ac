"""The durable ledger: what was claimed, published, skipped or failed, and what tracking has seen.

``schema`` (the one MetaData: every table, the UTC type, the states), ``db`` (engine, pool, and
the alembic migrations in ``migrations/`` run when a ledger is opened), ``publications`` (the
publication Ledger: claims, outcomes, queries), ``reshares`` (tracking's decisions, cursors,
lease), ``group_commit`` (writes from many threads committed together: SQLite lets one writer in,
and on PostgreSQL it halves the CPU a write costs).
"""
