"""Bluesky sessions: the adapter's logged-in SDK client, and where sessions live between runs.

One login per adapter (or none, with a stored session); the SDK refreshes the session, and an
expired or revoked token is refreshed once, then replaced by a new login, before the call is
given up. Sessions are stored so a restarted worker refreshes instead of logging in again.
Logins (``createSession``) are rate limited per account (30 per 5 minutes, 300 per day on the
reference PDS); a worker restarted often would spend them. A session string holds the access
and refresh tokens: it is a secret, so files are private to the user and values are redacted.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bot.core.errors import RateLimited
from bot.observability.redaction import register_secret, retire_secret
from bot.platforms.base import RateGate
from bot.platforms.bluesky.errors import AUTH_ERRORS, xrpc_error

# Which of our rate buckets a server's ratelimit-* headers speak for, by XRPC method.
_BUCKETS = {
    "com.atproto.repo.createRecord": ("post", "reshare"),
    "com.atproto.repo.putRecord": ("post", "reshare"),
    "com.atproto.repo.deleteRecord": ("post", "reshare"),
    "com.atproto.repo.applyWrites": ("post", "reshare"),
    "com.atproto.repo.uploadBlob": ("post",),
    "com.atproto.server.createSession": ("login",),
    "app.bsky.feed.searchPosts": ("search",),
}


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
            _register_session(session)
        return session or None

    def save(self, account_id: str, session: str) -> None:
        previous = self._path(account_id)
        if previous.exists():
            # Replaced sessions stay redacted for the registry's retention, then are forgotten.
            _retire_session(previous.read_text(encoding="utf-8").strip())
        _register_session(session)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(account_id)
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(session)
        os.replace(partial, path)  # never a half-written session for a concurrent reader


class Connection:
    """One account's atproto client, logged in on first use, its rate-limit headers fed to ``gate``."""

    def __init__(
        self,
        base_url: str,
        handle: str,
        password: Callable[[], str],
        *,
        gate: RateGate,
        timeout: float,
        store: SessionStore | None,
        store_key: str,
    ) -> None:
        self.base_url, self.handle, self._password = base_url, handle, password
        self.gate, self.timeout = gate, timeout
        self._store, self._store_key = store, store_key
        self._client: Any = None
        self.lock = threading.RLock()
        self.logins = 0  # password logins made (each one costs rate-limit budget)

    def client(self) -> Any:
        with self.lock:
            if self._client is None:
                from atproto import Client
                from atproto_client.request import Request

                request = Request(timeout=self.timeout, event_hooks={"response": [self._observe]})
                client = Client(base_url=self.base_url, request=request)
                client.on_session_change(lambda _event, session: self._save(session.export()))
                saved = self._store.load(self._store_key) if self._store else None
                if saved:
                    client.login(session_string=saved, fetch_bsky_profile=False)  # no request: used on first call
                else:
                    self._login(client)
                self._client = client
            return self._client

    def _login(self, client: Any) -> None:
        wait = self.gate.wait_needed("login")
        if wait > 0:
            raise RateLimited(f"bluesky login rate limit: waiting {wait:.0f}s", retry_after=wait)
        self.logins += 1
        # No profile fetch: it needs an AppView, and the session already says who we are.
        client.login(self.handle, self._password(), fetch_bsky_profile=False)

    def _save(self, session: str) -> None:
        if self._store is not None:
            self._store.save(self._store_key, session)

    def session(self) -> Any:
        """The current session (did, handle), decoded from the client's own export."""
        from atproto_client.client.session import Session

        return Session.decode(self.client().export_session_string())

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(client)``; on an expired or revoked token refresh once, else log in again, then retry."""
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        client = self.client()
        try:
            return fn(client)
        except (UnauthorizedError, BadRequestError) as exc:
            if xrpc_error(exc) not in AUTH_ERRORS:
                raise
        with self.lock:
            try:
                self._refresh(client)
            except (UnauthorizedError, BadRequestError):
                self._login(client)
        return fn(client)

    def _refresh(self, client: Any) -> None:
        """Trade the refresh token for a new session through the SDK's public calls; callbacks store it."""
        from atproto_client.client.session import Session, get_session_pds_endpoint
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        current = Session.decode(client.export_session_string())
        try:
            answer = client.com.atproto.server.refresh_session(
                headers={"Authorization": f"Bearer {current.refresh_jwt}"}
            )
        except (UnauthorizedError, BadRequestError):
            if client.export_session_string() != current.export():
                # The SDK refreshed on its own before our call (the token neared expiry meanwhile) and
                # rotated the refresh token we sent: its new session is good, no login is needed.
                return
            raise
        refreshed = Session(
            handle=answer.handle,
            did=answer.did,
            access_jwt=answer.access_jwt,
            refresh_jwt=answer.refresh_jwt,
            pds_endpoint=get_session_pds_endpoint(answer) or current.pds_endpoint,
        )
        # Importing the new session string is the SDK's public way to set a session; no request is made.
        client.login(session_string=refreshed.export(), fetch_bsky_profile=False)

    def _observe(self, response: Any) -> None:
        headers = response.headers
        remaining, reset = headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")
        if remaining is None or reset is None:
            return
        nsid = response.request.url.path.rsplit("/", 1)[-1]
        for bucket in _BUCKETS.get(nsid, ("read",)):
            self.gate.observe(bucket, int(remaining), float(reset))

    def close(self) -> None:
        with self.lock:
            if self._client is not None:
                self._client.request.close()
                self._client = None


def _tokens(session: str) -> list[str]:
    """The session string and its access and refresh JWTs: a JWT can appear alone in a header or an error."""
    from atproto_client.client.session import Session

    try:
        decoded = Session.decode(session)
    except ValueError:
        return [session]
    return [session, decoded.access_jwt, decoded.refresh_jwt]


def _register_session(session: str) -> None:
    for token in _tokens(session):
        register_secret(token)


def _retire_session(session: str) -> None:
    for token in _tokens(session) if session else []:
        retire_secret(token)
