"""The HTTP side of the fake X API v2: routing, OAuth 1.0a verification, faults, latency, request log.

One ``ThreadingHTTPServer`` on 127.0.0.1. Each request is logged, may meet an
injected fault, must carry a valid OAuth 1.0a signature from an account the
sandbox created, is counted against that account's rate-limit window, and is
answered with X's headers and body shapes.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import traceback
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

from sandboxes.base import PlatformHandler, PlatformServer
from sandboxes.x import errors as err
from sandboxes.x.state import XState

CLOCK_SKEW = 300  # seconds of oauth_timestamp drift X tolerates
API_VERSION = "2.167"  # X's OpenAPI document of August 2026, whose shapes this server speaks
TIMEOUT_DELAY = 2.0  # how long a "timeout" fault holds the answer back, unless told otherwise


def _route(name: str) -> tuple[str, re.Pattern[str], str]:
    """An endpoint named as in X's docs ("POST /2/users/:id/retweets") -> (method, path pattern, name)."""
    method, path = name.split(" ", 1)
    return method, re.compile(path.replace(":tweet_id", r"(\d+)").replace(":id", r"(\d+)") + "$"), name


ROUTES = [
    _route(name)
    for name in (
        "POST /2/tweets",
        "DELETE /2/tweets/:id",
        "GET /2/tweets/search/recent",
        "GET /2/users/me",
        "GET /2/users/:id/tweets",
        "POST /2/users/:id/retweets",
        "DELETE /2/users/:id/retweets/:tweet_id",
        "POST /2/media/upload",
        "GET /2/media/upload",
        "POST /2/media/upload/initialize",
        "POST /2/media/upload/:id/append",
        "POST /2/media/upload/:id/finalize",
        "POST /2/media/metadata",
        "POST /2/media/subtitles",
    )
]


class XHandler(PlatformHandler):
    server: XHTTPServer

    def _serve(self) -> None:
        state, method = self.server.state, self.command
        url, query, body = self._request()
        entry: dict[str, Any] = {
            "method": method,
            "path": url.path,
            "query": query,
            "status": 0,
            "user": None,
            "at": state.wall(),
        }
        delay, headers = 0.0, {}
        try:
            fault = state.faults.take(url.path)
            if fault is not None and fault.kind != "timeout":
                raise _fault_error(fault.kind, fault.retry_after, state.wall())
            if fault is not None:
                delay = TIMEOUT_DELAY if fault.retry_after is None else fault.retry_after
            user_id, app_id = self._authenticate(method, body)
            entry["user"] = state.users[user_id].username
            route = next(
                ((key, match) for m, pattern, key in ROUTES if m == method and (match := pattern.match(url.path))), None
            )
            if route is None:
                raise err.problem(
                    404,
                    "resource-not-found",
                    "Not Found Error",
                    "Sorry, that page does not exist",
                    resource_type="route",
                )
            key, match = route
            headers = {
                **state.rates.charge(user_id, key, app_id),
                "x-access-level": "read-write",
                "api-version": API_VERSION,
            }
            status, answer = self._dispatch(key, match.groups(), user_id, query, body)
            if status == 201:
                headers["location"] = f"http://{self.headers.get('Host')}/2/tweets/{answer['data']['id']}"
        except err.ApiError as exc:
            status, answer, headers = exc.status, exc.body, {**headers, **exc.headers}
        except Exception:  # noqa: BLE001  (a bug here should look like X's 500, not a dropped connection)
            traceback.print_exc()
            status, answer = 500, err.internal().body
        entry["status"] = status
        if state.record_wire:
            entry["wire"] = {
                "content_type": self.headers.get("Content-Type") or "",
                "body": body,
                "host": self.headers.get("Host") or "",
                "response_headers": dict(headers),
                "response_body": answer,
            }
        with state.lock:
            state.log.append(entry)
        if delay:
            time.sleep(delay)  # the work is done; only the answer is late, as when X times out
        self._reply(status, answer, headers)

    do_GET = do_POST = do_DELETE = _serve

    def _authenticate(self, method: str, body: bytes) -> tuple[str, str]:
        """The user id and the app (consumer key) of a correctly signed request, else X's 401."""
        state = self.server.state
        header = self.headers.get("Authorization", "")
        if not header.startswith("OAuth "):
            raise err.unauthorized()
        try:
            oauth = {k: unquote(v) for k, v in parse_authorization_header(header)}
        except ValueError:
            raise err.unauthorized() from None
        creds = state.by_token.get(oauth.get("oauth_token", ""))
        stamp = oauth.get("oauth_timestamp", "")
        if (
            creds is None
            or creds.consumer_key != oauth.get("oauth_consumer_key")
            or oauth.get("oauth_signature_method") != "HMAC-SHA1"
            or not stamp.isdigit()
            or abs(time.time() - int(stamp)) > CLOCK_SKEW  # signatures carry real time, whatever the sandbox clock
        ):
            raise err.unauthorized()
        form = None
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            form = body.decode("utf-8", "replace")
        uri = f"http://{self.headers.get('Host')}{self.path}"
        request = _Signed(
            method,
            uri,
            oauth.get("oauth_signature", ""),
            oauth_signature.collect_parameters(
                uri_query=urlsplit(self.path).query, body=form, headers={"Authorization": header}
            ),
        )
        if not oauth_signature.verify_hmac_sha1(request, creds.consumer_secret, creds.token_secret):
            raise err.unauthorized()
        nonce = (creds.consumer_key, oauth.get("oauth_nonce", ""))
        with state.lock:
            if nonce in state.seen_nonces:
                raise err.unauthorized()  # a replayed request
            state.seen_nonces.add(nonce)
        return creds.user_id, creds.consumer_key

    def _dispatch(
        self, key: str, args: tuple[str, ...], user_id: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict]:
        state, media = self.server.state, self.server.state.media
        if key == "POST /2/tweets":
            return 201, state.create_tweet(user_id, self._json(body))
        if key == "DELETE /2/tweets/:id":
            return 200, state.delete_tweet(user_id, args[0])
        if key == "GET /2/tweets/search/recent":
            return 200, state.search_recent(query)
        if key == "GET /2/users/me":
            return 200, state.me(user_id, query)
        if key == "GET /2/users/:id/tweets":
            return 200, state.user_tweets(args[0], query)
        if key == "POST /2/users/:id/retweets":
            return 200, state.retweet(user_id, args[0], self._json(body))
        if key == "DELETE /2/users/:id/retweets/:tweet_id":
            return 200, state.unretweet(user_id, args[0], args[1])
        if key == "GET /2/media/upload":
            if query.get("command", "STATUS") != "STATUS":
                raise err.invalid("command must be STATUS", "command", query.get("command"))
            return 200, media.status(user_id, query.get("media_id", ""))
        if key == "POST /2/media/upload/initialize":
            return 200, media.initialize(user_id, self._fields(body))
        if key == "POST /2/media/upload/:id/append":
            fields = self._fields(body)
            return 200, media.append(user_id, args[0], fields.get("segment_index"), _chunk(fields))
        if key == "POST /2/media/upload/:id/finalize":
            return 200, media.finalize(user_id, args[0])
        if key == "POST /2/media/metadata":
            return 200, media.set_alt(user_id, self._json(body))
        if key == "POST /2/media/subtitles":
            return 200, media.add_subtitles(user_id, self._json(body))
        fields = {**query, **self._fields(body)}  # POST /2/media/upload: one-shot, or the older command= form
        command = str(fields.get("command") or "")
        if command == "INIT":
            return 200, media.initialize(user_id, fields)
        if command == "APPEND":
            media.append(user_id, str(fields.get("media_id")), fields.get("segment_index"), _chunk(fields))
            return 204, {}
        if command == "FINALIZE":
            return 200, media.finalize(user_id, str(fields.get("media_id")))
        if command:
            raise err.invalid(f"Unknown command {command}", "command", command)
        return 200, media.upload(user_id, fields)

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise err.invalid("Request body is not valid JSON", "body", "") from None
        if not isinstance(value, dict):
            raise err.invalid("Request body must be a JSON object", "body", "")
        return value

    def _fields(self, body: bytes) -> dict[str, Any]:
        kind = self.headers.get("Content-Type") or ""
        if kind.startswith("multipart/form-data"):
            return _multipart(kind, body)
        if kind.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return self._json(body) if body else {}

    def _reply(self, status: int, answer: dict, headers: dict[str, str]) -> None:
        payload = b"" if status == 204 else json.dumps(answer).encode()
        kind = err.PROBLEM_JSON if status >= 400 else "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a "timeout" fault)


class _Signed:
    """What oauthlib's verifier reads from a request."""

    def __init__(self, method: str, uri: str, signature: str, params: list[tuple[str, str]]) -> None:
        self.http_method, self.uri, self.signature, self.params = method, uri, signature, params


def _fault_error(kind: str, retry_after: float | None, now: float) -> err.ApiError:
    if kind == "rate_limited":
        reset = math.ceil(now + (60 if retry_after is None else retry_after))
        return err.too_many(
            {"x-rate-limit-limit": "300", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
        )
    if kind == "unavailable":
        return err.unavailable()
    if kind == "auth":
        return err.unauthorized()
    if kind == "rejected":
        return err.not_permitted()
    if kind == "duplicate":
        return err.duplicate()
    raise ValueError(f"unknown fault {kind!r}")


def _chunk(fields: dict[str, Any]) -> bytes:
    media = fields.get("media")
    if isinstance(media, bytes):
        return media
    if isinstance(media, str):  # the JSON form carries the chunk base64-encoded
        try:
            return base64.b64decode(media, validate=True)
        except ValueError:
            raise err.invalid("media must be base64", "media", "") from None
    raise err.invalid("The media field is required.", "media", "")


_DISPOSITION = re.compile(rb'name="([^"]*)"')


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise err.invalid("multipart body without boundary", "body", "")
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = _DISPOSITION.search(head)
        if not name:
            continue
        value = value[:-2] if value.endswith(b"\r\n") else value
        is_file = b"filename=" in head
        fields[name.group(1).decode()] = value if is_file else value.decode("utf-8", "replace")
    return fields


class XHTTPServer(PlatformServer):
    handler = XHandler
    state: XState
