"""When each account's token expires: a small file in the campaign's state/, written by the worker, read by ``bot status``.

The worker learns expiries from the platforms (``Platform.credentials_expire_at``) and writes them here; ``bot status``,
another process, reads the accounts close to expiry without importing the worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("bot.ledger.token_expiry")

TOKEN_EXPIRY = "token-expiry.json"
"""In the campaign's state/: when each account's token expires, where its platform says (written by the worker)."""


def token_window(env: Mapping[str, str] | None = None) -> timedelta:
    """How long before a token expires it is warned about (``BOT_ALERT_TOKEN_DAYS``, 7 days)."""
    value = (os.environ if env is None else env).get("BOT_ALERT_TOKEN_DAYS")
    try:
        return timedelta(days=float(value or 7))
    except ValueError:
        log.warning("setting_ignored", variable="BOT_ALERT_TOKEN_DAYS", value=value, using=7)
        return timedelta(days=7)


def write_token_expiry(state: Path, expiry: Mapping[str, tuple[str, datetime]]) -> None:
    """Replace the file in ``state`` with ``expiry`` (account -> platform, expiry); OSError when it cannot.

    Writers take turns (the caller holds a lock): they share the scratch file renamed into place.
    """
    path = state / TOKEN_EXPIRY
    entries = {a: {"platform": platform, "expires_at": at.isoformat()} for a, (platform, at) in sorted(expiry.items())}
    state.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    scratch.replace(path)


def read_token_expiry(state: Path, now: datetime, window: timedelta) -> list[dict[str, Any]]:
    """Accounts whose token expires within ``window`` of ``now`` (or has), soonest first, from the worker's file."""
    try:
        entries = json.loads((state / TOKEN_EXPIRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    soon = []
    for account, entry in entries.items():
        try:
            at = datetime.fromisoformat(entry["expires_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if at - now <= window:
            soon.append({"account": account, "platform": entry.get("platform", ""), "at": at, "expired": at <= now})
    return sorted(soon, key=lambda e: e["at"])
