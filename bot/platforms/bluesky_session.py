"""Where Bluesky sessions live between runs, so a restarted worker refreshes instead of logging in again.

Logins (``createSession``) are rate limited per account (30 per 5 minutes, 300 per day on the
reference PDS); a worker restarted often would spend them. A session string holds the access
and refresh tokens: it is a secret, so files are private to the user and values are redacted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from bot.logs import register_secret


class SessionStore(Protocol):
    """Loads and saves exported session strings by account id."""

    def load(self, account_id: str) -> str | None: ...

    def save(self, account_id: str, session: str) -> None: ...


class FileSessionStore:
    """One file per account under ``directory`` (e.g. ``state/sessions`` in the campaign folder), mode 0600."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, account_id: str) -> Path:
        return self.directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', account_id)}.bluesky-session"

    def load(self, account_id: str) -> str | None:
        try:
            session = self._path(account_id).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if session:
            register_secret(session)
        return session or None

    def save(self, account_id: str, session: str) -> None:
        register_secret(session)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(account_id)
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(session)
        os.replace(partial, path)  # never a half-written session for a concurrent reader
