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
Keyword search gives the author's ``username`` only, never the display name the blocked-word filter must read:
that comes from the Profile Discovery API (``GET /profile_lookup?username=``, permission
``threads_profile_discovery``, https://developers.facebook.com/documentation/threads/threads-profiles), which
also gives ``follower_count``, a trust signal. Looked up once per author and kept a day (``ProfileCache``); a
mention whose author could not be looked up carries ``ref[DISPLAY_NAME_UNKNOWN]`` and goes to review.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from bot.core.errors import AuthFailed, PermanentError, PlatformUnavailable, RateLimited
from bot.core.values import DISPLAY_NAME_UNKNOWN, Limits, Mention, MentionPage, Receipt
from bot.platforms.graph.client import GraphApiError
from bot.platforms.graph.containers import THREADS, ContainerPlatform, Product
from bot.platforms.graph.version import THREADS_VERSION

MB = 1024 * 1024
PROFILE_TTL = 86400.0  # a display name looked up is trusted for a day, then looked up again
MISS_TTL = 3600.0  # a profile Threads would not give (not found, not discoverable) is asked again after an hour
NO_PERMISSION_TTL = 3600.0  # a token refused the permission: no lookups for an hour (staff may grant it meanwhile)
PROFILE_CACHE_SIZE = 10_000  # authors kept; the least recently used goes first
PROFILE_BUCKET = "profile_lookup"  # the rate gate's bucket for lookups


@dataclass(frozen=True)
class Profile:
    """What profile_lookup said of one author: the display name and follower count, or why there is none."""

    name: str | None
    followers: int | None
    missing: str = ""  # why name is None: no_permission, not_found


class ProfileCache:
    """Profiles by lower-cased username, each until its own expiry on the adapter's wall clock, at most ``size``."""

    def __init__(self, size: int = PROFILE_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[float, Profile]] = OrderedDict()

    def get(self, username: str, now: float) -> Profile | None:
        key = username.lower()
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, username: str, profile: Profile, until: float) -> None:
        key = username.lower()
        self._items[key] = (until, profile)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profiles = ProfileCache()
        self._no_discovery_until = 0.0  # the token lacked threads_profile_discovery: skip lookups until then

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
                username = str(item.get("username") or "")
                profile = self._profile(username)
                found[pid] = Mention(
                    remote_id=pid,
                    url=str(item.get("permalink") or ""),
                    author_id=username,
                    author_handle=username,
                    # Without a display name the handle stands in (the filter reads it as the handle anyway).
                    author_name=profile.name if profile.name is not None else username,
                    text=text,
                    created_at=_when(item.get("timestamp")),
                    is_reply=item.get("is_reply") in (True, "true"),
                    sensitive=spoiled is not None or item.get("is_spoiler_media") in (True, "true"),
                    spoiler_text=spoiled or "",
                    ref={DISPLAY_NAME_UNKNOWN: profile.missing} if profile.name is None else {},
                    author_followers=profile.followers,
                )
        ordered = sorted(found.values(), key=lambda m: int(m.remote_id))
        latest = max([newest, *(int(m.remote_id) for m in ordered)])
        return MentionPage(mentions=ordered, cursor=str(latest) if latest else cursor)

    def _profile(self, username: str) -> Profile:
        """The author's display name and follower count from profile_lookup, cached per username.

        Profile Discovery (https://developers.facebook.com/documentation/threads/threads-profiles) needs the
        ``threads_profile_discovery`` permission; with standard access only a few official Meta accounts
        (@meta, @threads, @instagram, @facebook) can be looked up, so in practice it needs advanced access (app
        review). Third-party descriptions of the endpoint add that the looked-up profile must be public and
        have at least 100 followers; Meta's page as we read it does not say so, so a refused profile is simply
        "not found" here. The call goes through the adapter's Graph client (token, usage headers) and its rate
        gate: a throttled lookup or a closed gate raises RateLimited, so the page is fetched again later rather
        than judged without names. Any other failure gives a Profile without a name, which sends the mention to
        review (``display_name_unknown``), never to an unseen reshare.
        """
        now = self._wall()
        if not username:
            return Profile(None, None, "no_username")
        if now < self._no_discovery_until:
            return Profile(None, None, "no_permission")
        cached = self.profiles.get(username, now)
        if cached is not None:
            return cached
        wait = self.gate.wait_needed(PROFILE_BUCKET)
        if wait > 0:
            raise RateLimited(f"threads rate limit: waiting {wait:.0f}s before profile_lookup", retry_after=wait)
        try:
            answer = self.client.get(
                "profile_lookup", {"username": username, "fields": "username,name,follower_count,is_verified"}
            )
        except (GraphApiError, PlatformUnavailable) as exc:
            err = self._map_error(exc) if isinstance(exc, GraphApiError) else exc
            if isinstance(err, RateLimited):
                self.gate.block(PROFILE_BUCKET, err.retry_after)
                raise err from None
            if isinstance(err, AuthFailed):
                raise err from None
            if isinstance(exc, GraphApiError) and (exc.code == 10 or 200 <= exc.code < 300):
                self._no_discovery_until = now + NO_PERMISSION_TTL
                self.log.warning(
                    "threads_profile_lookup_refused",
                    reason="the token lacks the threads_profile_discovery permission: Threads mentions go to review",
                )
                return Profile(None, None, "no_permission")
            if isinstance(err, PlatformUnavailable):
                # A passing outage must not send every post of the page to review for good (each post is decided
                # once): the page is fetched again later, as when throttled; the names found so far stay cached.
                self.log.warning("threads_profile_lookup_failed", username=username, reason=str(err))
                raise err from None
            self.log.info("threads_profile_not_found", username=username, reason=str(err))
            missing = Profile(None, None, "not_found")
            self.profiles.put(username, missing, now + MISS_TTL)
            return missing
        name = answer.get("name") if isinstance(answer, dict) else None
        count = answer.get("follower_count") if isinstance(answer, dict) else None
        followers = int(count) if isinstance(count, int | str) and str(count).isdigit() else None
        # An empty name is a name Threads gave (none set): nothing to hide in it, so it counts as known.
        profile = Profile(str(name), followers) if isinstance(name, str) else Profile(None, followers, "not_given")
        self.profiles.put(username, profile, now + (PROFILE_TTL if profile.name is not None else MISS_TTL))
        return profile


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
