"""A small Telegram Bot API server for channels: what telegram-test-api (npm) does not cover.

Follows https://core.telegram.org/bots/api (checked August 2026):
- requests: ``GET``/``POST https://api.telegram.org/bot<token>/<method>`` with parameters in the query string,
  ``application/x-www-form-urlencoded``, ``application/json`` or ``multipart/form-data`` (#making-requests);
- answers: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"}`` where
  ``parameters.retry_after`` says how long to wait after a 429 (#making-requests, #responseparameters);
- methods: getMe, getChat, getChatMember, sendMessage, sendPhoto, sendVideo, sendMediaGroup;
- limits: text 1-4096 characters and captions 0-1024 after entities parsing (#sendmessage, #sendphoto), albums of
  2-10 items (#sendmediagroup), uploads of 10 MB for photos and 50 MB for other files (#sending-files);
- HTML parse mode: the tags of #html-style, and "all <, > and & symbols that are not a part of a tag or an HTML
  entity must be replaced with the corresponding HTML entities" (#formatting-options), else 400 "can't parse entities";
- flood control: about 30 messages a second per bot and 20 a minute per group or channel
  (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this); every item of an album counts.

Channels are created by the sandbox; one "campaign bot" is an administrator with ``can_post_messages`` in each.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandboxes.base import FaultQueue

MB = 1024 * 1024
TIMEOUT_DELAY = 3.0  # how long a "timeout" fault holds the answer back (after storing the message)
HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
    "blockquote", "tg-emoji", "tg-time",
}  # fmt: skip
ADMIN_RIGHTS = (
    "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
    "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories",
)  # fmt: skip


class ApiError(Exception):
    """An answer with ``ok: false``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass
class Bot:
    id: int
    username: str
    token: str


@dataclass
class Channel:
    id: int
    username: str
    title: str
    admins: dict[int, dict[str, Any]] = field(default_factory=dict)  # bot id -> ChatMember fields
    members: set[int] = field(default_factory=set)  # bots in the channel without administrator rights
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1


class Window:
    """A sliding-window count of messages (the sandbox's model of Telegram's flood control)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.times: deque[float] = deque()

    def wait(self, now: float, n: int) -> int | None:
        """Whole seconds to wait before ``n`` more messages fit (Telegram's retry_after), or None when they fit."""
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        over = len(self.times) + n - self.limit
        if over <= 0:
            return None
        oldest = self.times[min(over, len(self.times)) - 1]
        return max(1, math.ceil(oldest + self.period - now))

    def count(self, now: float, n: int) -> None:
        self.times.extend([now] * n)


class TelegramState:
    """Bots, channels and their messages; safe across the server's threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.bots: dict[str, Bot] = {}  # token -> bot
        self.channels: dict[int, Channel] = {}
        self._ids = itertools.count(7_000_000_001)
        self.rate_limits = True
        self.per_bot = (30, 1.0)
        self.per_chat = (20, 60.0)
        self._bot_windows: dict[int, Window] = {}
        self._chat_windows: dict[int, Window] = {}

    def new_bot(self, username: str) -> Bot:
        with self.lock:
            bot_id = next(self._ids) % 10_000_000_000
            # Telegram's token shape: "<bot id>:<35 characters>".
            token = f"{bot_id}:AA{abs(hash((username, bot_id))):033d}"[: len(str(bot_id)) + 36]
            bot = self.bots[token] = Bot(bot_id, username, token)
            return bot

    def new_channel(self, username: str, title: str) -> Channel:
        with self.lock:
            chat_id = -1_000_000_000_000 - next(self._ids) % 1_000_000_000
            channel = self.channels[chat_id] = Channel(chat_id, username, title)
            return channel

    def channel(self, chat_id: Any) -> Channel:
        with self.lock:
            text = str(chat_id)
            for channel in self.channels.values():
                if text in (str(channel.id), f"@{channel.username}"):
                    return channel
        raise ApiError(400, "Bad Request: chat not found")

    def flood(self, bot: Bot, channel: Channel, n: int, now: float) -> None:
        if not self.rate_limits:
            return
        with self.lock:
            by_bot = self._bot_windows.setdefault(bot.id, Window(*self.per_bot))
            by_chat = self._chat_windows.setdefault(channel.id, Window(*self.per_chat))
            # Check both before counting either: a refused request is not a message.
            for window in (by_bot, by_chat):
                wait = window.wait(now, n)
                if wait is not None:
                    raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
            by_bot.count(now, n)
            by_chat.count(now, n)

    def post(self, channel: Channel, items: list[dict[str, Any]], *, bot: Bot | None) -> list[dict[str, Any]]:
        """Store ``items`` (one message each; an album when several) and return them as Message objects."""
        with self.lock:
            group = str(next(self._ids)) if len(items) > 1 else None
            made = []
            for item in items:
                message = {
                    "message_id": channel.next_id,
                    "date": int(time.time()),
                    "chat": {"id": channel.id, "type": "channel", "title": channel.title, "username": channel.username},
                    **({"sender_chat": {"id": channel.id, "type": "channel", "title": channel.title}}),
                    **({"media_group_id": group} if group else {}),
                    **item,
                }
                message.setdefault("_by_bot", bot.id if bot else None)
                channel.next_id += 1
                channel.messages.append(message)
                made.append({k: v for k, v in message.items() if not k.startswith("_")})
            return made


TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?>")
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def parse_html(text: str) -> str:
    """The text readers see, or ApiError 400 as Telegram answers text it cannot parse (#formatting-options)."""
    shown: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            tag = TAG.match(text, pos)
            if tag is None or tag.group(1).lower() not in HTML_TAGS:
                name = tag.group(1) if tag else text[pos + 1 : pos + 8]
                raise ApiError(
                    400, f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" at byte offset {pos}'
                )
            pos = tag.end()
            continue
        if char == "&":
            entity = ENTITY.match(text, pos)
            if entity is None:
                raise ApiError(400, f"Bad Request: can't parse entities: Unsupported HTML entity at byte offset {pos}")
            shown.append(html.unescape(entity.group()))
            pos = entity.end()
            continue
        if char == ">":
            raise ApiError(400, f"Bad Request: can't parse entities: Unexpected end tag at byte offset {pos}")
        shown.append(char)
        pos += 1
    return "".join(shown)


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a fan-out to 50 channels at once must not wait out TCP's SYN retry

    def __init__(self, state: TelegramState, latency: float = 0.0) -> None:
        self.state, self.latency = state, latency
        self.faults = FaultQueue()
        self.log: list[dict[str, Any]] = []
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), TelegramHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class TelegramHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TelegramHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is kept in memory (``requests()``), not printed

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        entry: dict[str, Any] = {"method": self.command, "path": "/".join(["bot<token>", *parts[1:]]), "status": 0}
        self._counted: tuple[float, int] | None = None
        delay = 0.0
        try:
            params, files = self._params(url.query)
            if len(parts) != 2 or not parts[0].startswith("bot"):
                raise ApiError(404, "Not Found")
            token, method = parts[0][3:], parts[1]
            entry["api"] = method
            fault = self.server.faults.take(method)
            if fault is not None:
                delay = self._fault(fault, token)
            bot = self.server.state.bots.get(token)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            result = self._call(bot, method, params, files)
            status, body = 200, {"ok": True, "result": result}
            if self._counted is not None:  # when flood control counted the messages, and how many (bench)
                entry["counted_at"], entry["messages"] = self._counted
        except ApiError as exc:
            status = exc.code
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
        except _Raw as raw:
            status, body = raw.status, raw.body
        if self.server.latency or delay:
            time.sleep(self.server.latency + delay)
        entry["status"] = status
        with self.server.log_lock:
            self.server.log.append(entry)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): the message, if any, is stored all the same

    def _fault(self, fault: Any, token: str) -> float:
        kind = fault.kind
        if kind == "rate_limited":
            wait = math.ceil(fault.retry_after or 5)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        if kind == "unavailable":
            raise _Raw(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>")
        if kind == "auth":
            raise ApiError(401, "Unauthorized")
        if kind in ("rejected", "duplicate"):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if kind == "echo_auth":
            # A misconfigured proxy's error page quoting the request line: for the Bot API, the token.
            raise _Raw(502, f"<html>502 Bad Gateway: POST /bot{token}/{self.path.rsplit('/', 1)[-1]}</html>".encode())
        if kind == "timeout":
            return fault.delay if fault.delay is not None else TIMEOUT_DELAY  # processed, answered late
        return 0.0

    def _params(self, query: str) -> tuple[dict[str, str], dict[str, bytes]]:
        params = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, bytes] = {}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind = self.headers.get("Content-Type", "")
        if raw and kind.startswith("application/json"):
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(raw).items()})
        elif raw and kind.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        elif raw and kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + raw)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[str(name)] = payload
                else:
                    params[str(name)] = payload.decode()
        return params, files

    # ---- the methods ----

    def _call(self, bot: Bot, method: str, params: dict[str, str], files: dict[str, bytes]) -> Any:
        state = self.server.state
        if method == "getMe":
            return {"id": bot.id, "is_bot": True, "first_name": bot.username, "username": bot.username}
        if method == "getChat":
            channel = state.channel(params.get("chat_id"))
            # https://core.telegram.org/bots/api#chatfullinfo: accent_color_id and max_reaction_count are required.
            return {
                "id": channel.id,
                "type": "channel",
                "title": channel.title,
                "username": channel.username,
                "accent_color_id": 0,
                "max_reaction_count": 11,
            }
        if method == "getChatMember":
            channel = state.channel(params.get("chat_id"))
            user = int(params.get("user_id", "0"))
            person = {"id": user, "is_bot": True, "first_name": "bot"}
            if user in channel.admins:
                # https://core.telegram.org/bots/api#chatmemberadministrator: every can_* field but the
                # channel-only ones is required; can_post_messages is what a channel post needs.
                required = dict.fromkeys(ADMIN_RIGHTS, False)
                return {"status": "administrator", "user": person, **required, **channel.admins[user]}
            return {"status": "member" if user in channel.members else "left", "user": person}
        if method in ("sendMessage", "sendPhoto", "sendVideo", "sendMediaGroup"):
            channel = state.channel(params.get("chat_id"))
            rights = channel.admins.get(bot.id)
            if rights is None:
                if bot.id in channel.members:
                    raise ApiError(400, "Bad Request: need administrator rights in the channel chat")
                raise ApiError(403, "Forbidden: bot is not a member of the channel chat")
            if not rights.get("can_post_messages"):
                raise ApiError(400, "Bad Request: need administrator rights in the channel chat")
            items = self._items(method, params, files)
            now = time.monotonic()
            state.flood(bot, channel, len(items), now)
            self._counted = (now, len(items))
            made = state.post(channel, items, bot=bot)
            return made if method == "sendMediaGroup" else made[0]
        raise ApiError(404, "Not Found")

    def _items(self, method: str, params: dict[str, str], files: dict[str, bytes]) -> list[dict[str, Any]]:
        html_mode = params.get("parse_mode", "").upper() == "HTML"

        def read(text: str, limit: int, what: str, as_html: bool = html_mode) -> str:
            shown = parse_html(text) if as_html else text
            if _length(shown) > limit:
                raise ApiError(400, f"Bad Request: {what} is too long")
            return shown

        if method == "sendMessage":
            text = params.get("text", "")
            if not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
            preview = json.loads(params.get("link_preview_options") or "{}")
            return [{"text": read(text, 4096, "message"), "_preview": not preview.get("is_disabled", False)}]
        caption = read(params.get("caption", ""), 1024, "message caption")
        if method in ("sendPhoto", "sendVideo"):
            field_name = "photo" if method == "sendPhoto" else "video"
            # An upload comes as the multipart part named after the field (https://core.telegram.org/bots/api#sending-files).
            ref = params.get(field_name) or field_name
            data = self._file(ref, files, 10 * MB if field_name == "photo" else 50 * MB)
            return [{"caption": caption, **self._media(field_name, data)}]
        media = json.loads(params.get("media") or "[]")
        if not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album: expected 2-10")
        items = []
        for n, item in enumerate(media):
            kind = item.get("type")
            if kind not in ("photo", "video"):
                raise ApiError(400, f"Bad Request: media[{n}]: unsupported type")
            data = self._file(str(item.get("media", "")), files, 10 * MB if kind == "photo" else 50 * MB)
            # Each item carries its own parse_mode (https://core.telegram.org/bots/api#inputmediaphoto).
            item_html = str(item.get("parse_mode", "")).upper() == "HTML"
            text = read(str(item.get("caption", "")), 1024, "message caption", item_html)
            items.append({"caption": text, **self._media(kind, data)})
        return items

    @staticmethod
    def _file(ref: str, files: dict[str, bytes], limit: int) -> bytes:
        name = ref.removeprefix("attach://")
        if name not in files:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if len(files[name]) > limit:
            raise ApiError(413, "Request Entity Too Large")
        return files[name]

    @staticmethod
    def _media(kind: str, data: bytes) -> dict[str, Any]:
        # https://core.telegram.org/bots/api#photosize and #video: width and height (and a video's duration)
        # are required fields; clients fail to read a Message without them.
        file = {"file_id": f"F{abs(hash(data)):x}", "file_unique_id": f"U{len(data)}", "file_size": len(data)}
        width, height = _image_size(data) if kind == "photo" else (640, 360)
        sized = {**file, "width": width, "height": height}
        return {"photo": [sized]} if kind == "photo" else {"video": {**sized, "duration": 0}}


def _image_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001  (not an image Telegram could read: its size is unknown)
        return 0, 0


class _Raw(Exception):
    """An answer that is not the Bot API's envelope (a proxy's error page)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body
