"""The interface every sandbox platform offers to the demo, the tests and the benchmarks."""

from __future__ import annotations

import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import SplitResult, parse_qsl, urlsplit


@dataclass(frozen=True)
class SandboxAccount:
    """An account on a sandbox server, ready to be written into config/accounts.yaml."""

    id: str  # the account name used in YAML, e.g. "x-index"
    handle: str  # the platform handle (X username, Mastodon acct, Bluesky handle)
    entry: dict[str, Any]  # the accounts.yaml entry: platform, base_url, handle, credentials (role -> ENV NAME)
    env: dict[str, str]  # ENV NAME -> secret value, to put in the worker's environment


@dataclass(frozen=True)
class ServerPost:
    """A post as the server holds it, for assertions about what really got published."""

    remote_id: str
    author: str  # handle
    text: str
    url: str = ""
    media: list[dict[str, Any]] = field(default_factory=list)  # {"kind": "image"|"video", "alt", "bytes", "captions"}
    reshare_of: str | None = None  # remote id of the reshared post (retweet / boost / repost)
    reply_to: str | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class Draft:
    """What ``Sandbox.post_as`` publishes: a post, a reply, a content-warned post or a reshare."""

    text: str
    reply_to: str | None = None
    sensitive: bool = False
    spoiler_text: str = ""
    reshare_of: str | None = None
    alt_text: str = ""  # an image with this description (Mastodon)
    card_title: str = ""  # a link card with this title (Bluesky)


# "echo_auth": a 502 whose body quotes the request's Authorization header, as misconfigured proxies and debug pages do.
FAULTS = ("rate_limited", "unavailable", "auth", "rejected", "duplicate", "timeout", "echo_auth")
"""Faults every sandbox can inject into the next matching request(s)."""


def env_name(*parts: str) -> str:
    """An environment variable name made of words: ``env_name("x", "fast7da0fa", "consumer_key")`` is
    ``X_FAST_7_DA_0_FA_CONSUMER_KEY``. Test accounts carry random suffixes; run together, those read as
    a token to ``bot check``, which refuses a secret pasted where a variable's name belongs."""
    words = re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper())
    return re.sub(r"(?<=[A-Z])(?=[0-9])|(?<=[0-9])(?=[A-Z])", "_", words).strip("_")


@dataclass
class Fault:
    """An injected fault, waiting for its next ``count`` matching requests."""

    kind: str  # one of FAULTS
    count: int = 1
    retry_after: float | None = None
    path: str | None = None  # only requests whose path contains this
    error: str | None = None  # platform error name overriding the kind's default (Bluesky's ExpiredToken)
    delay: float | None = None  # "timeout": how late the answer comes (None: the server's own default)

    def matches(self, path: str, spare: tuple[str, ...] = ()) -> bool:
        return self.path in path if self.path is not None else not path.startswith(spare)


class FaultQueue:
    """Faults in the order they were injected, taken by the requests they match; safe across server threads.

    ``spare`` lists path prefixes a fault without a ``path`` leaves alone (long-lived streams,
    which would otherwise swallow a fault meant for the next API call).
    """

    def __init__(self, *, spare: tuple[str, ...] = ()) -> None:
        self.spare = spare
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        kind: str,
        *,
        count: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        error: str | None = None,
        delay: float | None = None,
    ) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        with self._lock:
            self._faults.append(Fault(kind, count, retry_after, path, error, delay))

    def take(self, path: str) -> Fault | None:
        """The first fault matching ``path``, counted down (and dropped once spent), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, self.spare):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def serve_loopback(handler: type[BaseHTTPRequestHandler], name: str) -> ThreadingHTTPServer:
    """A threaded HTTP server on 127.0.0.1 (a free port), serving from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True).start()
    return server


def shut(server: ThreadingHTTPServer | None) -> None:
    """Stop a server from ``serve_loopback`` and free its port; None is a no-op."""
    if server is not None:
        server.shutdown()
        server.server_close()


class PlatformServer(ThreadingHTTPServer):
    """A sandbox platform's HTTP server on 127.0.0.1 (a free port): its ``handler`` answers from ``state``, each
    answer ``latency`` seconds late."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 drops connections beyond it, and clients then wait
    # out TCP's 1 s SYN retry: a fan-out to hundreds of accounts would measure that, not the bot.
    request_queue_size = 1024

    def __init__(self, state: Any, latency: float = 0.0) -> None:
        self.state, self.latency = state, latency
        super().__init__(("127.0.0.1", 0), self.handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (killed workers, timeouts) are normal here, not server errors.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class PlatformHandler(BaseHTTPRequestHandler):
    """The base of a ``PlatformServer``'s handler: HTTP/1.1 keep-alive, no Nagle delay, no stderr log."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, a kept-alive connection waits for the
    # client's delayed ACK (40 ms on Linux) before the body. Real APIs answer at once.
    disable_nagle_algorithm = True

    server: PlatformServer

    def log_message(self, format: str, *args: Any) -> None:  # request logs, where kept, replace stderr noise
        return

    def _request(self) -> tuple[SplitResult, dict[str, Any], bytes]:
        """The request's URL, query parameters and body, read after the server's ``latency``."""
        url = urlsplit(self.path)
        query: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.latency:
            time.sleep(self.server.latency)
        return url, query, body


class Sandbox(ABC):
    """A local platform server (or several) on 127.0.0.1, started and stopped by its owner."""

    platform: ClassVar[str]

    def __init__(self, *, latency: float = 0.0, workdir: str | None = None) -> None:
        self.latency = latency  # seconds added to every answer (benchmarks use 0.2)
        self.workdir = workdir

    @abstractmethod
    def start(self) -> None:
        """Start the servers on free loopback ports; return when they answer."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every process and thread started by ``start``."""

    @property
    @abstractmethod
    def base_url(self) -> str:
        """The URL an account's ``base_url`` points at."""

    @abstractmethod
    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        """A new account on the server (a campaign account, or a supporter or troll who posts)."""

    def post_as(
        self,
        account: SandboxAccount,
        text: str,
        *,
        reply_to: str | None = None,
        sensitive: bool = False,
        spoiler_text: str = "",
        reshare_of: str | None = None,
        alt_text: str = "",
        card_title: str = "",
    ) -> str:
        """Publish as ``account`` directly on the server (not through the bot); return the remote id."""
        return self._post_as(account, Draft(text, reply_to, sensitive, spoiler_text, reshare_of, alt_text, card_title))

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        """The platform's half of ``post_as``: a sandbox implements this, or overrides ``post_as`` itself."""
        raise NotImplementedError(f"{self.platform} sandbox implements neither post_as nor _post_as")

    def edit_as(self, account: SandboxAccount, remote_id: str, text: str) -> None:
        """Edit ``account``'s post to say ``text``, as its author would (the server streams the edit)."""
        raise NotImplementedError(f"{self.platform} sandbox cannot edit posts")

    def delete_as(self, account: SandboxAccount, remote_id: str) -> None:
        """Delete ``account``'s post, as its author would (the server streams the deletion)."""
        raise NotImplementedError(f"{self.platform} sandbox cannot delete posts")

    @abstractmethod
    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        """Every post on the server, or only those by ``account``, oldest first."""

    @abstractmethod
    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """Make the next ``count`` requests (whose path contains ``path``, if given) fail with ``fault``."""

    def restore_defaults(self) -> None:
        """Drop pending faults and put back every knob a test turned, as a fresh sandbox has them."""
        raise NotImplementedError(f"{self.platform} sandbox cannot restore its defaults")

    def requests(self) -> list[dict[str, Any]]:
        """The server's request log ({"method", "path", "query", "status"}), oldest first."""
        raise NotImplementedError(f"{self.platform} sandbox keeps no request log")

    def index(self) -> None:
        """Make recent writes visible to reads (search, timelines); a no-op where they already are."""

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServedSandbox(Sandbox):
    """A sandbox whose platform is one ``PlatformServer`` in this process, served from a daemon thread."""

    def __init__(self, *, latency: float = 0.0, workdir: str | None = None) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self._server: PlatformServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _new_server(self) -> PlatformServer:
        """The platform's server, on a free loopback port, not yet serving."""

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = self._new_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"{self.platform}-sandbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"
