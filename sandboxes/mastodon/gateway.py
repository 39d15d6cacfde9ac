"""What mastodon-mock lacks, as an ASGI layer wrapped around its app.

mastodon-mock keeps statuses, media, reblogs, tag timelines with ``min_id`` and
``Link`` headers, SSE streaming and ``Idempotency-Key`` like Mastodon. This layer
adds what the bot's tests need and the mock does not do as Mastodon does:

- ``X-RateLimit-*`` headers on every answer, with ``X-RateLimit-Reset`` in ISO 8601
  and period-aligned windows (Mastodon's Rack::Attack throttles: one per account,
  a stricter one for media uploads), and 429 once a window is spent;
- asynchronous media processing: ``POST /api/v2/media`` answers 202 with
  ``url: null`` for videos, ``GET /api/v1/media/:id`` answers 206 until done,
  and a status citing unprocessed media is refused with 422;
- the instance's ``max_characters``, advertised and enforced with Mastodon's
  counting (a URL is 23 characters);
- injected faults, including a timeout where the server does the work but holds
  the answer until the client has given up;
- a request log, and switching streaming off to test the polling fallback; an edit streamed as
  ``status.update``, as Mastodon names it (the mock says ``status_update``); a deleted status's
  boosts deleted with it, as Mastodon does;
- switches that make it answer as Mastodon-API servers that are not Mastodon do
  (Takahē, GoToSocial, Akkoma; ``impersonate``): no ``/api/v2/instance``, their
  version string, a narrower ``supported_mime_types``, 500 to a video upload,
  ``Idempotency-Key`` ignored, ``acct`` with the server's domain and port for local
  accounts, a reblog answered with the original status;
- a bound on the requests the app serves at once, the rest waiting their turn as
  at a Mastodon's Puma threads (the mock's sync routes would otherwise take all of
  anyio's 40 threads, each wanting a database connection, and time out at 30 s).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from bot.platforms.mastodon import Mastodon
from sandboxes.base import Fault, FaultQueue

Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

SANDBOX_AGENT = "campaign-bot-sandbox"  # post_as traffic: exempt from faults, throttles and the log
_MEDIA_ID = re.compile(r"^/api/v1/media/(\d+)$")
_REBLOG = re.compile(r"^/api/v1/statuses/\d+/reblog$")
_STATUS_ID = re.compile(r"^/api/v1/statuses/(\d+)$")
_VIDEO_PART = re.compile(rb"content-type:\s*video/", re.IGNORECASE)
_INSTANCE = ("/api/v1/instance", "/api/v2/instance")
_QUIET = ("/api/v1/_mock", "/health", "/media/", "/avatars/", "/headers/")
_STREAMING = "/api/v1/streaming"
WORKERS = 10  # requests served at once, as by a Mastodon of two Puma processes with five threads each


@dataclass
class Throttle:
    """A fixed, period-aligned window, as Rack::Attack counts."""

    limit: int
    period: int


class Gateway:
    """ASGI app: the sandbox's own behaviour in front of mastodon-mock's app."""

    def __init__(self, app: Any, *, latency: float = 0.0, wall: Callable[[], float] = time.time) -> None:
        self.app = app
        self.latency = latency
        self.wall = wall
        self.restore_defaults()
        self.hold_max = 35.0  # longest a "timeout" answer is held if the client never hangs up
        self._lock = threading.Lock()
        # A stream, or the adapter's optional instance look-up, must not swallow a fault meant for a call
        # (a fault given the instance's path still hits it).
        self.faults = FaultQueue(spare=(_STREAMING, *_INSTANCE))
        self._counts: dict[tuple[str, str, int], int] = {}
        self._processing: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []
        self._workers = asyncio.Semaphore(WORKERS)

    # ---- control, called from the test thread ----

    def restore_defaults(self) -> None:
        """The instance's knobs as a fresh sandbox has them (tests change them, then restore them)."""
        self.general = Throttle(3000, 300)  # generous by default; tests tighten it
        self.media = Throttle(300, 1800)
        self.max_characters = 500
        self.processing_polls = {"video": 2, "gifv": 2, "audio": 2, "image": 0}
        self.streaming = True
        self.instance_v2 = True  # False: 404 on /api/v2/instance, with and without the trailing slash
        self.version: str | None = None  # the version string the instance reports; None: the mock's own
        self.mime_types: list[str] | None = None  # configuration.media_attachments.supported_mime_types
        self.video_size_limit = True  # False: no video_size_limit advertised (Takahē)
        self.video_upload_status: int | None = None  # answer every video upload with this status (Takahē: 500)
        self.idempotency = True  # False: Idempotency-Key is ignored (Takahē)
        self.acct_with_domain = False  # True: local accounts' acct is user@domain:port (Takahē)
        self.reblog_returns_original = False  # True: a reblog is answered with the original status (Takahē)

    def impersonate(self, family: str) -> None:
        """Answer as a Mastodon-API server of another family does, as far as the bot can tell."""
        self.restore_defaults()
        if family == "takahe":
            # Seen with Takahē 0.11, run locally in December 2026.
            self.instance_v2 = False
            self.version = "4.0.0 (compatible; Takahe 0.11)"
            self.mime_types = ["image/jpeg", "image/png", "image/gif", "image/webp"]
            self.video_size_limit = False
            self.video_upload_status = 500
            self.idempotency = False
            self.streaming = False
            self.acct_with_domain = True
            self.reblog_returns_original = True
        elif family == "gotosocial":
            self.version = "4.3.0 (compatible; GoToSocial 0.17.3)"
            self.streaming = False
        elif family == "akkoma":
            self.instance_v2 = False
            self.version = "2.7.2 (compatible; Akkoma 3.13.2)"
        elif family != "mastodon":
            raise ValueError(f"unknown server family {family!r}")

    def clear(self) -> None:
        self.faults.clear()
        with self._lock:
            self._counts.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    # ---- rate limits ----

    def _spend(self, who: str, name: str, throttle: Throttle) -> tuple[bool, dict[str, str]]:
        now = self.wall()
        window = int(now // throttle.period)
        with self._lock:
            used = self._counts.get((who, name, window), 0) + 1
            self._counts[(who, name, window)] = used
        reset = datetime.fromtimestamp((window + 1) * throttle.period, UTC)
        headers = {
            "X-RateLimit-Limit": str(throttle.limit),
            "X-RateLimit-Remaining": str(max(throttle.limit - used, 0)),
            "X-RateLimit-Reset": _iso(reset),
        }
        return used > throttle.limit, headers

    # ---- the ASGI entry point ----

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith(_QUIET) or headers.get("user-agent") == SANDBOX_AGENT:
            async with self._workers:
                await self.app(scope, receive, send)
            if method == "DELETE" and (deleted := _STATUS_ID.match(path)):
                self._drop_boosts_of(int(deleted.group(1)))
            return
        if self.latency:
            await asyncio.sleep(self.latency)
        entry = {"method": method, "path": path, "query": scope.get("query_string", b"").decode(), "status": None}
        if "idempotency-key" in headers:
            entry["idempotency_key"] = headers["idempotency-key"]
        with self._lock:
            self._log.append(entry)

        if path.startswith(_STREAMING) and path != f"{_STREAMING}/health" and not self.streaming:
            await _answer(send, entry, 404, {"error": "Not Found"})
            return
        if path.rstrip("/") == "/api/v2/instance" and not self.instance_v2:
            await _answer(send, entry, 404, b"<html><title>Not Found</title></html>")
            return
        if not self.idempotency:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"idempotency-key"]}
        fault = self.faults.take(path)
        if fault is not None and fault.kind != "timeout":
            await self._fault(send, entry, fault, headers)
            return

        if path.startswith(_STREAMING):  # Mastodon's streaming server: neither throttled nor bound to the workers
            await self.app(scope, receive, _noting_status(send, entry))
            return
        who = headers.get("authorization", "") or (scope.get("client") or ("anon",))[0]
        limited, rate = self._spend(who, "api", self.general)
        if method == "POST" and path in ("/api/v1/media", "/api/v2/media"):
            media_limited, media_rate = self._spend(who, "media", self.media)
            limited = limited or media_limited
            # Rack::Attack reports the throttle closest to its limit.
            if int(media_rate["X-RateLimit-Remaining"]) < int(rate["X-RateLimit-Remaining"]):
                rate = media_rate
        if limited:
            await _answer(send, entry, 429, {"error": "Too many requests"}, rate)
            return

        body = await _read_body(receive)
        if method == "POST" and path == "/api/v1/statuses":
            refusal = self._refuse_status(headers.get("content-type", ""), body)
            if refusal:
                await _answer(send, entry, 422, {"error": refusal}, rate)
                return
        if (
            method == "POST"
            and path in ("/api/v1/media", "/api/v2/media")
            and self.video_upload_status is not None
            and _VIDEO_PART.search(body[:65536])
        ):
            page = b"<html><head><title>Server Error (500)</title></head></html>"
            await _answer(send, entry, self.video_upload_status, page, rate)
            return
        async with self._workers:
            status, resp_headers, resp_body = await _call(self.app, scope, body)
        status, resp_body = self._rewrite(method, path, status, resp_body, headers.get("host", ""))
        if method == "DELETE" and status == 200 and (deleted := _STATUS_ID.match(path)):
            self._drop_boosts_of(int(deleted.group(1)))
        resp_headers = [(k, v) for k, v in resp_headers if k.lower() != b"content-length"]
        resp_headers.append((b"content-length", str(len(resp_body)).encode()))
        resp_headers += [(k.encode(), v.encode()) for k, v in rate.items()]
        if fault is not None:  # timeout: the work is done; the answer waits for the client to give up
            if await _client_gone(receive, self.hold_max):
                entry["status"] = "timeout"
                return
        entry["status"] = status
        await send({"type": "http.response.start", "status": status, "headers": resp_headers})
        await send({"type": "http.response.body", "body": resp_body})

    def _drop_boosts_of(self, status_id: int) -> None:
        """Mastodon deletes a status's boosts with it; mastodon-mock 0.6.1 leaves them behind."""
        from mastodon_mock.db.models import Status
        from sqlalchemy import delete

        with self.app.state.session_factory() as db:
            if db.get(Status, status_id) is None:  # only once the status is really gone
                db.execute(delete(Status).where(Status.reblog_of_id == status_id))
                db.commit()

    async def _fault(self, send: Send, entry: dict[str, Any], fault: Fault, request: dict[str, str]) -> None:
        if fault.kind == "rate_limited":
            wait = 300.0 if fault.retry_after is None else fault.retry_after
            headers = {
                "X-RateLimit-Limit": str(self.general.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": _iso(datetime.fromtimestamp(self.wall() + wait, UTC)),
            }
            await _answer(send, entry, 429, {"error": "Too many requests"}, headers)
        elif fault.kind == "unavailable":
            page = b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
            await _answer(send, entry, 503, page)
        elif fault.kind == "auth":
            challenge = (
                'Bearer realm="Doorkeeper", error="invalid_token", error_description="The access token is invalid"'
            )
            await _answer(send, entry, 401, {"error": "The access token is invalid"}, {"WWW-Authenticate": challenge})
        elif fault.kind == "echo_auth":
            auth = request.get("authorization", "")
            await _answer(send, entry, 502, {"error": f"upstream refused the request (Authorization: {auth})"})
        elif fault.kind in ("rejected", "duplicate"):  # Mastodon has no duplicate check: a plain 422
            await _answer(send, entry, 422, {"error": "Validation failed: Text was refused by the server"})
        else:
            raise ValueError(f"unknown fault {fault.kind!r}")

    def _refuse_status(self, content_type: str, body: bytes) -> str | None:
        params = _params(content_type, body)
        text = str(params.get("status", [""])[0] or "")
        limit = self.max_characters
        if Mastodon.measure_text(text) > limit:
            return f"Validation failed: Text character limit of {limit} exceeded"
        with self._lock:
            busy = [m for m in params.get("media_ids", []) if self._processing.get(str(m), 0) > 0]
        if busy:
            return "Cannot attach files that have not finished processing. Try again in a moment!"
        return None

    def _rewrite(self, method: str, path: str, status: int, body: bytes, host: str) -> tuple[int, bytes]:
        if status != 200 or not body.startswith((b"{", b"[")):
            return status, body
        data = json.loads(body)
        if self.acct_with_domain:
            _qualify_accts(data, host)
        if not isinstance(data, dict):
            return status, json.dumps(data).encode()
        if method == "GET" and path.rstrip("/") in _INSTANCE:
            configuration = data.setdefault("configuration", {})
            configuration.setdefault("statuses", {})["max_characters"] = self.max_characters
            media = configuration.setdefault("media_attachments", {})
            if self.mime_types is not None:
                media["supported_mime_types"] = list(self.mime_types)
            if not self.video_size_limit:
                media.pop("video_size_limit", None)
            if self.version is not None:
                data["version"] = self.version
                data.pop("api_versions", None)
            return status, json.dumps(data).encode()
        if method == "POST" and self.reblog_returns_original and _REBLOG.match(path) and data.get("reblog"):
            return status, json.dumps({**data["reblog"], "reblogged": True}).encode()
        if method == "POST" and path == "/api/v2/media":
            polls = self.processing_polls.get(data.get("type", ""), 0)
            if polls > 0:
                with self._lock:
                    self._processing[str(data["id"])] = polls
                data["url"] = None
                return 202, json.dumps(data).encode()
            return status, body
        match = _MEDIA_ID.match(path)
        if method == "GET" and match:
            with self._lock:
                left = self._processing.get(match.group(1), 0)
                if left > 0:
                    self._processing[match.group(1)] = left - 1
            if left > 1:
                data["url"] = None
                return 206, json.dumps(data).encode()
        return status, json.dumps(data).encode() if self.acct_with_domain else body


def _qualify_accts(data: Any, host: str) -> None:
    """Give local accounts' ``acct`` the server's domain and port, as Takahē shows every handle."""
    if isinstance(data, list):
        for item in data:
            _qualify_accts(item, host)
    elif isinstance(data, dict):
        acct = data.get("acct")
        if isinstance(acct, str) and "@" not in acct and "username" in data and host:
            data["acct"] = f"{acct}@{host}"
        for value in data.values():
            if isinstance(value, (dict, list)):
                _qualify_accts(value, host)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _params(content_type: str, body: bytes) -> dict[str, list[Any]]:
    if content_type.startswith("application/json"):
        raw = json.loads(body or b"{}")
        return {k: (v if isinstance(v, list) else [v]) for k, v in raw.items()}
    if content_type.startswith("application/x-www-form-urlencoded") or not content_type:
        parsed = parse_qs(body.decode(), keep_blank_values=True)
        if "media_ids[]" in parsed:
            parsed["media_ids"] = parsed.pop("media_ids[]")
        return parsed
    return {}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list, bytes]:
    """Run the inner app on a buffered request; collect its whole answer."""
    sent = False
    result: dict[str, Any] = {"status": 500, "headers": [], "body": []}

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the inner app never needs to hear about a disconnect here
        return {"type": "http.disconnect"}

    async def collect(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result["status"] = message["status"]
            result["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            result["body"].append(message.get("body", b""))

    await app(scope, replay, collect)
    return result["status"], result["headers"], b"".join(result["body"])


async def _client_gone(receive: Receive, hold: float) -> bool:
    try:
        message = await asyncio.wait_for(receive(), timeout=hold)
    except TimeoutError:
        return False
    return message["type"] == "http.disconnect"


def _noting_status(send: Send, entry: dict[str, Any]) -> Send:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
        elif message["type"] == "http.response.body" and b"event: status_update\n" in message.get("body", b""):
            # mastodon-mock 0.6.1 names an edit ``status_update``; Mastodon's streaming server says ``status.update``.
            message = {**message, "body": message["body"].replace(b"event: status_update\n", b"event: status.update\n")}
        await send(message)

    return wrapped


async def _answer(
    send: Send, entry: dict[str, Any], status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    kind = b"text/html" if isinstance(body, bytes) else b"application/json; charset=utf-8"
    pairs = [(b"content-type", kind), (b"content-length", str(len(raw)).encode())]
    pairs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    entry["status"] = status
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})
