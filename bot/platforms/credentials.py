"""Credentials come from environment variables only; YAML names the variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.core.errors import MissingSecret
from bot.core.values import AccountLike
from bot.observability.redaction import register_secret


def missing(account: AccountLike, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of the account's credential variables that are not set."""
    environ = os.environ if environ is None else environ
    return [var for var in account.credentials.values() if not environ.get(var)]


def resolve(account: AccountLike, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Role -> value for every credential of ``account``; each value is registered for redaction."""
    environ = os.environ if environ is None else environ
    absent = missing(account, environ)
    if absent:
        raise MissingSecret([f"account {account.id}: environment variable {var} is not set" for var in absent])
    values = {role: environ[var] for role, var in account.credentials.items()}
    for value in values.values():
        register_secret(value)
    return values


def register_present(account: AccountLike, environ: Mapping[str, str] | None = None) -> None:
    """Register for redaction whichever of the account's credentials are set (for commands that show stored text)."""
    environ = os.environ if environ is None else environ
    for var in account.credentials.values():
        register_secret(environ.get(var))
