"""The worker's HTTP endpoint: ``/healthz``, ``/metrics``, the status page ``/`` and its review actions.

Standard library only for serving (``wsgiref`` with a thread per request), Jinja2 for the page. Off
unless ``BOT_HTTP_PORT`` is set; bound to 127.0.0.1 unless ``BOT_HTTP_HOST``. The page is read-only
to everyone; review actions need ``BOT_HTTP_PASSWORD`` (HTTP basic auth, any user name) and the
page's CSRF token, and without a password set there are none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape

log = structlog.get_logger("bot.web")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
REALM = 'Basic realm="campaign-bot review", charset="UTF-8"'
MAX_FORM = 4096


@dataclass
class Backend:
    """What the endpoint serves, as functions of the running worker (bot.worker.ops builds it)."""

    health: Callable[[], list[str]]  # problems; none means healthy
    metrics: Callable[[], tuple[bytes, str]]  # exposition text and content type
    page: Callable[[], dict[str, Any]]  # the status page's data
    decide: Callable[[str, list[int]], list[str]] | None = None  # review action, ids -> problems
    # needs_attention: (publication id, published?, its URL, who) -> a problem, or None when recorded
    resolve: Callable[[int, bool, str | None, str], str | None] | None = None
    password: str | None = None


class App:
    """The WSGI application."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.templates = Environment(
            loader=PackageLoader("bot.web", "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
        )
        # Tied to the password: a page served to someone who knows it carries a token no other site can guess.
        self._csrf_key = secrets.token_bytes(32)

    @property
    def can_review(self) -> bool:
        return bool(self.backend.password) and self.backend.decide is not None

    def csrf_token(self) -> str:
        return hmac.new(self._csrf_key, (self.backend.password or "").encode(), hashlib.sha256).hexdigest()

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/healthz" and method in ("GET", "HEAD"):
                return self._healthz(start)
            if path == "/metrics" and method in ("GET", "HEAD"):
                body, kind = self.backend.metrics()
                return _respond(start, "200 OK", body, kind)
            if path in ("/", "/review") and method in ("GET", "HEAD"):
                return self._page(environ, start, signed_in=path == "/review")
            if path == "/review" and method == "POST":
                return self._review(environ, start)
            if path == "/attention" and method == "POST":
                return self._attention(environ, start)
            if path in ("/", "/healthz", "/metrics", "/review", "/attention"):
                return _respond(start, "405 Method Not Allowed", b"method not allowed\n", "text/plain")
            return _respond(start, "404 Not Found", b"not found\n", "text/plain")
        except Exception as exc:  # noqa: BLE001  (a broken page must not take the worker's endpoint down)
            log.error("http_failed", path=path, error=f"{type(exc).__name__}: {exc}")
            return _respond(
                start, "500 Internal Server Error", b"internal error (see the worker's log)\n", "text/plain"
            )

    def _healthz(self, start: StartResponse) -> Iterable[bytes]:
        problems = self.backend.health()
        body = json.dumps({"ok": not problems, "problems": problems}).encode() + b"\n"
        return _respond(start, "503 Service Unavailable" if problems else "200 OK", body, "application/json")

    def _authorized(self, environ: dict[str, Any]) -> bool:
        password = self.backend.password
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not password or not header.lower().startswith("basic "):
            return False
        try:
            _, _, given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(given.encode(), password.encode())

    def _challenge(self, start: StartResponse, why: str) -> Iterable[bytes]:
        start("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", REALM)])
        return [why.encode() + b"\n"]

    def _page(self, environ: dict[str, Any], start: StartResponse, *, signed_in: bool) -> Iterable[bytes]:
        if signed_in and not self.can_review:
            return _respond(start, "403 Forbidden", b"read-only: BOT_HTTP_PASSWORD is not set\n", "text/plain")
        authorized = self.can_review and self._authorized(environ)
        if signed_in and not authorized:
            return self._challenge(start, "the review password is needed")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        data = self.backend.page()
        html = self.templates.get_template("status.html").render(
            **data,
            can_review=self.can_review,
            reviewer=authorized,
            csrf=self.csrf_token() if authorized else None,
            notice=(query.get("done") or [None])[0],
            problems=(query.get("problem") or []),
        )
        return _respond(start, "200 OK", html.encode(), "text/html; charset=utf-8", private=True)

    def _review(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if not self.can_review:
            return _respond(start, "403 Forbidden", b"read-only: BOT_HTTP_PASSWORD is not set\n", "text/plain")
        if not self._authorized(environ):
            log.warning("review_refused", reason="no_password")
            return self._challenge(start, "the review password is needed")
        form = _form(environ)
        if not hmac.compare_digest((form.get("csrf") or [""])[0].encode(), self.csrf_token().encode()):
            log.warning("review_refused", reason="csrf")
            return _respond(start, "403 Forbidden", b"the form is stale or came from another site\n", "text/plain")
        action = (form.get("action") or [""])[0]
        try:
            ids = [int(v) for v in form.get("id", [])]
        except ValueError:
            ids = []
        if action not in ("approve", "reject") or not ids:
            return _respond(start, "400 Bad Request", b"action (approve or reject) and id are needed\n", "text/plain")
        assert self.backend.decide is not None  # can_review
        problems = self.backend.decide(action, ids)
        done = len(ids) - len(problems)
        query = urlencode([("done", f"{action}d {done}"), *(("problem", p) for p in problems)])
        start("303 See Other", [("Location", "/review?" + query), ("Content-Length", "0")])
        return [b""]

    def _attention(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        """Record what a person found for a publication whose outcome was unknown (same guard as review)."""
        if not self.backend.password or self.backend.resolve is None:
            return _respond(start, "403 Forbidden", b"read-only: BOT_HTTP_PASSWORD is not set\n", "text/plain")
        if not self._authorized(environ):
            log.warning("resolve_refused", reason="no_password")
            return self._challenge(start, "the review password is needed")
        form = _form(environ)
        if not hmac.compare_digest((form.get("csrf") or [""])[0].encode(), self.csrf_token().encode()):
            log.warning("resolve_refused", reason="csrf")
            return _respond(start, "403 Forbidden", b"the form is stale or came from another site\n", "text/plain")
        found = (form.get("found") or [""])[0]
        try:
            pub_id = int((form.get("id") or [""])[0])
        except ValueError:
            pub_id = 0
        if found not in ("published", "not_published") or pub_id <= 0:
            return _respond(
                start, "400 Bad Request", b"found (published or not_published) and id are needed\n", "text/plain"
            )
        url = (form.get("url") or [""])[0].strip() or None
        if url is not None and not url.startswith(("https://", "http://")):
            return _respond(start, "400 Bad Request", b"the post's address must be an http(s) URL\n", "text/plain")
        problem = self.backend.resolve(pub_id, found == "published", url, "status page")
        query = urlencode([("done", f"#{pub_id} recorded as {found.replace('_', ' ')}")] if problem is None else [])
        query = query or urlencode([("problem", problem or "")])
        start("303 See Other", [("Location", "/review?" + query), ("Content-Length", "0")])
        return [b""]


def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    return parse_qs(body.decode("utf-8", "replace"))


def _respond(start: StartResponse, status: str, body: bytes, kind: str, *, private: bool = False) -> list[bytes]:
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))), ("X-Content-Type-Options", "nosniff")]
    if private:
        headers += [
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
        ]
    start(status, headers)
    return [body]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up the worker's exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", line=format % args)


class HttpServer:
    """``App`` served from a daemon thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_Quiet)
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> HttpServer:
        self._thread.start()
        log.info("http_started", url=self.url, review=self.app.can_review)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def from_env(backend: Backend, environ: dict[str, str] | None = None) -> HttpServer | None:
    """The endpoint ``BOT_HTTP_PORT`` asks for (started), or None when it is unset."""
    env = os.environ if environ is None else environ
    port = env.get("BOT_HTTP_PORT")
    if not port:
        return None
    backend.password = backend.password or env.get("BOT_HTTP_PASSWORD") or None
    if backend.password:
        from bot.observability.redaction import register_secret

        register_secret(backend.password)
    return HttpServer(App(backend), env.get("BOT_HTTP_HOST") or "127.0.0.1", int(port)).start()
