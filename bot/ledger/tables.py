"""Imports every module that declares ledger tables, so ``open_engine`` creates them all."""

from bot.ledger import db  # noqa: F401
from bot.ledger import publications  # noqa: F401
from bot.ledger import reshares  # noqa: F401
