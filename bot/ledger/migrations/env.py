"""Alembic's environment for the ledger: runs on the connection ``bot.ledger.db.migrate`` holds (and has locked).

Without one (a developer's ``command.revision``), it connects to ``sqlalchemy.url`` from the config.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from bot.ledger.schema import metadata


def run(connection: Connection) -> None:
    # render_as_batch: SQLite alters a table by copying it, which alembic's batch mode writes for us.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    # Inside the caller's transaction (it holds the migration lock) alembic opens none of its own.
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url", ""))
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
