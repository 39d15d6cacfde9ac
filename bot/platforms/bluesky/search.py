"""Hashtag tracking on Bluesky: ``app.bsky.feed.searchPosts`` pages turned into Mentions, with our own cursor.

The search cursor of the AppView pages backwards in time, so it cannot say "only what is new".
Our cursor remembers, per tag, the newest sort time seen (the AppView sorts by
``min(indexedAt, createdAt)``) and the posts seen at exactly that time; a poll pages
back from the newest until it reaches that mark.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.core.values import Mention, MentionPage
from bot.platforms.bluesky.text import post_url, tags_in

PAGE = 100  # the most searchPosts returns per call
MAX_PAGES = 10  # per tag and poll: a flood is cut here rather than read forever
# Labels (self-applied or from a moderation service) that mark a post as not for amplification.
SENSITIVE_LABELS = frozenset({"porn", "sexual", "nudity", "graphic-media", "gore", "!warn", "!hide", "spam"})

Search = Callable[[dict[str, Any]], Any]  # params -> searchPosts response model


def encode_cursor(marks: dict[str, dict[str, Any]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(marks, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, dict[str, Any]]:
    if not cursor:
        return {}
    try:
        marks = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        return {}  # a cursor from an older format: start again from the newest page
    return marks if isinstance(marks, dict) else {}


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _sort_key(post: Any, record: dict[str, Any]) -> str:
    indexed = _parse_time(post.indexed_at)
    created = _parse_time(record.get("createdAt"))
    moments = [m for m in (indexed, created) if m is not None and m.tzinfo is not None]
    # One zone and one precision, so keys compare as strings.
    return min(moments).astimezone(UTC).isoformat(timespec="microseconds") if moments else (post.indexed_at or "")


def _record_dict(post: Any) -> dict[str, Any]:
    from atproto_client.models.utils import get_model_as_dict

    record = post.record
    return record if isinstance(record, dict) else get_model_as_dict(record)


def to_mention(post: Any, record: dict[str, Any]) -> Mention:
    """One PostView as a Mention; the caller has checked it carries a tracked tag."""
    self_labels = [v.get("val") for v in (record.get("labels") or {}).get("values", [])]
    server_labels = [label.val for label in (post.labels or [])]
    langs = record.get("langs") or []
    embed = record.get("embed") or {}
    media = embed.get("media") or embed  # recordWithMedia nests the images, video or link card
    # A quote's text is only in the view: embed.record (a quote) or embed.record.record (quote with media).
    view = getattr(post.embed, "record", None)
    quoted = getattr(getattr(view, "record", None), "value", None) or getattr(view, "value", None)
    quoted_text = quoted.get("text") if isinstance(quoted, dict) else getattr(quoted, "text", None)
    return Mention(
        remote_id=post.uri,
        url=post_url(post.author.handle, post.uri),
        author_id=post.author.did,
        author_handle=post.author.handle,
        author_name=post.author.display_name or "",
        text=record.get("text", ""),
        created_at=_parse_time(record.get("createdAt")),
        is_reply=bool(record.get("reply")),
        is_reshare=False,  # searchPosts returns posts; reposts are separate records it never lists
        sensitive=bool(self_labels) or any(v in SENSITIVE_LABELS for v in server_labels),
        lang=langs[0] if langs else None,
        ref={"uri": post.uri, "cid": post.cid},
        alt_texts=tuple(a for a in [*(i.get("alt") for i in media.get("images") or []), media.get("alt")] if a),
        card_title=(media.get("external") or {}).get("title") or "",
        quoted_text=quoted_text or "",
        author_created_at=_parse_time(getattr(post.author, "created_at", None)),
    )


PROFILES_MAX = 25  # actors per app.bsky.actor.getProfiles call

Profiles = Callable[[list[str]], Sequence[Any]]  # DIDs -> ProfileViewDetailed models


def with_profiles(mentions: list[Mention], profiles: Profiles) -> list[Mention]:
    """``mentions`` with their authors' follower counts and creation times from the AppView's profiles.

    A post's view names its author without counts (ProfileViewBasic); an author the AppView
    does not describe keeps what the post view said (None: unknown, for the policy to judge).
    """
    dids = sorted({m.author_id for m in mentions})
    known: dict[str, Any] = {}
    for start in range(0, len(dids), PROFILES_MAX):
        for profile in profiles(dids[start : start + PROFILES_MAX]):
            known[profile.did] = profile
    out = []
    for m in mentions:
        profile = known.get(m.author_id)
        if profile is None:
            out.append(m)
            continue
        count = getattr(profile, "followers_count", None)
        made = _parse_time(getattr(profile, "created_at", None)) or m.author_created_at
        out.append(replace(m, author_followers=count if isinstance(count, int) else None, author_created_at=made))
    return out


def search_tags(
    search: Search, hashtags: Sequence[str], cursor: str | None, profiles: Profiles | None = None
) -> MentionPage:
    """New posts carrying any of ``hashtags`` since ``cursor``, oldest first, and the next cursor.

    With ``profiles``, each author's follower count and account age come from their profile.
    """
    marks = decode_cursor(cursor)
    found: dict[str, tuple[str, Mention]] = {}
    for raw in hashtags:
        tag = raw.lstrip("#")
        mark = marks.get(tag.lower(), {})
        since, seen = mark.get("t", ""), set(mark.get("seen", []))
        newest, newest_uris = since, set(seen)
        page_cursor = None
        for _ in range(MAX_PAGES if since else 1):
            params: dict[str, Any] = {"q": f"#{tag}", "sort": "latest", "limit": PAGE}
            if since:
                params["since"] = since
            if page_cursor:
                params["cursor"] = page_cursor
            page = search(params)
            reached_mark = False
            for post in page.posts:
                record = _record_dict(post)
                key = _sort_key(post, record)
                if since and (key < since or (key == since and post.uri in seen)):
                    reached_mark = True
                    continue
                if key > newest:
                    newest, newest_uris = key, {post.uri}
                elif key == newest:
                    newest_uris.add(post.uri)
                # The query is a text match: keep only posts that really carry the tag, in any case.
                if tag.lower() in tags_in(record):
                    found.setdefault(post.uri, (key, to_mention(post, record)))
            page_cursor = page.cursor
            if reached_mark or not page_cursor or not page.posts:
                break
        if newest:
            marks[tag.lower()] = {"t": newest, "seen": sorted(newest_uris)}
    ordered = [mention for _, mention in sorted(found.values(), key=lambda item: (item[0], item[1].remote_id))]
    if profiles is not None and ordered:
        ordered = with_profiles(ordered, profiles)
    return MentionPage(mentions=ordered, cursor=encode_cursor(marks) if marks else cursor)
