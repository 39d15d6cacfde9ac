"""State of the fake X API v2: accounts and their OAuth 1.0a keys, posts, media, rate limits, faults.

HTTP-agnostic: the handler in ``x_server`` parses requests and calls these
operations, which answer JSON-ready dicts or raise ``ApiError``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sandboxes.base import FaultQueue
from sandboxes.x import errors as err
from sandboxes.x.limits import RateLimits
from sandboxes.x.media import MediaStore
from sandboxes.x.search import (
    EDITS_MAX,
    EXPANSIONS,
    MEDIA_FIELDS,
    POST_FIELDS,
    TWEET_FIELDS,
    USER_FIELDS,
    QueryError,
    Shape,
    Tweet,
    User,
    compile_query,
    iso,
    render_media,
    render_tweet,
    render_user,
)

SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X ids are snowflakes: milliseconds since this epoch, shifted 22 bits
# The members of a create-post body (CreatePostsRequest, additionalProperties false, in X's spec v2.167).
POST_BODY = frozenset(
    {
        "card_uri",
        "community_id",
        "direct_message_deep_link",
        "edit_options",
        "for_super_followers_only",
        "geo",
        "made_with_ai",
        "media",
        "nullcast",
        "paid_partnership",
        "poll",
        "quote_tweet_id",
        "reply",
        "reply_settings",
        "share_with_followers",
        "text",
    }
)
MEDIA_BODY = frozenset(
    {"media_ids", "tagged_user_ids", "call_to_actions", "description", "embeddable", "preview_media_id", "title"}
)


@lru_cache(maxsize=4096)
def weighted_length(text: str) -> int:
    """X's own counting (CJK and emoji weigh 2, links 23); a fan-out sends one text from many accounts."""
    from twitter_text import parse_tweet

    return parse_tweet(text).weightedLength


@dataclass
class Credentials:
    user_id: str
    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str


class XState:
    def __init__(
        self,
        wall: Callable[[], float],
        *,
        processing_polls: int = 2,
        check_after_secs: int = 1,
        rate_limits: bool = True,
        shared_app: bool = True,
    ) -> None:
        self.wall = wall
        # One developer app for every account (as a campaign's accounts all authorise the campaign's
        # app), so its per-app caps count them together; shared_app=False gives each account its own.
        self.app = (secrets.token_urlsafe(18), secrets.token_urlsafe(36)) if shared_app else None
        self.legacy_names = False  # answer with tweet.fields-era names whatever was asked
        self.record_wire = False  # keep each request's and answer's bytes in the log (contract tests)
        self.lock = threading.RLock()
        self._last_id = 0
        self.users: dict[str, User] = {}
        self.by_token: dict[str, Credentials] = {}
        self.tweets: dict[str, Tweet] = {}
        self.retweet_of: dict[str, str] = {}  # retweet id -> original id
        self._texts: Counter[tuple[str, str]] = Counter()  # (author, text) of live posts: X's duplicate rule
        self.media = MediaStore(
            self.next_id, wall, processing_polls=processing_polls, check_after_secs=check_after_secs
        )
        self.rates = RateLimits(wall, enabled=rate_limits)
        self.faults = FaultQueue()
        self.log: list[dict[str, Any]] = []
        self.seen_nonces: set[tuple[str, str]] = set()

    def next_id(self) -> str:
        """A snowflake from the server's clock, so ids grow with time as since_id expects."""
        with self.lock:
            stamp = (int(self.wall() * 1000) - SNOWFLAKE_EPOCH_MS) << 22
            self._last_id = max(self._last_id + 1, stamp)
            return str(self._last_id)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    # ---- accounts ----

    def create_user(self, username: str, name: str) -> Credentials:
        with self.lock:
            if any(u.username.lower() == username.lower() for u in self.users.values()):
                raise ValueError(f"username {username!r} is taken")
            user = User(self.next_id(), username, name, self.now())
            self.users[user.id] = user
            # X access tokens start with the user id; tweepy relies on it for retweets.
            app = self.app or (secrets.token_urlsafe(18), secrets.token_urlsafe(36))
            creds = Credentials(
                user.id,
                *app,
                f"{user.id}-{secrets.token_urlsafe(30)}",
                secrets.token_urlsafe(33),
            )
            self.by_token[creds.token] = creds
            return creds

    def user_by_name(self, username: str) -> User:
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        raise KeyError(username)

    # ---- posts ----

    def tco(self, url: str) -> str:
        return "https://t.co/" + hashlib.sha256(url.encode()).hexdigest()[:10]

    def create_tweet(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - POST_BODY) or sorted(set(body.get("media") or {}) - MEDIA_BODY)
        if unknown:
            raise err.invalid(f"Unknown member {unknown[0]!r} in the request body", unknown[0], "")
        text = body.get("text")
        media_ids = [str(m) for m in ((body.get("media") or {}).get("media_ids") or [])]
        if text is not None and not isinstance(text, str):
            raise err.invalid("text must be a string", "text", text)
        text = text or ""
        if not text.strip() and not media_ids:
            raise err.invalid("Tweet text or media is required.", "text", text)
        if weighted_length(text) > 280:
            raise err.problem(
                400,
                "invalid-request",
                "Invalid Request",
                "Your Post text is too long. For more information on how X determines text length "
                "see https://github.com/twitter/twitter-text.",
                parameter="text",
            )
        self._check_media(user_id, media_ids)
        edit_of = body.get("edit_options")
        if edit_of is not None:
            previous = str(edit_of.get("previous_post_id") or "") if isinstance(edit_of, dict) else ""
            if not previous.isdigit():
                raise err.invalid("edit_options.previous_post_id is required", "edit_options", previous)
            # The body is the whole new version: media not named again are gone from it.
            with self.lock:
                tweet = self.edit_tweet(user_id, previous, text, media_ids=media_ids)
            return {"data": render_tweet(tweet, Shape(frozenset(), frozenset(), self.legacy_names), self.tco, [])}
        reply_to = str((body.get("reply") or {}).get("in_reply_to_tweet_id") or "") or None
        quote = str(body.get("quote_tweet_id") or "") or None
        for ref in (reply_to, quote):
            if ref and ref not in self.tweets:
                raise err.invalid(f"Tweet {ref} does not exist", "in_reply_to_tweet_id", ref)
        with self.lock:
            if text.strip() and self._texts[(user_id, text.strip())]:
                raise err.duplicate()
            tweet = self.add_tweet(user_id, text, reply_to=reply_to, quote=quote, media_ids=media_ids)
        shape = Shape(frozenset(), frozenset(), self.legacy_names)
        return {"data": render_tweet(tweet, shape, self.tco, [])}

    def _check_media(self, user_id: str, media_ids: list[str]) -> None:
        if not media_ids:
            return
        try:
            items = [self.media.get(user_id, m) for m in media_ids]
        except err.ApiError:
            raise err.invalid("Your media IDs are invalid.", "media.media_ids", media_ids) from None
        if not all(m.usable() and m.kind != "subtitles" for m in items):
            raise err.invalid("Your media IDs are invalid.", "media.media_ids", media_ids)
        kinds = {m.kind for m in items}
        if len(items) > 4 or (kinds & {"video", "gif"} and len(items) > 1):
            raise err.invalid("Up to 4 images, or 1 video or GIF, per post.", "media.media_ids", media_ids)

    def add_tweet(
        self,
        user_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        media_ids: list[str] | None = None,
        sensitive: bool = False,
        retweet_of: str | None = None,
        link_titles: dict[str, str] | None = None,
    ) -> Tweet:
        with self.lock:
            tweet = Tweet(
                self.next_id(),
                user_id,
                text,
                self.now(),
                possibly_sensitive=sensitive,
                media_ids=media_ids or [],
                link_titles=dict(link_titles or {}),
            )
            if reply_to:
                parent = self.tweets[reply_to]
                tweet.referenced.append(("replied_to", reply_to))
                tweet.in_reply_to_user_id = parent.author_id
                tweet.conversation_id = parent.conversation_id or parent.id
            if quote:
                tweet.referenced.append(("quoted", quote))
            if retweet_of:
                original = self.tweets[retweet_of]
                tweet.referenced.append(("retweeted", retweet_of))
                tweet.text = f"RT @{self.users[original.author_id].username}: {original.text}"
                self.retweet_of[tweet.id] = retweet_of
            self.tweets[tweet.id] = tweet
            self._texts[(user_id, tweet.text.strip())] += 1
            return tweet

    def edit_tweet(self, user_id: str, tweet_id: str, text: str, *, media_ids: list[str] | None = None) -> Tweet:
        """A new version of a post, as X edits (docs, x-api/fundamentals/edit-posts): a new id, the history
        list on every version, within 30 minutes of the original and at most 5 times; reposts and replies
        to others cannot be edited. Reads then show the new version; the earlier ones stay readable by id."""
        with self.lock:
            old = self.tweets.get(tweet_id)
            if old is None:
                raise err.not_found("tweet", tweet_id)
            if old.author_id != user_id:
                raise err.forbidden("You are not authorized to edit this Tweet.")
            replied = next((ref for kind, ref in old.referenced if kind == "replied_to"), None)
            others = replied is not None and old.in_reply_to_user_id != user_id
            if not old.latest or "retweeted" in old.kinds() or others:
                raise err.invalid(f"Tweet {tweet_id} is not eligible for editing", "edit_options", tweet_id)
            if self.now() >= old.editable_until() or len(old.versions()) > EDITS_MAX:
                raise err.invalid(f"Tweet {tweet_id} can no longer be edited", "edit_options", tweet_id)
            if weighted_length(text) > 280:
                raise err.invalid("Your Post text is too long.", "text", len(text))
            new = Tweet(
                self.next_id(),
                user_id,
                text,
                self.now(),
                lang=old.lang,
                possibly_sensitive=old.possibly_sensitive,
                referenced=list(old.referenced),
                in_reply_to_user_id=old.in_reply_to_user_id,
                conversation_id=old.conversation_id,
                media_ids=list(old.media_ids if media_ids is None else media_ids),
                link_titles=dict(old.link_titles),
                first_created_at=old.first_created_at or old.created_at,
            )
            history = old.history or [old.id]
            history.append(new.id)  # one list shared by every version, so each reads the whole chain
            old.history = new.history = history
            self.tweets[new.id] = new
            self._texts[(user_id, old.text.strip())] -= 1
            self._texts[(user_id, text.strip())] += 1
            return new

    def delete_tweet(self, user_id: str, tweet_id: str) -> dict[str, Any]:
        with self.lock:
            tweet = self.tweets.get(tweet_id)
            if tweet is None:
                raise err.not_found("tweet", tweet_id)
            if tweet.author_id != user_id:
                raise err.forbidden("You are not authorized to delete this Tweet.")
            # Deleting any version of an edited post deletes the whole chain (X's edit rules); only the
            # latest version's text counts for the duplicate rule.
            shown = self.tweets.get(tweet.versions()[-1], tweet)
            self._texts[(user_id, shown.text.strip())] -= 1
            for version in tweet.versions():
                self.tweets.pop(version, None)
                self.retweet_of.pop(version, None)
        return {"data": {"deleted": True}}

    def retweet(self, user_id: str, path_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if path_id != user_id:
            raise err.forbidden("You are not allowed to retweet on behalf of another user.")
        target = str(body.get("tweet_id") or "")
        with self.lock:
            if target not in self.tweets:
                raise err.not_found("tweet", target)
            # A second retweet of the same post changes nothing, as on X.
            if not any(o == target and self.tweets[r].author_id == user_id for r, o in self.retweet_of.items()):
                self.add_tweet(user_id, "", retweet_of=target)
        # rest_id: "the ID of the reposted Post" (RepostPostResponseData, required in the spec).
        return {"data": {"retweeted": True, "rest_id": target}}

    def unretweet(self, user_id: str, path_id: str, target: str) -> dict[str, Any]:
        if path_id != user_id:
            raise err.forbidden("You are not allowed to undo a retweet on behalf of another user.")
        with self.lock:
            # Undoing a retweet that is not there changes nothing, as on X.
            for own in [r for r, o in self.retweet_of.items() if o == target and self.tweets[r].author_id == user_id]:
                self._texts[(user_id, self.tweets[own].text.strip())] -= 1
                del self.tweets[own]
                self.retweet_of.pop(own, None)
        return {"data": {"retweeted": False}}

    # ---- reads ----

    def me(self, user_id: str, params: dict[str, str]) -> dict[str, Any]:
        fields = _fields(params, "user.fields", USER_FIELDS)
        return {"data": render_user(self.users[user_id], fields, self._count_by(user_id))}

    def _count_by(self, user_id: str) -> int:
        with self.lock:
            return sum(1 for t in self.tweets.values() if t.author_id == user_id and t.latest)

    def user_tweets(self, user_id: str, params: dict[str, str]) -> dict[str, Any]:
        if user_id not in self.users:
            raise err.not_found("user", user_id)
        exclude = set(filter(None, params.get("exclude", "").split(",")))
        kinds = {"retweets": "retweeted", "replies": "replied_to"}

        def wanted(t: Tweet) -> bool:
            return t.author_id == user_id and not any(kinds.get(x) in t.kinds() for x in exclude)

        return self._page(wanted, params, "pagination_token", (5, 100))

    def search_recent(self, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("query", "")
        if not query or len(query) > 512:
            raise err.invalid("query must be 1 to 512 characters", "query", query)
        try:
            predicate = compile_query(query)
        except QueryError as exc:
            raise err.invalid(f"There were errors processing your request: {exc}", "query", query) from None
        oldest = self.now() - timedelta(days=7)
        # Like X: recent search covers 7 days, and a since_id or start_time before that is a 400, not an empty page.
        since = params.get("since_id", "")
        if since.isdigit() and snowflake_time(int(since)) < oldest:
            raise err.invalid(
                f"Invalid 'since_id':'{since}'. 'since_id' must be a tweet id created after {iso(oldest)}. "
                "Please make a request with a more recent tweet ID.",
                "since_id",
                since,
            )
        start = _time_param(params, "start_time")
        if start is not None and start < oldest:
            raise err.invalid(
                f"Invalid 'start_time':'{params['start_time']}'. 'start_time' must be on or after {iso(oldest)}",
                "start_time",
                params["start_time"],
            )
        lower = max(oldest, start or oldest)
        return self._page(
            lambda t: t.created_at >= lower and predicate(t, self.users[t.author_id]), params, "next_token", (10, 100)
        )

    def _page(
        self, wanted: Callable[[Tweet], bool], params: dict[str, str], token_name: str, bounds: tuple[int, int]
    ) -> dict[str, Any]:
        if "post.fields" in params and "tweet.fields" in params:
            raise err.invalid("Give post.fields or the older tweet.fields, not both", "tweet.fields", "")
        old = "tweet.fields" in params
        fields = _fields(params, "tweet.fields", TWEET_FIELDS) if old else _fields(params, "post.fields", POST_FIELDS)
        user_fields = _fields(params, "user.fields", USER_FIELDS)
        expansions = _fields(params, "expansions", EXPANSIONS)
        legacy = self.legacy_names or old or bool({"referenced_tweets.id", "edit_history_tweet_ids"} & expansions)
        media_fields = frozenset(_fields(params, "media.fields", MEDIA_FIELDS))
        shape = Shape(frozenset(fields), frozenset(expansions), legacy, media_fields)
        size = _int_param(params, "max_results", bounds[0], *bounds)
        since = _int_param(params, "since_id", 0, 0, 2**63)
        until = _int_param(params, "until_id", 2**63, 0, 2**63)
        token = params.get(token_name)
        if token:
            try:
                until = min(until, int(token, 16))
            except ValueError:
                raise err.invalid(f"The `{token_name}` query parameter value is not valid", token_name, token) from None
        now = self.now()
        with self.lock:
            # Reads show the latest version of an edited post (X's edit rules), which has the newest id.
            matched = sorted(
                (t for t in self.tweets.values() if t.latest and since < int(t.id) < until and wanted(t)),
                key=lambda t: int(t.id),
                reverse=True,
            )
            page, more = matched[:size], len(matched) > size
            keys = {t.id: [self.media.items[m].key for m in t.media_ids] for t in page}
            data = [render_tweet(t, shape, self.tco, keys[t.id], now) for t in page]
            referenced = {ref: self.tweets[ref] for t in page for _, ref in t.referenced if ref in self.tweets}
            if shape.earlier_versions:
                referenced.update({v: self.tweets[v] for t in page for v in t.versions()[:-1] if v in self.tweets})
            attached = [self.media.items[m] for t in page for m in t.media_ids] if shape.media else []
            authors = {t.author_id: self.users[t.author_id] for t in page}
            users = [render_user(u, user_fields, self._count_by(u.id)) for u in authors.values()]
        if not page:
            return {"meta": {"result_count": 0}}
        answer: dict[str, Any] = {"data": data}
        includes: dict[str, Any] = {}
        if "author_id" in expansions:
            includes["users"] = users
        expanded = shape.earlier_versions or expansions & {"referenced_posts", "referenced_tweets.id"}
        if referenced and (shape.references or shape.earlier_versions) and expanded:
            # Included posts carry the fields asked of the page's posts (X applies post.fields to includes too),
            # so a quoted post's links and card titles come along.
            plain = Shape(frozenset(fields), frozenset({"author_id"}), legacy, media_fields)
            includes["tweets" if legacy else "posts"] = [
                render_tweet(t, plain, self.tco, [], now) for t in referenced.values()
            ]
        if attached:
            includes["media"] = [render_media(m, media_fields) for m in attached]
        if includes:
            answer["includes"] = includes
        meta: dict[str, Any] = {"newest_id": page[0].id, "oldest_id": page[-1].id, "result_count": len(page)}
        if more:
            meta["next_token"] = format(int(page[-1].id), "x")
        answer["meta"] = meta
        return answer


def _fields(params: dict[str, str], name: str, known: frozenset[str]) -> set[str]:
    values = {v for v in params.get(name, "").split(",") if v}
    unknown = sorted(values - known)
    if unknown:
        raise err.invalid(
            f"The `{name}` query parameter value [{unknown[0]}] is not one of {sorted(known)}", name, unknown[0]
        )
    return values


def snowflake_time(tweet_id: int) -> datetime:
    """When an X id was made: its top bits are milliseconds since the snowflake epoch."""
    return datetime.fromtimestamp(((tweet_id >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)


def _time_param(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise err.invalid(
            f"Invalid '{name}':'{raw}'. '{name}' must be a valid ISO 8601 date (YYYY-MM-DDTHH:mm:ssZ)", name, raw
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise err.invalid(f"The `{name}` query parameter value [{raw}] is not valid", name, raw) from None
    if not low <= value <= high:
        raise err.invalid(f"The `{name}` query parameter value [{raw}] is not between {low} and {high}", name, raw)
    return value
