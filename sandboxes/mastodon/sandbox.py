"""Mastodon sandbox: mastodon-mock's app behind our gateway, served by uvicorn on 127.0.0.1.

mastodon-mock (PyPI) is a stateful Mastodon API server; it runs here in a thread
of the owning process, on a socket bound before the app is built so the
instance's own URLs (status links, streaming URL) carry the real port. Accounts
sign up through the ordinary Mastodon flow (app, client-credentials token,
``POST /api/v1/accounts``), so each gets its own token. See mastodon_gateway for
what we add in front of the mock.

Where mastodon-mock 0.6.1 still differs from Mastodon (left as is, tests avoid them):
it renders *markdown* marks into status HTML and links no hashtags; it refuses
statuses over 500 characters by raw length (a URL is not counted as 23); it keeps
idempotency keys forever (Mastodon: about an hour) and two simultaneous requests
with one key race; it enforces no media size limits and never fails processing.
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from sandboxes.base import Draft, Sandbox, SandboxAccount, ServerPost, env_name
from sandboxes.mastodon.gateway import SANDBOX_AGENT, WORKERS, Gateway, Throttle


class MastodonSandbox(Sandbox):
    platform: ClassVar[str] = "mastodon"

    def __init__(self, *, latency: float = 0.0, workdir: str | None = None) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._app: Any = None
        self.gateway: Gateway | None = None
        self._base_url = ""
        self._tokens: dict[str, str] = {}  # handle -> access token
        self._posters: dict[str, Any] = {}  # handle -> Mastodon.py client used by post_as
        self._client_app: tuple[str, str] | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    # ---- lifecycle ----

    def start(self) -> None:
        import uvicorn
        from mastodon_mock.app import create_app
        from mastodon_mock.config import DatabaseConfig, MastodonMockConfig, SeedConfig, StreamingConfig

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._base_url = f"http://127.0.0.1:{port}"
        # The database always starts empty, in a directory of its own removed on stop.
        self._tmp = tempfile.TemporaryDirectory(prefix="mastodon-sandbox-")
        database = Path(self._tmp.name) / "mastodon.sqlite"
        root = Path(self.workdir or self._tmp.name)
        config = MastodonMockConfig(
            domain=f"127.0.0.1:{port}",
            url_scheme="http",
            title="Campaign sandbox",
            # A file of ours rather than ":memory:" (for which the mock makes a hidden temporary file):
            # the sandbox opens it again with a larger connection pool (see _unbounded_pool).
            database=DatabaseConfig(path=str(database)),
            media_storage_path=str(root / "media"),
            seed=SeedConfig(),
            # Short heartbeats keep stream shutdown prompt; Mastodon itself sends one every 15 s.
            streaming=StreamingConfig(heartbeat_seconds=0.5),
        )
        self._app = create_app(config)
        _unbounded_pool(self._app, database)
        self.gateway = Gateway(self._app, latency=self.latency)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.gateway,
                log_level="warning",
                access_log=False,
                server_header=False,
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("mastodon sandbox did not start")
            time.sleep(0.01)
        self._wait_answering(deadline)

    def _wait_answering(self, deadline: float) -> None:
        import requests

        while True:
            try:
                if requests.get(f"{self._base_url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mastodon sandbox at {self._base_url} does not answer")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def base_url(self) -> str:
        return self._base_url

    # ---- knobs the tests turn ----

    def set_rate_limit(self, limit: int, period: int = 300, *, media_limit: int | None = None) -> None:
        """Throttle each account to ``limit`` requests per ``period`` seconds (Mastodon: 300 per 5 min)."""
        self.gateway.general = Throttle(limit, period)
        if media_limit is not None:
            self.gateway.media = Throttle(media_limit, 1800)

    def set_max_characters(self, limit: int) -> None:
        """The instance's advertised and enforced status length (at most mastodon-mock's own 500)."""
        if limit > 500:
            raise ValueError("mastodon-mock refuses statuses over 500 characters itself")
        self.gateway.max_characters = limit

    def set_streaming(self, enabled: bool) -> None:
        """Switch the streaming API on or off, as an instance without streaming answers 404."""
        self.gateway.streaming = enabled

    def set_processing_polls(self, kind: str, polls: int) -> None:
        """How many ``GET /api/v1/media/:id`` a fresh upload of ``kind`` answers 206 to before it is ready."""
        self.gateway.processing_polls[kind] = polls

    def impersonate(self, family: str) -> None:
        """Answer as a server of ``family`` does ("takahe", "gotosocial", "akkoma"; "mastodon" is the default).

        Takahē: 404 on ``/api/v2/instance`` (with and without the trailing slash), version
        ``4.0.0 (compatible; Takahe 0.11)``, image types only and no video size, 500 to a video
        upload, no streaming, ``Idempotency-Key`` ignored, local handles with domain and port,
        a reblog answered with the original status. ``restore_defaults`` undoes it.
        """
        self.gateway.impersonate(family)

    def restore_defaults(self) -> None:
        """Drop pending faults and rate-limit counters, and restore the default knobs."""
        self.gateway.clear()
        self.gateway.restore_defaults()

    # ---- accounts and posts ----

    def _client(self, token: str | None = None, **kwargs: Any) -> Any:
        from mastodon import Mastodon

        return Mastodon(
            access_token=token,
            api_base_url=self._base_url,
            version_check_mode="created",
            mastodon_version="4.3.0",
            ratelimit_method="throw",
            user_agent=SANDBOX_AGENT,
            request_timeout=30,
            **kwargs,
        )

    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        from mastodon import Mastodon

        if self._client_app is None:
            self._client_app = Mastodon.create_app(
                "campaign-sandbox",
                api_base_url=self._base_url,
                scopes=["read", "write", "follow"],
                user_agent=SANDBOX_AGENT,
            )
        client_id, client_secret = self._client_app
        username = re.sub(r"\W", "_", name, flags=re.ASCII)[:30]
        signup = self._client(client_id=client_id, client_secret=client_secret)
        token = signup.create_account(
            username,
            uuid.uuid4().hex,
            f"{username}@sandbox.invalid",
            agreement=True,
            scopes=["read", "write", "follow"],
        )
        if display_name:
            self._client(token).account_update_credentials(display_name=display_name)
        self._tokens[username] = token
        var = env_name(*([] if name.upper().startswith("MASTODON") else ["mastodon"]), name, "access_token")
        entry = {
            "platform": "mastodon",
            "base_url": self._base_url,
            "handle": username,
            "credentials": {"access_token": var},
        }
        return SandboxAccount(id=name, handle=username, entry=entry, env={var: token})

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        client = self._posters.get(account.handle)
        if client is None:  # one client (and connection) per author: floods of 200 posts stay quick
            client = self._posters[account.handle] = self._client(self._tokens[account.handle])
        if draft.reshare_of is not None:
            return str(client.status_reblog(draft.reshare_of)["id"])
        media = None
        if draft.alt_text:
            media = [client.media_post(_tiny_png(), mime_type="image/png", description=draft.alt_text)]
        status = client.status_post(
            draft.text,
            in_reply_to_id=draft.reply_to,
            sensitive=draft.sensitive,
            spoiler_text=draft.spoiler_text or None,
            media_ids=media,
        )
        return str(status["id"])

    def _poster(self, account: SandboxAccount) -> Any:
        client = self._posters.get(account.handle)
        if client is None:
            client = self._posters[account.handle] = self._client(self._tokens[account.handle])
        return client

    def edit_as(self, account: SandboxAccount, remote_id: str, text: str) -> None:
        self._poster(account).status_update(remote_id, status=text)

    def delete_as(self, account: SandboxAccount, remote_id: str) -> None:
        self._poster(account).status_delete(remote_id)

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        from mastodon_mock.db.models import Account, MediaAttachment, Status
        from sqlalchemy import select

        media_root = Path(self._app.state.media_path) / "attachments"
        with self._app.state.session_factory() as db:
            query = select(Status, Account.username).join(Account, Account.id == Status.account_id)
            if account is not None:
                query = query.where(Account.username == account.handle, Account.domain.is_(None))
            rows = db.execute(query.order_by(Status.id)).all()
            out = []
            for status, username in rows:
                attached = db.scalars(
                    select(MediaAttachment).where(MediaAttachment.status_id == status.id).order_by(MediaAttachment.id)
                ).all()
                media = [
                    {
                        "kind": "video" if m.type in ("video", "gifv") else m.type,
                        "alt": m.description or "",
                        "bytes": _size(media_root / (m.filename or "")),
                        "captions": None,
                    }
                    for m in attached
                ]
                out.append(
                    ServerPost(
                        remote_id=str(status.id),
                        author=username,
                        text=status.text or "",
                        url=f"{self._base_url}/@{username}/{status.id}",
                        media=media,
                        reshare_of=None if status.reblog_of_id is None else str(status.reblog_of_id),
                        reply_to=None if status.in_reply_to_id is None else str(status.in_reply_to_id),
                        sensitive=bool(status.sensitive or status.spoiler_text),
                    )
                )
            return out

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        self.gateway.faults.add(fault, count=count, retry_after=retry_after, path=path)

    def requests(self) -> list[dict[str, Any]]:
        return self.gateway.requests()


def _unbounded_pool(app: Any, path: Path) -> None:
    """Give the mock an engine on its database file whose pool grows past SQLAlchemy's default 5 + 10.

    Every open stream holds a connection for its whole life (its request's session stays
    open), so fifteen listeners would leave none for API calls. The gateway bounds API
    calls to ``WORKERS``; streams take what they need beyond that. mastodon-mock 0.6.1 has
    no pool setting, and reads its engine and session factory from ``app.state`` on every
    request, so the app gets an engine made by SQLAlchemy's public ``create_engine`` on the
    same file, with the SQLite settings the mock gives each of its own connections.
    """
    from mastodon_mock.db.base import make_session_factory
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import QueuePool

    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=WORKERS,
        max_overflow=-1,
        connect_args={"check_same_thread": False},  # the server's threadpool shares the pool
    )
    event.listen(engine, "connect", _tune_sqlite)
    old = app.state.engine
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    old.dispose()


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # As mastodon-mock sets its own connections: readers beside the writer (WAL), contended writers
    # wait instead of failing with SQLITE_BUSY, and no fsync for a database thrown away afterwards.
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tiny_png() -> bytes:
    """A one-pixel PNG, the least an image post with alt text needs."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), "red").save(out, "PNG")
    return out.getvalue()
