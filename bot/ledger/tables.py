"""Imports every module that declares ledger tables, so ``open_engine`` creates them all."""

from bot.ledger import (
    db,  # noqa: F401
    publications,  # noqa: F401
    reshares,  # noqa: F401
)
