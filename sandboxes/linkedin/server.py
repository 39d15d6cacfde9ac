"""The fake LinkedIn REST API: state, routing, checks and faults, after LinkedIn's reference pages.

Shapes follow learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/ (posts-api,
images-api, videos-api, little-text-format), .../marketing/versioning (``LinkedIn-Version`` required, 426 for a
version no longer served) and .../shared/authentication/token-introspection. What the server enforces:

- every /rest call carries a valid bearer token, ``LinkedIn-Version`` (YYYYMM, active) and
  ``X-Restli-Protocol-Version: 2.0.0``; a post's author is the token's organization (else 403);
- ``commentary`` is read as little text: an unescaped reserved character that starts no hashtag or mention
  cuts the post there, as LinkedIn does, so a test sees what a reader would;
- identical content from the same author again is 422 "Content is a duplicate of urn:li:share:N";
- images are usable once their bytes are PUT; videos once every part is PUT, finalized with the parts' ETags
  in order, and processed (``processing_polls`` status reads in PROCESSING); captions must be SRT;
- reading an author's posts (``q=author``) needs r_organization_social.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandboxes.base import FaultQueue, PlatformHandler, PlatformServer

PART_SIZE = 4 * 1024 * 1024  # Videos API: uploadInstructions split a file into 4,194,304-byte parts
ACTIVE_SINCE = "202601"  # older versions are sunset here (LinkedIn serves each for about a year)
TIMEOUT_DELAY = 2.0
RESERVED = set("\\|{}@[]()<>#*_~")
SCOPES = ("w_organization_social", "r_organization_social")
_MENTION = re.compile(r"@\[[^\]\\]*\]\(urn:li:(?:person|organization):[^)\s]+\)")
_HASHTAG = re.compile(r"#[^\W_]+")
_SRT_TIME = re.compile(r"^\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", re.M)


class Problem(Exception):
    """An answer LinkedIn gives instead of a result: status, its JSON body, extra headers."""

    def __init__(self, status: int, message: str, code: str = "", field: str = "", headers: dict | None = None):
        body: dict[str, Any] = {"status": status, "message": message}
        if code:
            body["code"] = code
        if field:
            body["errorDetails"] = {
                "inputErrors": [{"description": message, "input": {"inputPath": {"fieldPath": field}}, "code": code}]
            }
        super().__init__(message)
        self.status, self.body, self.headers = status, body, headers or {}


def displayed(commentary: str) -> str:
    """What LinkedIn shows for little-text ``commentary``: escapes resolved, cut at the first stray reserved character."""
    out, i = [], 0
    while i < len(commentary):
        ch = commentary[i]
        if ch == "\\" and i + 1 < len(commentary) and commentary[i + 1] in RESERVED:
            out.append(commentary[i + 1])
            i += 2
            continue
        if ch == "#" and (i == 0 or commentary[i - 1].isspace()) and (m := _HASHTAG.match(commentary, i)):
            out.append(m.group(0))
            i = m.end()
            continue
        if ch == "@" and (m := _MENTION.match(commentary, i)):
            out.append(m.group(0)[2 : m.group(0).index("]")])
            i = m.end()
            continue
        if ch in RESERVED:
            break  # the documented failure: the rest of the post is lost
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class Org:
    id: str
    name: str
    token: str
    client_id: str
    client_secret: str
    refresh_token: str
    scopes: set[str] = field(default_factory=lambda: set(SCOPES))
    expires_at: float = 0.0


@dataclass
class Video:
    urn: str
    owner: str
    size: int
    parts: list[tuple[int, int]]
    etags: dict[int, str] = field(default_factory=dict)
    data: dict[int, bytes] = field(default_factory=dict)
    captions: str | None = None
    status: str = "WAITING_UPLOAD"
    polls_left: int = 0
    finalized_with: list[str] = field(default_factory=list)


class LinkedInState:
    def __init__(self, wall: Callable[[], float], processing_polls: int) -> None:
        self.wall, self.processing_polls = wall, processing_polls
        self.lock = threading.RLock()
        self.orgs: dict[str, Org] = {}
        self.by_token: dict[str, str] = {}
        self.posts: list[dict[str, Any]] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.videos: dict[str, Video] = {}
        self.uploads: dict[str, tuple[str, str, int]] = {}  # path token -> (kind, urn, part)
        self.faults = FaultQueue()
        self.log: list[dict[str, Any]] = []
        self.part_size = PART_SIZE
        self.active_since = ACTIVE_SINCE
        self.ids = itertools.count(7_100_000_000_000_000_000)

    def next_id(self) -> int:
        with self.lock:
            return next(self.ids)

    def create_org(self, name: str) -> Org:
        org = Org(
            id=str(self.next_id() % 100_000_000),
            name=name,
            token="AQ" + secrets.token_urlsafe(30),
            client_id="77" + secrets.token_hex(6),
            client_secret=secrets.token_urlsafe(12),
            refresh_token="AQR" + secrets.token_urlsafe(30),
            expires_at=self.wall() + 60 * 86400,
        )
        with self.lock:
            self.orgs[org.id] = org
            self.by_token[org.token] = org.id
        return org

    # ---- posts ----

    def create_post(self, org: Org, body: dict[str, Any]) -> str:
        author = body.get("author")
        if author != f"urn:li:organization:{org.id}":
            raise Problem(
                403, "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260501", "ACCESS_DENIED"
            )
        if "w_organization_social" not in org.scopes:
            raise Problem(403, "Not enough permissions to access: partnerApiPostsExternal.CREATE", "ACCESS_DENIED")
        for key in ("visibility", "distribution", "lifecycleState"):
            if key not in body:
                raise Problem(422, f"/{key} :: field is required but not found", "FIELD_REQUIRED", f"/{key}")
        commentary = body.get("commentary")
        parent = (body.get("reshareContext") or {}).get("parent")
        if not commentary and not parent:
            raise Problem(422, "/commentary :: field is required", "FIELD_REQUIRED", "/commentary")
        if commentary and len(commentary) > 3000:
            raise Problem(422, "/commentary :: length exceeds 3000", "INVALID_VALUE", "/commentary")
        media = self._media(org, body.get("content") or {})
        with self.lock:
            if parent and not any(p["id"] == parent for p in self.posts):
                raise Problem(
                    422, f"/reshareContext/parent :: {parent} does not exist", "INVALID_VALUE", "/reshareContext/parent"
                )
            for post in self.posts:
                if post["author"] == author and post["commentary"] == (commentary or "") and post["parent"] == parent:
                    raise Problem(422, f"Content is a duplicate of {post['id']}", "DUPLICATE_POST")
            kind = "ugcPost" if any(m["kind"] == "video" for m in media) else "share"
            urn = f"urn:li:{kind}:{self.next_id()}"
            self.posts.append(
                {
                    "id": urn,
                    "author": author,
                    "org": org.id,
                    "commentary": commentary or "",
                    "parent": parent,
                    "media": media,
                    "content": body.get("content"),
                    "created": self.wall(),
                }
            )
        return urn

    def _media(self, org: Org, content: dict[str, Any]) -> list[dict[str, Any]]:
        owner = f"urn:li:organization:{org.id}"
        items: list[dict[str, Any]] = []
        if "multiImage" in content:
            images = content["multiImage"].get("images") or []
            if not 2 <= len(images) <= 20:
                raise Problem(
                    422, "/content/multiImage/images :: 2 to 20 images", "INVALID_VALUE", "/content/multiImage/images"
                )
            items = [dict(i) for i in images]
        elif "media" in content:
            items = [dict(content["media"])]
        out = []
        with self.lock:
            for n, item in enumerate(items):
                urn = str(item.get("id", ""))
                where = "/content/media/id" if "media" in content else f"/content/multiImage/images/{n}/id"
                if urn.startswith("urn:li:image:"):
                    image = self.images.get(urn)
                    if image is None or image["owner"] != owner or image["status"] != "AVAILABLE":
                        raise Problem(
                            422, f"{where} :: {urn} is not an available image of the author", "INVALID_VALUE", where
                        )
                    out.append(
                        {"kind": "image", "id": urn, "alt": item.get("altText", ""), "bytes": len(image["data"])}
                    )
                elif urn.startswith("urn:li:video:"):
                    video = self.videos.get(urn)
                    if video is None or video.owner != owner or video.status != "AVAILABLE":
                        raise Problem(
                            422, f"{where} :: {urn} is not an available video of the author", "INVALID_VALUE", where
                        )
                    out.append(
                        {
                            "kind": "video",
                            "id": urn,
                            "alt": item.get("altText", ""),
                            "bytes": video.size,
                            "captions": video.captions is not None,
                            "parts": len(video.parts),
                            "etags": list(video.finalized_with),
                        }
                    )
                else:
                    raise Problem(422, f"{where} :: not an image or video URN", "INVALID_VALUE", where)
        return out

    def element(self, post: dict[str, Any]) -> dict[str, Any]:
        """A post as the Posts API returns it."""
        element: dict[str, Any] = {
            "id": post["id"],
            "author": post["author"],
            "commentary": post["commentary"],
            "visibility": "PUBLIC",
            "lifecycleState": "PUBLISHED",
            "createdAt": int(post["created"] * 1000),
            "publishedAt": int(post["created"] * 1000),
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
        }
        if post["content"]:
            element["content"] = post["content"]
        if post["parent"]:
            element["reshareContext"] = {"parent": post["parent"], "root": post["parent"]}
        return element

    # ---- uploads ----

    def upload_url(self, base: str, kind: str, urn: str, part: int = 0) -> str:
        token = secrets.token_urlsafe(12)
        with self.lock:
            self.uploads[token] = (kind, urn, part)
        return f"{base}/dms-uploads/{token}"

    def put(self, token: str, data: bytes) -> str:
        """Store uploaded bytes; the ETag a part answers with."""
        with self.lock:
            if token not in self.uploads:
                raise Problem(404, "No such upload")
            kind, urn, part = self.uploads[token]
            if kind == "image":
                self.images[urn].update(data=data, status="AVAILABLE")
                return ""
            video = self.videos[urn]
            if kind == "captions":
                text = data.decode("utf-8", "replace")
                if not _SRT_TIME.search(text) or text.lstrip().upper().startswith("WEBVTT"):
                    raise Problem(400, "Captions must be an SRT file")
                video.captions = text
                return ""
            first, last = video.parts[part]
            if len(data) != last - first + 1:
                raise Problem(400, f"Part {part} must be {last - first + 1} bytes, got {len(data)}")
            etag = f"/ETag{hashlib.md5(data, usedforsecurity=False).hexdigest()}{part}"
            video.etags[part], video.data[part] = etag, data
            return etag


class LinkedInHandler(PlatformHandler):
    server: LinkedInHTTPServer

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _serve(self) -> None:
        state = self.server.state
        url, query, body = self._request()
        entry: dict[str, Any] = {
            "method": self.command,
            "path": url.path,
            "query": query,
            "status": 0,
            "at": state.wall(),
        }
        headers: dict[str, str] = {}
        delay = 0.0
        try:
            fault = state.faults.take(url.path)
            if fault is not None and fault.kind == "timeout":
                delay = fault.delay if fault.delay is not None else TIMEOUT_DELAY
            elif fault is not None:
                raise self._fault(fault.kind, fault.retry_after)
            status, answer, headers = self._dispatch(url.path, query, body)
        except Problem as exc:
            status, answer, headers = exc.status, exc.body, exc.headers
        except Exception:  # noqa: BLE001  (a bug here should look like LinkedIn's 500)
            traceback.print_exc()
            status, answer = 500, {"status": 500, "message": "Internal Server Error"}
        entry["status"] = status
        entry["linkedin_version"] = self.headers.get("LinkedIn-Version")
        with state.lock:
            state.log.append(entry)
        if delay:
            time.sleep(delay)  # the work is done; only the answer is late
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = _serve

    def _fault(self, kind: str, retry_after: float | None) -> Problem:
        if kind == "rate_limited":
            extra = {} if retry_after is None else {"Retry-After": str(int(retry_after))}
            return Problem(
                429,
                "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
                "TOO_MANY_REQUESTS",
                headers=extra,
            )
        if kind == "unavailable":
            return Problem(503, "Service Unavailable")
        if kind == "auth":
            return Problem(401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN")
        if kind == "rejected":
            return Problem(
                422, "/commentary :: ERROR :: /commentary :: is not a valid little text", "INVALID_VALUE", "/commentary"
            )
        if kind == "duplicate":
            with self.server.state.lock:
                last = self.server.state.posts[-1]["id"] if self.server.state.posts else "urn:li:share:1"
            return Problem(422, f"Content is a duplicate of {last}", "DUPLICATE_POST")
        if kind == "echo_auth":
            return Problem(502, f"Bad gateway (request had Authorization: {self.headers.get('Authorization')})")
        raise ValueError(kind)

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise Problem(400, "Malformed JSON body") from None
        if not isinstance(data, dict):
            raise Problem(400, "Body must be a JSON object")
        return data

    def _org(self) -> Org:
        state = self.server.state
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with state.lock:
            org = state.orgs.get(state.by_token.get(token, ""))
        if org is None:
            raise Problem(401, "Invalid access token", "INVALID_ACCESS_TOKEN")
        if org.expires_at <= state.wall():
            raise Problem(401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN")
        return org

    def _versioned(self) -> None:
        version = self.headers.get("LinkedIn-Version")
        if not version:
            raise Problem(
                400,
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        if not re.fullmatch(r"20\d\d(0[1-9]|1[0-2])", version) or version < self.server.state.active_since:
            raise Problem(426, f"Requested version {version} is not active", "NONEXISTENT_VERSION")
        if self.headers.get("X-Restli-Protocol-Version") != "2.0.0":
            raise Problem(400, "X-Restli-Protocol-Version 2.0.0 is required", "INVALID_PROTOCOL_VERSION")

    def _dispatch(self, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        state, method = self.server.state, self.command
        if path.startswith("/oauth/v2/") and method == "POST":
            return self._oauth(path, dict(parse_qsl(body.decode())))
        if path.startswith("/dms-uploads/") and method == "PUT":
            self._org()  # LinkedIn's upload URLs take the same bearer token
            etag = state.put(path.rsplit("/", 1)[1], body)
            return 201, None, ({"ETag": etag} if etag else {})
        if not path.startswith("/rest/"):
            raise Problem(404, "Not Found")
        org = self._org()
        self._versioned()
        owner = f"urn:li:organization:{org.id}"
        if path == "/rest/posts" and method == "POST":
            urn = state.create_post(org, self._json(body))
            return 201, None, {"x-restli-id": urn, "x-linkedin-id": urn}
        if path == "/rest/posts" and method == "GET" and query.get("q") == "author":
            if "r_organization_social" not in org.scopes or query.get("author") != owner:
                raise Problem(
                    403, "Not enough permissions to access: partnerApiPostsExternal.FINDER-author", "ACCESS_DENIED"
                )
            count = int(query.get("count") or 10)
            with state.lock:
                mine = [state.element(p) for p in reversed(state.posts) if p["author"] == owner][:count]
            return 200, {"elements": mine, "paging": {"start": 0, "count": count, "links": []}}, {}
        if path.startswith("/rest/organizations/") and method == "GET":
            org_id = unquote(path.rsplit("/", 1)[1])
            if org_id != org.id:
                raise Problem(403, "Not enough permissions to access organization", "ACCESS_DENIED")
            return 200, {"id": int(org.id), "localizedName": org.name, "vanityName": org.name}, {}
        if path == "/rest/images" and method == "POST" and query.get("action") == "initializeUpload":
            request = self._json(body).get("initializeUploadRequest") or {}
            if request.get("owner") != owner:
                raise Problem(403, "Not enough permissions to upload for this owner", "ACCESS_DENIED")
            urn = f"urn:li:image:D4E10AQ{state.next_id()}"
            with state.lock:
                state.images[urn] = {"owner": owner, "data": b"", "status": "WAITING_UPLOAD"}
            expires = int((state.wall() + 86400) * 1000)
            value = {
                "uploadUrlExpiresAt": expires,
                "uploadUrl": state.upload_url(self.base, "image", urn),
                "image": urn,
            }
            return 200, {"value": value}, {}
        if path == "/rest/videos" and method == "POST":
            return self._videos(query.get("action", ""), self._json(body), owner)
        if path.startswith("/rest/videos/") and method == "GET":
            urn = unquote(path[len("/rest/videos/") :])
            with state.lock:
                video = state.videos.get(urn)
                if video is None or video.owner != owner:
                    raise Problem(404, f"Video {urn} not found", "NOT_FOUND")
                if video.status == "PROCESSING":
                    video.polls_left -= 1
                    if video.polls_left < 0:
                        video.status = "AVAILABLE"
                return 200, {"id": urn, "owner": owner, "status": video.status, "duration": 0}, {}
        raise Problem(404, f"No route {method} {path}")

    def _videos(self, action: str, body: dict[str, Any], owner: str) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if action == "initializeUpload":
            request = body.get("initializeUploadRequest") or {}
            if request.get("owner") != owner:
                raise Problem(403, "Not enough permissions to upload for this owner", "ACCESS_DENIED")
            size = request.get("fileSizeBytes")
            if not isinstance(size, int) or size <= 0:
                raise Problem(
                    422,
                    "/initializeUploadRequest/fileSizeBytes :: required",
                    "FIELD_REQUIRED",
                    "/initializeUploadRequest/fileSizeBytes",
                )
            step = state.part_size
            parts = [(first, min(first + step, size) - 1) for first in range(0, size, step)]
            urn = f"urn:li:video:C5F10AQ{state.next_id()}"
            with state.lock:
                state.videos[urn] = Video(urn, owner, size, parts)
            value = {
                "uploadUrlsExpireAt": int((state.wall() + 86400) * 1000),
                "video": urn,
                "uploadInstructions": [
                    {"uploadUrl": state.upload_url(self.base, "part", urn, n), "firstByte": f, "lastByte": last}
                    for n, (f, last) in enumerate(parts)
                ],
                "uploadToken": "",
                "thumbnailUploadUrl": "",
                "captionsUploadUrl": state.upload_url(self.base, "captions", urn)
                if request.get("uploadCaptions")
                else "",
            }
            return 200, {"value": value}, {}
        if action == "finalizeUpload":
            request = body.get("finalizeUploadRequest") or {}
            with state.lock:
                video = state.videos.get(str(request.get("video")))
                if video is None or video.owner != owner:
                    raise Problem(404, "Video not found", "NOT_FOUND")
                expected = [video.etags.get(n) for n in range(len(video.parts))]
                if request.get("uploadedPartIds") != expected or None in expected:
                    raise Problem(400, "uploadedPartIds must list every part's ETag in order", "INVALID_VALUE")
                video.finalized_with = list(request["uploadedPartIds"])
                video.status, video.polls_left = "PROCESSING", state.processing_polls
            return 200, None, {}
        raise Problem(400, f"Unknown action {action!r}")

    def _oauth(self, path: str, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        with state.lock:
            org = next((o for o in state.orgs.values() if o.client_id == form.get("client_id")), None)
        if org is None or org.client_secret != form.get("client_secret"):
            raise Problem(401, "Client authentication failed", "invalid_client")
        if path == "/oauth/v2/introspectToken":
            if form.get("token") != org.token:
                return 200, {"active": False}, {}
            return (
                200,
                {
                    "active": org.expires_at > state.wall(),
                    "client_id": org.client_id,
                    "authorized_at": int(org.expires_at - 60 * 86400),
                    "created_at": int(org.expires_at - 60 * 86400),
                    "status": "active",
                    "expires_at": int(org.expires_at),
                    "scope": ",".join(sorted(org.scopes)),
                    "auth_type": "3L",
                },
                {},
            )
        if path == "/oauth/v2/accessToken" and form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != org.refresh_token:
                raise Problem(400, "The provided authorization grant is invalid", "invalid_grant")
            with state.lock:
                state.by_token.pop(org.token, None)
                org.token, org.expires_at = "AQ" + secrets.token_urlsafe(30), state.wall() + 60 * 86400
                state.by_token[org.token] = org.id
            return (
                200,
                {
                    "access_token": org.token,
                    "expires_in": 60 * 86400,
                    "refresh_token": org.refresh_token,
                    "refresh_token_expires_in": 300 * 86400,
                },
                {},
            )
        raise Problem(400, "unsupported_grant_type")


class LinkedInHTTPServer(PlatformServer):
    handler = LinkedInHandler
    state: LinkedInState
