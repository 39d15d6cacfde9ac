"""The fake X server's search query language and its rendering of posts and users.

Supports the operators the bot (and a careful reader of X's docs) uses:
``#tag``, ``@user``, plain keywords, ``"exact phrases"``, ``OR``, parentheses,
negation with ``-``, ``is:retweet``, ``is:reply``, ``is:quote``, ``from:``, ``lang:``.
Adjacent terms are ANDed, and AND binds tighter than OR, as on X.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Field and expansion names of X's OpenAPI document v2.167 (August 2026): post.fields and
# expansions as the spec lists them (author_id and referenced_posts are expansions there) ...
POST_FIELDS = frozenset(
    {
        "attachments",
        "context_annotations",
        "conversation_id",
        "created_at",
        "edit_controls",
        "entities",
        "geo",
        "id",
        "lang",
        "possibly_sensitive",
        "public_metrics",
        "reply_settings",
        "source",
        "text",
        "withheld",
    }
)
POST_EXPANSIONS = frozenset(
    {
        "attachments.media_keys",
        "author_id",
        "edit_history_post_ids",
        "entities.mentions.username",
        "in_reply_to_user_id",
        "referenced_posts",
    }
)
# ... and the older tweet.fields and expansions, which X still answers.
TWEET_FIELDS = frozenset(
    {
        "attachments",
        "author_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "edit_controls",
        "entities",
        "geo",
        "id",
        "in_reply_to_user_id",
        "lang",
        "possibly_sensitive",
        "public_metrics",
        "referenced_tweets",
        "reply_settings",
        "source",
        "text",
        "withheld",
        "edit_history_tweet_ids",
    }
)
USER_FIELDS = frozenset(
    {
        "created_at",
        "description",
        "entities",
        "id",
        "location",
        "name",
        "pinned_tweet_id",
        "profile_image_url",
        "protected",
        "public_metrics",
        "url",
        "username",
        "verified",
        "withheld",
    }
)
EXPANSIONS = POST_EXPANSIONS | {
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "edit_history_tweet_ids",
}
# media.fields of the spec (MediaFieldsParameter); media_key and type are sent whatever is asked, as X does.
MEDIA_FIELDS = frozenset(
    {
        "alt_text",
        "duration_ms",
        "height",
        "media_key",
        "non_public_metrics",
        "organic_metrics",
        "preview_image_url",
        "promoted_metrics",
        "public_metrics",
        "type",
        "url",
        "variants",
        "width",
    }
)
# X's edit rules (docs, x-api/fundamentals/edit-posts): 30 minutes from the original post, at most 5 edits.
EDIT_WINDOW_SECONDS = 30 * 60
EDITS_MAX = 5
_TOKEN = re.compile(r'\(|\)|"[^"]*"|-?[^\s()"]+')


@dataclass
class Tweet:
    id: str
    author_id: str
    text: str  # as submitted; the API shows it with t.co links and HTML escapes
    created_at: datetime
    lang: str = "en"
    possibly_sensitive: bool = False
    referenced: list[tuple[str, str]] = field(default_factory=list)  # (replied_to|quoted|retweeted, id)
    in_reply_to_user_id: str | None = None
    conversation_id: str = ""
    media_ids: list[str] = field(default_factory=list)
    link_titles: dict[str, str] = field(default_factory=dict)  # URL as written -> its page's title (the card)
    # Every version's id, oldest first, shared by the versions of one post; empty for a post never edited.
    history: list[str] = field(default_factory=list)
    first_created_at: datetime | None = None  # the original version's, which the edit window counts from

    def editable_until(self) -> datetime:
        return (self.first_created_at or self.created_at) + timedelta(seconds=EDIT_WINDOW_SECONDS)

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.referenced}

    def versions(self) -> list[str]:
        return self.history or [self.id]

    @property
    def latest(self) -> bool:
        """Whether this is the version X shows: reads return the most recent version of an edited post."""
        return self.versions()[-1] == self.id


@dataclass
class User:
    id: str
    username: str
    name: str
    created_at: datetime


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wrap_links(text: str, tco: Callable[[str], str]) -> str:
    """Every link X recognises (with or without a scheme, by twitter-text's rules) replaced by its t.co form."""
    return _wrapped(text, tco)[0]


def _wrapped(text: str, tco: Callable[[str], str]) -> tuple[str, list[tuple[int, int, str, str]]]:
    """The text with its links in t.co form, and each link's (start, end, t.co URL, URL as written) in it."""
    from twitter_text.extract_urls import extract_urls_with_indices

    out, links, last = [], [], 0
    for found in extract_urls_with_indices(text):
        start, end = found["indices"]
        short = tco(found["url"])
        out.append(text[last:start])
        at = sum(len(part) for part in out)
        links.append((at, at + len(short), short, found["url"]))
        out.append(short)
        last = end
    out.append(text[last:])
    return "".join(out), links


def shown_text(tweet: Tweet, tco: Callable[[str], str]) -> str:
    """The ``text`` X returns: links wrapped in t.co, &<> escaped, a media link appended."""
    text = wrap_links(tweet.text, tco)
    text = html.escape(text, quote=False)
    if tweet.media_ids:
        text = f"{text} {tco('media:' + tweet.media_ids[0])}"
    return text


def url_entities(tweet: Tweet, tco: Callable[[str], str]) -> list[dict[str, Any]]:
    """``entities.urls`` as the spec's PostEntities gives them: t.co, expanded and display forms, and the
    linked page's ``title`` where X fetched one (a card). Indices count the unescaped text, as X's do."""
    out = []
    for start, end, short, written in _wrapped(tweet.text, tco)[1]:
        expanded = written if "://" in written else f"https://{written}"
        entity: dict[str, Any] = {
            "start": start,
            "end": end,
            "url": short,
            "expanded_url": expanded,
            "display_url": expanded.split("://", 1)[1][:26],
            "unwound_url": expanded,
        }
        if tweet.link_titles.get(written):
            entity["title"] = tweet.link_titles[written]
        out.append(entity)
    return out


@dataclass(frozen=True)
class Shape:
    """What a read asked for: fields, expansions, and whether the answer uses the older names."""

    fields: frozenset[str]
    expansions: frozenset[str]
    legacy: bool  # tweet.fields / referenced_tweets / edit_history_tweet_ids, as X answered before v2.167
    media_fields: frozenset[str] = frozenset()

    @property
    def references(self) -> bool:
        return bool(
            {"referenced_posts", "referenced_tweets"} & self.fields
            or {"referenced_posts", "referenced_tweets.id"} & self.expansions
        )

    @property
    def authors(self) -> bool:
        return "author_id" in self.fields or "author_id" in self.expansions

    @property
    def media(self) -> bool:
        return "attachments.media_keys" in self.expansions

    @property
    def earlier_versions(self) -> bool:
        return bool({"edit_history_post_ids", "edit_history_tweet_ids"} & self.expansions)


def render_tweet(
    tweet: Tweet, shape: Shape, tco: Callable[[str], str], media_keys: list[str], now: datetime | None = None
) -> dict[str, Any]:
    # The edit history is a default field: every post carries it, a single id when never edited.
    history = "edit_history_tweet_ids" if shape.legacy else "edit_history_post_ids"
    out: dict[str, Any] = {"id": tweet.id, "text": shown_text(tweet, tco), history: list(tweet.versions())}
    extra = {
        "created_at": iso(tweet.created_at),
        "lang": tweet.lang,
        "possibly_sensitive": tweet.possibly_sensitive,
        "conversation_id": tweet.conversation_id or tweet.id,
    }
    for name, value in extra.items():
        if name in shape.fields:
            out[name] = value
    if shape.authors:
        out["author_id"] = tweet.author_id
    if shape.references and tweet.referenced:
        name = "referenced_tweets" if shape.legacy else "referenced_posts"
        out[name] = [{"type": kind, "id": ref} for kind, ref in tweet.referenced]
    if tweet.in_reply_to_user_id and ({"in_reply_to_user_id"} & (shape.fields | shape.expansions)):
        out["in_reply_to_user_id"] = tweet.in_reply_to_user_id
    # The media expansion brings the keys along, as X does, so includes.media can be matched to posts.
    if ("attachments" in shape.fields or shape.media) and media_keys:
        out["attachments"] = {"media_keys": media_keys}
    if "entities" in shape.fields and (urls := url_entities(tweet, tco)):
        out["entities"] = {"urls": urls}
    if "edit_controls" in shape.fields and now is not None:
        out["edit_controls"] = edit_controls(tweet, now)
    return out


def edit_controls(tweet: Tweet, now: datetime) -> dict[str, Any]:
    """The spec's PostEditControls: until when, and how many more times, the post can be edited."""
    until = tweet.editable_until()
    remaining = max(0, EDITS_MAX - (len(tweet.versions()) - 1))
    editable = not ({"retweeted"} & tweet.kinds()) and tweet.latest
    return {
        "edits_remaining": remaining if editable else 0,
        "editable_until": iso(until),
        "is_edit_eligible": editable and remaining > 0 and now < until,
    }


def render_media(media: Any, fields: frozenset[str]) -> dict[str, Any]:
    """An ``includes.media`` item (the spec's Media): media_key and type always, alt_text when asked and set."""
    kind = {"video": "video", "gif": "animated_gif"}.get(media.kind, "photo")
    out: dict[str, Any] = {"media_key": media.key, "type": kind}
    if "alt_text" in fields and media.alt:
        out["alt_text"] = media.alt
    return out


def render_user(user: User, fields: set[str], tweets_by: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    if "created_at" in fields:
        out["created_at"] = iso(user.created_at)
    if "public_metrics" in fields:
        out["public_metrics"] = {
            "followers_count": 0,
            "following_count": 0,
            "tweet_count": tweets_by,
            "listed_count": 0,
        }
    for name, value in (("protected", False), ("verified", False), ("description", "")):
        if name in fields:
            out[name] = value
    return out


class QueryError(ValueError):
    """The query does not parse; X answers 400 invalid-request."""


Predicate = Callable[[Tweet, User], bool]


def compile_query(query: str) -> Predicate:
    tokens = _TOKEN.findall(query)
    if not tokens:
        raise QueryError("query is empty")
    parser = _Parser(tokens)
    predicate = parser.or_expr()
    if parser.pos != len(tokens):
        raise QueryError(f"unexpected {tokens[parser.pos]!r}")
    return predicate


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def or_expr(self) -> Predicate:
        terms = [self.and_expr()]
        while self.peek() == "OR":
            self.pos += 1
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else (lambda t, u: any(p(t, u) for p in terms))

    def and_expr(self) -> Predicate:
        terms: list[Predicate] = []
        while self.peek() not in (None, ")", "OR"):
            terms.append(self.atom())
        if not terms:
            raise QueryError("empty group or dangling OR")
        return terms[0] if len(terms) == 1 else (lambda t, u: all(p(t, u) for p in terms))

    def atom(self) -> Predicate:
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            inner = self.or_expr()
            if self.peek() != ")":
                raise QueryError("missing )")
            self.pos += 1
            return inner
        if token.startswith("-") and len(token) > 1:
            positive = _term(token[1:])
            return lambda t, u: not positive(t, u)
        return _term(token)


def _term(token: str) -> Predicate:
    lowered = token.lower()
    if lowered.startswith("is:"):
        kind = {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}.get(lowered[3:])
        if kind is None:
            raise QueryError(f"unsupported operator {token!r}")
        return lambda t, u: kind in t.kinds()
    if lowered.startswith("from:"):
        name = lowered[5:].lstrip("@")
        return lambda t, u: u.username.lower() == name
    if lowered.startswith("lang:"):
        lang = lowered[5:]
        return lambda t, u: t.lang == lang
    if lowered.startswith(("#", "@", "$")) and len(lowered) > 1:
        # A tag matches whole: #Free does not match #FreeAndrei.
        pattern = re.compile(re.escape(lowered) + r"(?![\w])", re.IGNORECASE)
        return lambda t, u: bool(pattern.search(t.text))
    if lowered.startswith('"'):
        phrase = lowered.strip('"')
        return lambda t, u: phrase in t.text.lower()
    if ":" in lowered:
        raise QueryError(f"unsupported operator {token!r}")
    word = re.compile(r"(?<!\w)" + re.escape(lowered) + r"(?!\w)", re.IGNORECASE)
    return lambda t, u: bool(word.search(t.text))
