"""The ledger's schema migrations (alembic): ``env.py`` and one module per revision in ``versions/``.

``bot.ledger.db.open_engine`` runs them. To add one after changing ``bot.ledger.schema``::

    from alembic import command
    from bot.ledger.db import alembic_config
    command.revision(alembic_config(url="sqlite:///scratch.db"), "what changed", autogenerate=True)

then set ``HEAD`` below to the new revision's id (a test checks that it is alembic's head).
"""

FIRST_RELEASE = "0001"
"""The schema the first release (commit 9d65cd3) created with ``create_all``, before alembic."""

HEAD = "0007"
"""The newest revision: a ledger stamped with it needs no migration, and alembic is not even imported."""
