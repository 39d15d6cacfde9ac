"""Threads: text (500 characters), an image or a video with alt text, carousels; reposts of tag mentions.

Publishing (https://developers.facebook.com/docs/threads/posts): ``POST /me/threads`` makes a container (media
fetched by Threads from a public URL), ``GET /{container}?fields=status`` until FINISHED, ``POST
/me/threads_publish``; exactly once through the container id kept in the notes (``bot.platforms.graph.containers``).
Tracking uses keyword search with ``search_mode=TAG`` (https://developers.facebook.com/docs/threads/keyword-search),
which needs the ``threads_keyword_search`` permission; without it the account cannot track, and says why.
Spoilers (https://developers.facebook.com/documentation/threads/create-posts/spoilers) are what Threads has for
content warnings: ``text_entities`` SPOILER ranges over the text and ``is_spoiler_media`` over images and video,
both fields of the media object that keyword search returns
(https://developers.facebook.com/documentation/threads/reference/media-retrieval). A mention with either is
``sensitive``, and the spoiled parts of its text are its ``spoiler_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from bot.core.errors import PermanentError
from bot.core.values import Limits, Mention, MentionPage, Receipt
from bot.platforms.graph.client import GraphApiError
from bot.platforms.graph.containers import THREADS, ContainerPlatform, Product
from bot.platforms.graph.version import THREADS_VERSION

MB = 1024 * 1024


class Threads(ContainerPlatform):
    name: ClassVar[str] = "threads"
    default_base_url: ClassVar[str] = "https://graph.threads.net"
    version_pinned: ClassVar[str | None] = THREADS_VERSION
    refresh_grant: ClassVar[str | None] = "th_refresh_token"
    product: ClassVar[Product] = THREADS
    limits: ClassVar[Limits] = Limits(
        # Threads posts and media specifications (https://developers.facebook.com/docs/threads/overview): text up
        # to 500 characters, images JPEG or PNG up to 8 MB, video MOV or MP4 up to 1 GB and 5 minutes, carousels
        # up to 20 items, alt text up to 1,000 characters; 250 published posts in 24 hours
        # (threads_publishing_limit).
        max_text=500,
        max_images=20,
        image_max_bytes=8 * MB,
        image_formats=frozenset({"JPEG", "PNG"}),
        video_max_bytes=1024 * MB,
        video_max_seconds=300.0,
        video_formats=frozenset({"mp4", "mov"}),
        alt_max=1000,
        captions=False,
        posts_per_day=250,
    )

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        refusals: list[tuple[tuple[str | int, ...], str]] = []
        for i, info in enumerate(images):
            # Image specifications (same page): at most 1440 pixels wide (larger are scaled), aspect ratio up to 10:1.
            if (
                info is not None
                and info.width
                and info.height
                and max(info.width, info.height) / min(info.width, info.height) > 10
            ):
                refusals.append((("media", i, "file"), f"is {info.width}x{info.height}; threads takes up to 10:1"))
        if video is not None and video.video_codec and video.video_codec not in ("h264", "hevc"):
            refusals.append((("video",), f"is {video.video_codec} video; threads takes H.264 or HEVC"))
        return refusals

    def _reshare(self, mention: Mention) -> Receipt:
        answer = self.client.post(f"{mention.remote_id}/repost", write=True)
        return Receipt(remote_id=str(answer["id"]), url=mention.url)

    def _withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        if reshare_id is None:
            return
        try:
            self.client._call("DELETE", reshare_id)
        except GraphApiError as exc:
            if not (exc.code == 100 and exc.subcode == 33):
                raise  # gone already is what we wanted

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        newest = int(cursor) if cursor and cursor.isdigit() else 0
        found: dict[str, Mention] = {}
        for tag in hashtags:
            try:
                answer = self.client.get(
                    "keyword_search",
                    {
                        "q": tag.lstrip("#"),
                        "search_type": "RECENT",
                        "search_mode": "TAG",
                        "fields": "id,text,permalink,timestamp,username,is_quote_post,is_reply,is_spoiler_media,"
                        "text_entities",
                    },
                )
            except GraphApiError as exc:
                if exc.code == 10 or 200 <= exc.code < 300:
                    raise PermanentError(
                        f"threads account {self.account.id} cannot track: its token lacks the threads_keyword_search "
                        "permission (advanced access needs Meta's app review), so keyword and tag search is not "
                        "available to it"
                    ) from None
                raise
            for item in self._data(answer):
                pid = str(item.get("id") or "")
                if not pid.isdigit() or int(pid) <= newest:
                    continue
                text = str(item.get("text") or "")
                spoiled = _spoilers(item.get("text_entities"), text)
                found[pid] = Mention(
                    remote_id=pid,
                    url=str(item.get("permalink") or ""),
                    author_id=str(item.get("username") or ""),
                    author_handle=str(item.get("username") or ""),
                    author_name=str(item.get("username") or ""),
                    text=text,
                    created_at=_when(item.get("timestamp")),
                    is_reply=item.get("is_reply") in (True, "true"),
                    sensitive=spoiled is not None or item.get("is_spoiler_media") in (True, "true"),
                    spoiler_text=spoiled or "",
                )
        ordered = sorted(found.values(), key=lambda m: int(m.remote_id))
        latest = max([newest, *(int(m.remote_id) for m in ordered)])
        return MentionPage(mentions=ordered, cursor=str(latest) if latest else cursor)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def _spoilers(entities: Any, text: str) -> str | None:
    """The spoiled parts of ``text`` (joined by a space), or None when no SPOILER entity hides any of it.

    Read tolerantly: a list of ``{entity_type, offset, length}`` as the spoilers page writes them, or that list
    under ``data`` as Graph lists edges; a range Threads counts differently from Python (UTF-16) still marks the
    post sensitive, its text then falling back to the whole post so the blocked-word filter reads it all.
    """
    if isinstance(entities, dict):
        entities = entities.get("data")
    if not isinstance(entities, list):
        return None
    parts: list[str] = []
    spoiler = False
    for entity in entities:
        if not isinstance(entity, dict) or str(entity.get("entity_type", "")).upper() != "SPOILER":
            continue
        spoiler = True
        try:
            offset, length = int(entity.get("offset", 0)), int(entity.get("length", 0))
        except (TypeError, ValueError):
            offset, length = 0, 0
        part = text[offset : offset + length] if offset >= 0 and length > 0 else ""
        parts.append(part.strip() or text)
    if not spoiler:
        return None
    return " ".join(dict.fromkeys(parts)) or text or "spoiler"
