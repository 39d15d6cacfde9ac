"""The HTTP side of the Graph sandbox: one server for Facebook Pages, Instagram and Threads.

Each request: logged; its path must start with a pinned version (``/v24.0/`` for Facebook and Instagram,
``/v1.0/`` for Threads, as graph.threads.net); it may meet an injected fault; its token (``access_token``
parameter or ``Authorization: Bearer``/``OAuth`` header, both documented) must belong to an account here and not
have expired (190); its account's call usage is counted and reported in ``X-App-Usage`` and (Facebook,
Instagram) ``X-Business-Use-Case-Usage``, and at 100% it is refused with the rate-limit codes (4, 32, 80002).
Errors use the documented envelope ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.

"timeout" faults do the work and answer late; ``crash`` hooks do the work and drop the connection with no
answer at all (a server that died between storing the post and replying).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

from sandboxes.base import PlatformHandler, PlatformServer
from sandboxes.graph import state as st
from sandboxes.graph.state import Account, Container, GraphError, GraphState, Post, Upload

GRAPH_VERSION = "v24.0"  # the version the bot pins (bot.platforms.graph.version)
THREADS_VERSION = "v1.0"
VERSIONS = {GRAPH_VERSION: ("facebook", "instagram"), THREADS_VERSION: ("threads",)}
TIMEOUT_DELAY = 2.0


class GraphHandler(PlatformHandler):
    server: GraphHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        state = self.server.state
        url, params, body = self._request()
        ctype = self.headers.get("Content-Type", "")
        if body and ctype.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        elif body and ctype.startswith("application/json"):
            params.update(json.loads(body))
        elif body and ctype.startswith("multipart/form-data"):
            params.update(_multipart(ctype, body))
        entry = {"method": self.command, "path": url.path, "query": _loggable(params), "status": 0, "account": None}
        with state.lock:
            state.log.append(entry)
        delay, headers, crash = 0.0, {}, False
        try:
            fault = state.faults.take(url.path)
            if fault is not None and fault.kind != "timeout":
                raise _fault_error(fault.kind, fault.retry_after, self.headers.get("Authorization", ""))
            if fault is not None:
                delay = (
                    TIMEOUT_DELAY
                    if fault.delay is None and fault.retry_after is None
                    else (fault.delay or fault.retry_after or TIMEOUT_DELAY)
                )
            parts = url.path.strip("/").split("/")
            if parts[0] == "rupload":  # Reels bytes go to rupload.facebook.com, under the same token
                parts = parts[1:]
                raw = True
            else:
                raw = False
            if not parts or parts[0] not in VERSIONS:
                raise GraphError(f"Unknown path components: /{parts[0] if parts else ''}", 2500)
            token = params.pop("access_token", None) or _bearer(self.headers.get("Authorization", ""))
            account = state.authenticate(token)
            entry["account"] = account.username
            if account.product not in VERSIONS[parts[0]]:
                raise GraphError(f"Unsupported version {parts[0]} for this token", 2635)
            usage = state.count_call(account)
            headers = _usage_headers(account, usage)
            if usage >= 100:
                raise _throttled(account)
            answer = route(state, account, self.command, parts[1:], params, body if raw else None, self.headers)
            status = 200
            with state.lock:
                for hook in state.crashes:
                    if hook[0] in url.path and self.command == "POST":
                        hook[1] -= 1
                        crash = True
                state.crashes = [h for h in state.crashes if h[1] > 0]
        except GraphError as exc:
            status, answer = exc.status, exc.body()
        entry["status"] = status
        if crash:
            entry["status"] = "crashed"
            self.close_connection = True
            self.connection.close()  # stored, never answered
            return
        if delay:
            time.sleep(delay)
        self._reply(status, answer, headers)

    def _reply(self, status: int, answer: Any, headers: dict[str, str]) -> None:
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "oauth") else None


def _loggable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in params.items() if k != "access_token"}


def _usage_headers(account: Account, usage: int) -> dict[str, str]:
    app = json.dumps({"call_count": usage, "total_cputime": usage // 2, "total_time": usage // 2})
    headers = {"X-App-Usage": app}
    if account.product != "threads":
        regain = 0 if usage < 100 else 60  # minutes; the header's estimated_time_to_regain_access
        kind = "pages" if account.product == "facebook" else "instagram"
        buc = {
            account.id: [
                {
                    "type": kind,
                    "call_count": usage,
                    "total_cputime": usage // 2,
                    "total_time": usage // 2,
                    "estimated_time_to_regain_access": regain,
                }
            ]
        }
        headers["X-Business-Use-Case-Usage"] = json.dumps(buc)
    return headers


def _throttled(account: Account) -> GraphError:
    # Page (32), Instagram business use case (80002), application (4): the rate limiting guide's codes.
    code = {"facebook": 32, "instagram": 80002}.get(account.product, 4)
    return GraphError(f"(#{code}) Application request limit reached", code, transient=True)


def _fault_error(kind: str, retry_after: float | None, authorization: str) -> GraphError:
    if kind == "rate_limited":
        return GraphError("(#4) Application request limit reached", 4, transient=True)
    if kind == "unavailable":
        return GraphError("(#2) Service temporarily unavailable", 2, status=503, transient=True)
    if kind == "auth":
        return GraphError("Error validating access token: The session has been invalidated.", 190, 460)
    if kind == "rejected":
        return GraphError("(#100) Invalid parameter", 100, kind="OAuthException")
    if kind == "duplicate":
        return GraphError("(#506) Duplicate status message", 506)
    if kind == "echo_auth":
        return GraphError(f"Bad gateway; request had Authorization: {authorization}", 1, status=502)
    raise ValueError(kind)


def _need(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise GraphError(f"(#100) The parameter {name} is required", 100)
    return str(value)


def _fields(params: dict[str, Any], default: str) -> list[str]:
    return [f.strip() for f in str(params.get("fields") or default).split(",") if f.strip()]


def _pick(values: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: values[k] for k in ["id", *fields] if k in values}


def route(
    state: GraphState,
    me: Account,
    method: str,
    parts: list[str],
    params: dict[str, Any],
    raw: bytes | None,
    headers: Any,
) -> Any:
    """Dispatch ``/{node}`` and ``/{node}/{edge}`` for the account ``me`` the token belongs to."""
    if not parts:
        raise GraphError("Unknown path components: /", 2500)
    node = me.id if parts[0] == "me" else parts[0]
    edge = parts[1] if len(parts) > 1 else None
    with state.lock:
        if raw is not None:
            return _reel_bytes(state, me, node, raw, headers)
        if node == "debug_token":
            token = state.by_token.get(_need(params, "input_token"))
            target = token or me
            return {
                "data": {
                    "app_id": "1000000000000001",
                    "type": "PAGE" if target.product == "facebook" else "USER",
                    "is_valid": token is not None and target.token_expires > state.wall(),
                    "expires_at": int(target.token_expires),
                    "data_access_expires_at": int(target.token_expires + 30 * st.DAY),
                    "scopes": sorted(target.scopes),
                    "user_id": target.id,
                }
            }
        if node == "refresh_access_token":
            grant = {"instagram": "ig_refresh_token", "threads": "th_refresh_token"}.get(me.product)
            if params.get("grant_type") != grant:
                raise GraphError("(#100) Unsupported grant_type", 100)
            state.refresh(me)
            return {"access_token": me.token, "token_type": "bearer", "expires_in": int(60 * st.DAY)}
        if node == "keyword_search" and me.product == "threads":
            return _keyword_search(state, me, params)
        if node == "profile_lookup" and me.product == "threads":
            return _profile_lookup(state, me, params)
        if node == me.id:
            return _own_edge(state, me, method, edge, params)
        return _object(state, me, method, node, edge, params)


def _own_edge(state: GraphState, me: Account, method: str, edge: str | None, params: dict[str, Any]) -> Any:
    if edge is None:
        values = {"id": me.id, "username": me.username, "name": me.name}
        return _pick(values, _fields(params, "id,name" if me.product == "facebook" else "id,username"))
    if me.product == "instagram":
        if method == "POST" and edge == "media":
            return {"id": _create_container(state, me, params).id}
        if method == "POST" and edge == "media_publish":
            return {"id": _publish(state, me, _need(params, "creation_id"))}
        if edge == "content_publishing_limit":
            return _limit(state, me)
        if edge == "media":
            return _list(state, me, params, "id,caption,permalink,timestamp")
    if me.product == "threads":
        if method == "POST" and edge == "threads":
            return {"id": _create_container(state, me, params).id}
        if method == "POST" and edge == "threads_publish":
            return {"id": _publish(state, me, _need(params, "creation_id"))}
        if edge == "threads_publishing_limit":
            return _limit(state, me)
        if edge == "threads":
            return _list(state, me, params, "id,text,permalink,timestamp")
    if me.product == "facebook":
        if method == "POST" and edge == "feed":
            return {"id": _feed_post(state, me, params)}
        if method == "POST" and edge == "photos":
            return _photo(state, me, params)
        if method == "POST" and edge in ("videos", "video_reels"):
            return _video(state, me, params, reel=edge == "video_reels")
        if edge in ("published_posts", "feed", "posts"):
            if "pages_read_engagement" not in me.scopes:  # Page feed reference: reading needs this permission
                raise GraphError("(#10) This endpoint requires the 'pages_read_engagement' permission", 10)
            return _list(state, me, params, "id,message,created_time,permalink_url")
    raise GraphError(f"(#100) Tried accessing nonexisting field ({edge}) on node type ({me.product})", 100)


def _object(state: GraphState, me: Account, method: str, node: str, edge: str | None, params: dict[str, Any]) -> Any:
    if method == "POST" and edge == "repost" and me.product == "threads":
        original = state.posts.get(node)
        if original is None:
            raise _missing(node)
        post = _new_post(state, me, "", reshare_of=original.id)
        return {"id": post.id}
    if method == "POST" and edge == "captions":
        upload = state.uploads.get(node)
        if upload is None or upload.owner != me.id:
            raise _missing(node)
        upload.captions.append(str(params.get("locale") or params.get("default_locale") or "en_US"))
        return {"success": True}
    if method == "DELETE" and node in state.posts and state.posts[node].owner == me.id:
        del state.posts[node]
        return {"success": True}
    if method != "GET" or edge is not None:
        raise _missing(node)
    fields = _fields(params, "id")
    container = state.containers.get(node)
    if container is not None and container.owner == me.id:
        status = state.container_status(container)
        values: dict[str, Any] = {"id": container.id, "status_code": status}
        if me.product == "threads":
            values = {"id": container.id, "status": status, "error_message": container.error or None}
        else:
            values["status"] = f"{status}: {container.error}" if container.error else status
        return _pick(values, fields)
    found = state.posts.get(node)
    if found is not None:
        return _pick(_post_view(state, found), fields)
    upload = state.uploads.get(node)
    if upload is not None and upload.owner == me.id:
        values = {
            "id": upload.id,
            "status": {"video_status": "ready" if upload.finished else "upload_complete"},
            "published": upload.post_id is not None and state.posts[upload.post_id].kind != "draft",
            "post_id": upload.post_id,
            "description": upload.description,
        }
        return _pick(values, fields)
    raise _missing(node)


def _missing(node: str) -> GraphError:
    # The documented answer for an id that is not there or not yours: code 100, subcode 33.
    return GraphError(
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation.",
        100,
        33,
        kind="GraphMethodException",
    )


# ---- Instagram and Threads containers ----


def _create_container(state: GraphState, me: Account, params: dict[str, Any]) -> Container:
    instagram = me.product == "instagram"
    media_type = str(params.get("media_type") or ("IMAGE" if params.get("image_url") else "TEXT")).upper()
    text = str(params.get("caption" if instagram else "text") or "")
    carousel_item = str(params.get("is_carousel_item", "")).lower() == "true"
    media: list[dict[str, Any]] = []
    if instagram and media_type == "TEXT":
        raise GraphError("(#100) Only photo or video can be accepted as media type.", 100, 2207052)
    if instagram and media_type == "VIDEO" and not carousel_item:
        # Instagram takes feed video only as Reels since 2023 (content publishing guide).
        raise GraphError("(#100) The VIDEO media type is no longer supported. Use REELS.", 100, 2207067)
    if media_type == "IMAGE":
        data = st.fetch(_need(params, "image_url"), expect=("jpeg",) if instagram else ("jpeg", "png"), state=state)
        media.append({"kind": "image", "alt": str(params.get("alt_text") or ""), "bytes": len(data)})
    elif media_type in ("VIDEO", "REELS"):
        data = st.fetch(_need(params, "video_url"), expect=("mp4",), state=state)
        item = {"kind": "video", "alt": str(params.get("alt_text") or ""), "bytes": len(data)}
        if params.get("cover_url"):
            item["cover_bytes"] = len(st.fetch(str(params["cover_url"]), expect=("jpeg",), state=state))
        media.append(item)
    elif media_type == "CAROUSEL":
        children = [c for c in _need(params, "children").split(",") if c]
        if not 2 <= len(children) <= (10 if instagram else 20):
            raise GraphError("(#100) A carousel takes 2 to 10 items", 100, 2207028)
        for child_id in children:
            child = state.containers.get(child_id)
            if child is None or child.owner != me.id or not child.carousel_item:
                raise _missing(child_id)
            if state.container_status(child) != "FINISHED":
                raise GraphError("(#100) A carousel item is not ready", 100, 2207027 if instagram else None)
            media.extend(child.media)
    elif media_type != "TEXT":
        raise GraphError(f"(#100) Unsupported media_type {media_type}", 100)
    limit = 2200 if instagram else 500
    if len(text) > limit:
        raise GraphError(f"(#100) The caption is too long (limit {limit})", 100, 2207010 if instagram else None)
    container = Container(state.new_id(), me.id, media_type, text, media, state.wall(), carousel_item)
    if not instagram:
        container.is_spoiler_media, container.text_entities = _spoilers(params, media_type, text)
    if state.fail_processing > 0 and media_type != "TEXT":
        state.fail_processing -= 1
        container.status, container.error = "ERROR", "2207053 unknown upload error"
    state.containers[container.id] = container
    return container


def _spoilers(params: dict[str, Any], media_type: str, text: str) -> tuple[bool, list[dict[str, Any]]]:
    """A Threads container's spoilers (https://developers.facebook.com/documentation/threads/create-posts/spoilers):
    ``is_spoiler_media`` for IMAGE, VIDEO or CAROUSEL only, and ``text_entities``, a list of at most 10
    ``{entity_type: SPOILER, offset, length}`` ranges of the text."""
    media_spoiler = str(params.get("is_spoiler_media", "")).lower() == "true"
    if media_spoiler and media_type not in ("IMAGE", "VIDEO", "CAROUSEL"):
        raise GraphError(f"(#100) is_spoiler_media only works with IMAGE, VIDEO or CAROUSEL, not {media_type}", 100)
    raw = params.get("text_entities") or []
    try:
        entities = json.loads(raw) if isinstance(raw, str) else list(raw)
    except ValueError:
        raise GraphError("(#100) Param text_entities must be a JSON list", 100) from None
    if len(entities) > 10:
        raise GraphError("(#100) A post takes at most 10 text spoiler entities", 100)
    kept = []
    for entity in entities:
        kind = str(entity.get("entity_type", "")).upper() if isinstance(entity, dict) else ""
        offset, length = (entity.get("offset"), entity.get("length")) if isinstance(entity, dict) else (None, None)
        if (
            kind != "SPOILER"
            or not isinstance(offset, int)
            or not isinstance(length, int)
            or offset < 0
            or length < 1
            or offset + length > len(text)
        ):
            raise GraphError(f"(#100) Invalid text entity {entity!r}: a SPOILER range inside the text", 100)
        kept.append({"entity_type": "SPOILER", "offset": offset, "length": length})
    return media_spoiler, kept


def _limit(state: GraphState, me: Account) -> dict[str, Any]:
    return {
        "data": [
            {
                "quota_usage": state.published_today(me.id),
                "config": {"quota_total": state.quota_total(me), "quota_duration": int(st.DAY)},
            }
        ]
    }


def _publish(state: GraphState, me: Account, creation_id: str) -> str:
    container = state.containers.get(creation_id)
    if container is None or container.owner != me.id or container.carousel_item:
        raise GraphError("Media ID is not available", 9007, 2207027)
    status = state.container_status(container)
    if status == "PUBLISHED":
        # Instagram refuses a second publish of one container; the bot must never rely on it.
        raise GraphError("The media has already been published", 9007, 2207027)
    if status == "IN_PROGRESS":
        raise GraphError("Media ID is not available: the media is not ready for publishing", 9007, 2207027)
    if status == "EXPIRED":
        raise GraphError("The media you are trying to access has expired.", -2, 2207020)
    if status == "ERROR":
        raise GraphError("The media could not be published: " + container.error, -1, 2207032)
    if state.published_today(me.id) >= state.quota_total(me):
        raise GraphError(
            "You reached maximum number of posts that is allowed to be published by Content Publishing API.", 9, 2207042
        )
    post = _new_post(
        state,
        me,
        container.text,
        media=container.media,
        is_spoiler_media=container.is_spoiler_media,
        text_entities=container.text_entities,
    )
    post.kind = "reel" if container.media_type == "REELS" else "post"
    container.status, container.published_id = "PUBLISHED", post.id
    return post.id


def _new_post(state: GraphState, me: Account, text: str, **kwargs: Any) -> Post:
    pid = state.new_id()
    if me.product == "facebook":
        pid = f"{me.id}_{pid}"
        permalink = f"https://www.facebook.com/{me.id}/posts/{pid.split('_')[1]}"
    elif me.product == "instagram":
        permalink = f"https://www.instagram.com/p/{_shortcode(pid)}/"
    else:
        permalink = f"https://www.threads.net/@{me.username}/post/{_shortcode(pid)}"
    post = Post(pid, me.id, text, state.wall(), permalink, **kwargs)
    state.posts[pid] = post
    return post


def _shortcode(pid: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    n, out = int(pid), ""
    while n:
        n, r = divmod(n, 64)
        out = alphabet[r] + out
    return out


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(seconds))


def _post_view(state: GraphState, post: Post) -> dict[str, Any]:
    owner = state.accounts[post.owner]
    return {
        "id": post.id,
        "caption": post.text,
        "text": post.text,
        "message": post.text,
        "permalink": post.permalink,
        "permalink_url": post.permalink,
        "timestamp": _iso(post.created),
        "created_time": _iso(post.created),
        "username": owner.username,
        "media_type": "TEXT_POST" if not post.media else post.media[0]["kind"].upper(),
        "is_quote_post": False,
        # Threads media object fields (https://developers.facebook.com/documentation/threads/reference/media-retrieval),
        # the same fields keyword search returns; text_entities read back in the shape it is written in (spoilers page).
        "is_spoiler_media": post.is_spoiler_media,
        "text_entities": [dict(e) for e in post.text_entities],
        "is_reply": post.reply_to is not None,
        **({"replied_to": {"id": post.reply_to}} if post.reply_to else {}),
    }


def _list(state: GraphState, me: Account, params: dict[str, Any], default: str) -> dict[str, Any]:
    fields = _fields(params, default)
    limit = min(int(params.get("limit") or 25), 100)
    posts = sorted(
        (p for p in state.posts.values() if p.owner == me.id and p.reshare_of is None and p.kind != "draft"),
        key=lambda p: (p.created, int(p.id.split("_")[-1])),
        reverse=True,
    )[:limit]
    return {"data": [_pick(_post_view(state, p), fields) for p in posts]}


def _keyword_search(state: GraphState, me: Account, params: dict[str, Any]) -> dict[str, Any]:
    if "threads_keyword_search" not in me.scopes:
        raise GraphError("(#10) Application does not have permission for this action", 10)
    q = _need(params, "q").lower().lstrip("#")
    tag_mode = str(params.get("search_mode", "KEYWORD")).upper() == "TAG"
    since = float(params.get("since") or 0)
    fields = _fields(params, "id,text,permalink,timestamp,username")
    found = []
    for post in sorted(state.posts.values(), key=lambda p: int(p.id)):
        if post.reshare_of or state.accounts[post.owner].product != "threads" or post.created < since:
            continue
        words = post.text.lower()
        if (
            (f"#{q}" in words.split() or any(w.strip(".,!?") == f"#{q}" for w in words.split()))
            if tag_mode
            else q in words
        ):
            found.append(_pick(_post_view(state, post), fields))
    return {"data": found[::-1]}


def _profile_lookup(state: GraphState, me: Account, params: dict[str, Any]) -> dict[str, Any]:
    """Threads Profile Discovery (https://developers.facebook.com/documentation/threads/threads-profiles):
    ``GET /profile_lookup?username=`` needs ``threads_profile_discovery`` and answers a public profile's
    username, name, profile_picture_url, biography, is_verified and follower_count (and its like, quote, reply,
    repost and view counts). A Threads user the sandbox knows is looked up unless a test made it undiscoverable
    (as real Threads limits which profiles a token may look up); anything else is the not-found answer."""
    if "threads_profile_discovery" not in me.scopes:
        raise GraphError("(#10) Application does not have permission for this action", 10)
    username = _need(params, "username").strip().lstrip("@").lower()
    found = next(
        (a for a in state.accounts.values() if a.product == "threads" and a.username.lower() == username), None
    )
    if found is None or not found.discoverable:
        raise _missing(username)
    values = {
        "username": found.username,
        "name": found.name,
        "profile_picture_url": f"https://scontent.threads.invalid/{found.id}.jpg",
        "biography": "",
        "is_verified": False,
        "follower_count": found.followers,
        "likes_count": 0,
        "quotes_count": 0,
        "replies_count": 0,
        "reposts_count": 0,
        "views_count": 0,
    }
    wanted = _fields(params, "username,name,profile_picture_url,biography,is_verified,follower_count")
    return {k: values[k] for k in wanted if k in values}


# ---- Facebook Pages ----


def _feed_post(state: GraphState, me: Account, params: dict[str, Any]) -> str:
    message = str(params.get("message") or "")
    attached = _attached(params)
    if not message and not attached and not params.get("link"):
        raise GraphError("(#100) Missing message or attachment", 100)
    media = []
    for fbid in attached:
        photo = state.photos.get(fbid)
        if photo is None or photo["owner"] != me.id or photo["published"]:
            raise GraphError(f"(#100) Invalid media_fbid {fbid}", 100)
        photo["published"] = True
        media.append({"kind": "image", "alt": photo["alt"], "bytes": photo["bytes"]})
    if str(params.get("published", "true")).lower() == "false":
        raise GraphError("(#100) Unpublished feed posts are not supported by this sandbox", 100)
    return _new_post(state, me, message, media=media, link=params.get("link")).id


def _attached(params: dict[str, Any]) -> list[str]:
    values: list[Any] = []
    if "attached_media" in params:
        raw = params["attached_media"]
        values = json.loads(raw) if isinstance(raw, str) else list(raw)
    values += [json.loads(v) for k, v in sorted(params.items()) if k.startswith("attached_media[")]
    return [str(v["media_fbid"]) for v in values]


def _photo(state: GraphState, me: Account, params: dict[str, Any]) -> dict[str, Any]:
    source = params.get("source")
    if isinstance(source, bytes):
        data = source
    elif params.get("url"):
        data = st.fetch(str(params["url"]), expect=("jpeg", "png"), state=state)
    else:
        raise GraphError("(#324) Requires upload file", 324)
    published = str(params.get("published", "true")).lower() != "false"
    pid = state.new_id()
    state.photos[pid] = {
        "owner": me.id,
        "alt": str(params.get("alt_text_custom") or ""),
        "bytes": len(data),
        "published": published,
    }
    if published:
        post = _new_post(state, me, str(params.get("caption") or params.get("message") or ""))
        post.media = [{"kind": "image", "alt": state.photos[pid]["alt"], "bytes": len(data)}]
        state.photos[pid]["published"] = True
        return {"id": pid, "post_id": post.id}
    return {"id": pid}


def _video(state: GraphState, me: Account, params: dict[str, Any], *, reel: bool) -> dict[str, Any]:
    phase = str(params.get("upload_phase") or "")
    if phase == "start":
        if reel and state.published_today(me.id, "reel") >= st.REELS_PER_DAY:
            raise GraphError("(#4) Reels publishing limit reached: 30 a day", 4)
        size = int(params.get("file_size") or 0)
        if not reel and size <= 0:
            raise GraphError("(#100) file_size is required", 100)
        upload = Upload(state.new_id(), me.id, size, reel)
        state.uploads[upload.id] = upload
        if reel:
            return {"video_id": upload.id, "upload_url": f"/rupload/{GRAPH_VERSION}/{upload.id}"}
        return {
            "video_id": upload.id,
            "upload_session_id": upload.id,
            "start_offset": "0",
            "end_offset": str(min(size, 1 << 20)),
        }
    key = str(params.get("video_id") if reel else params.get("upload_session_id") or "")
    session = state.uploads.get(key)
    if session is None or session.owner != me.id:
        raise GraphError("(#100) Invalid upload session", 100, 1363019)
    upload = session
    if phase == "transfer" and not reel:
        offset = int(_need(params, "start_offset"))
        chunk = params.get("video_file_chunk")
        if offset != len(upload.data) or not isinstance(chunk, bytes):
            raise GraphError("(#100) Invalid start_offset", 100, 1363037)
        upload.data += chunk
        end = min(upload.size, len(upload.data) + (1 << 20))
        return {"start_offset": str(len(upload.data)), "end_offset": str(end)}
    if phase == "finish":
        if len(upload.data) != upload.size or not upload.data[4:8] == b"ftyp":
            raise GraphError("(#100) The video file is incomplete or not a video", 100, 1363030)
        if upload.finished:
            return {"success": True, "post_id": upload.post_id}
        upload.finished = True
        upload.description = str(params.get("description") or "")
        state_wanted = str(params.get("video_state") or "PUBLISHED").upper()
        if reel and (state_wanted != "PUBLISHED" or state.draft_reels > 0):
            # "A vertical video ... can end as a draft" (PLATFORMS.md): modelled so the bot must read it back.
            state.draft_reels = max(0, state.draft_reels - 1) if state_wanted == "PUBLISHED" else state.draft_reels
            kind = "draft"
        else:
            kind = "reel" if reel else "video"
        post = _new_post(
            state,
            me,
            upload.description,
            media=[{"kind": "video", "alt": "", "bytes": len(upload.data), "captions": bool(upload.captions)}],
            kind=kind,
        )
        upload.post_id = post.id
        post.media[0]["upload"] = upload.id
        return {"success": True, "post_id": post.id} if reel else {"success": True}
    raise GraphError(f"(#100) Unknown upload_phase {phase!r}", 100)


def _reel_bytes(state: GraphState, me: Account, node: str, raw: bytes, headers: Any) -> dict[str, Any]:
    upload = state.uploads.get(node)
    if upload is None or upload.owner != me.id or not upload.reel:
        raise _missing(node)
    offset = int(headers.get("offset") or 0)
    if offset != len(upload.data):
        raise GraphError("(#100) Wrong offset", 100)
    upload.data += raw
    upload.size = int(headers.get("file_size") or len(upload.data))
    return {"success": True}


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    import re

    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise GraphError("(#100) multipart body without boundary", 100)
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if not name:
            continue
        value = value[:-2] if value.endswith(b"\r\n") else value
        fields[name.group(1).decode()] = value if b"filename=" in head else value.decode("utf-8", "replace")
    return fields


class GraphHTTPServer(PlatformServer):
    handler = GraphHandler
    state: GraphState
