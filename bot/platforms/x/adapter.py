"""X (API v2): tweepy's v2 Client on a configurable host, plus the v2 chunked media upload.

The client lives in ``client``, uploads in ``upload`` and the error mapping in ``errors``.
"""

from __future__ import annotations

import functools
import html
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bot.core.errors import BotError, ContentRejected, RateLimited
from bot.core.values import (
    AccountLike,
    Identity,
    Limits,
    Mention,
    MentionPage,
    Outgoing,
    Progress,
    Receipt,
)
from bot.platforms.base import EARLIER_VERSIONS, Platform
from bot.platforms.x.errors import map_error

if TYPE_CHECKING:
    import requests

    from bot.platforms.x.client import XClient
    from bot.platforms.x.search import Extras, SearchPacer

MB = 1024 * 1024
SEARCH_PAGE = 100
SEARCH_WINDOW = 7 * 86400.0  # recent search reaches back 7 days; an older since_id is a 400
SEARCH_MARGIN = 300.0
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # X ids: milliseconds since this epoch, shifted left 22 bits
RECONCILE_PAGES = 10  # X serves an account's latest 3,200 posts; 1,000 is ample for a retry
GIF_FORMATS = ("GIF",)


def comparable(text: str) -> str:
    """Text as X may echo it back: NFC, unescaped, every link (X wraps them in t.co) reduced to a marker."""
    from bot.platforms.x.text import extract_urls_with_indices  # X's own link rules, scheme-less links too

    text = unicodedata.normalize("NFC", html.unescape(text))
    for found in reversed(extract_urls_with_indices(text)):
        start, end = found["indices"]
        text = f"{text[:start]}\x00{text[end:]}"
    return " ".join(text.split())


def _image_format(path: Path) -> str:
    """ "GIF" for a GIF file (by its signature: no image library needed), else ""."""
    try:
        with path.open("rb") as file:
            return "GIF" if file.read(6) in (b"GIF87a", b"GIF89a") else ""
    except OSError:
        return ""  # a missing file is reported by the media checks


@functools.lru_cache(maxsize=1024)
def _weighted_length(text: str) -> int:
    # A fan-out checks the same text once per account; twitter-text takes about 1 ms per parse.
    from bot.platforms.x.text import parse_tweet  # weighted length: CJK/emoji count 2, URLs 23

    length: int = parse_tweet(text).weightedLength
    return length


class X(Platform):
    name: ClassVar[str] = "x"
    default_base_url: ClassVar[str] = "https://api.x.com"
    required_credentials: ClassVar[tuple[str, ...]] = (
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    )
    limits: ClassVar[Limits] = Limits(
        max_text=280,
        max_images=4,
        image_max_bytes=5 * MB,
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=512 * MB,
        video_max_seconds=140.0,
        video_formats=frozenset({"mp4", "mov"}),
        alt_max=1000,
        captions=True,
        # POST /2/tweets on the Basic tier: 100 requests in 24 hours per user (Free: 17; Pro: 100 in 15 minutes).
        # https://docs.x.com/x-api/fundamentals/rate-limits
        posts_per_day=100,
    )
    stage_group: ClassVar[int] = 101  # media staged before a slot: one upload with 100 additional owners
    # POST /2/tweets: 10,000 per app in 24 hours, all its users together (docs.x.com, x-api/fundamentals/rate-limits).
    app_caps: ClassVar[Mapping[str, tuple[int, float]]] = {"post": (10_000, 86_400.0)}

    @classmethod
    def measure_text(cls, text: str) -> int:
        return _weighted_length(text)

    @classmethod
    def media_mix_refusal(cls, image_formats: Sequence[str]) -> str | None:
        """Why X refuses a post with images of these (Pillow) formats, or None: a GIF must be a post's only media."""
        gifs = sum(1 for f in image_formats if f.upper() in GIF_FORMATS)
        if gifs and len(image_formats) > 1:
            return f"a GIF must be a post's only media on {cls.name} ({len(image_formats)} images given)"
        return None

    def validate(self, out: Outgoing) -> None:
        super().validate(out)
        if len(out.images) > 1:
            refusal = self.media_mix_refusal([_image_format(i.path) for i in out.images])
            if refusal:
                raise ContentRejected(refusal)

    def __init__(
        self,
        account: AccountLike,
        secrets: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        **base: Any,
    ) -> None:
        """``base`` holds the options every Platform takes (timeout, wall, state_dir, media_host)."""
        super().__init__(account, secrets, **base)
        self._sleep = sleep
        self._client_instance: XClient | None = None
        self._me: Identity | None = None
        self._expired_cursors: set[str] = set()  # reported once each
        self._share_as = self._sharing_id()
        if self._share_as is not None:
            from bot.platforms.x.upload import SHARED

            SHARED.join(self.base_url, self._share_as)
        self._pacer_instance: SearchPacer | None = None

    @property
    def _pacer(self) -> SearchPacer:
        if self._pacer_instance is None:
            from bot.platforms.x.search import DEFAULT_MAX_GAP, SearchPacer

            options = self.account.options
            budget = options.get("search_daily_reads")
            self._pacer_instance = SearchPacer(
                self._wall,
                daily_reads=int(budget) if budget else None,
                max_gap=float(options.get("search_backoff_max", DEFAULT_MAX_GAP)),
                state_file=self.state_dir / f"x-reads-{self.account.id}.json" if self.state_dir else None,
            )
        return self._pacer_instance

    def configure_search(
        self, *, daily_reads: int | None = None, max_interval: float | None = None, interval: float | None = None
    ) -> None:
        """Tracking settings from config/reshare.yaml: posts X may bill a day, the back-off's longest gap, the poll interval."""
        self._pacer.configure(daily_reads=daily_reads, max_gap=max_interval, poll_interval=interval)

    def _sharing_id(self) -> str | None:
        """Our user id when this account shares uploads with the process's other X accounts (the default)."""
        if not self.account.options.get("share_media", True):
            return None
        # additional_owners takes user ids: share only when the access token tells ours without a request.
        prefix = self._secrets.get("access_token", "").partition("-")[0]
        return prefix if prefix.isdigit() else None

    # ---- the client, its rate gate and its headers ----

    @property
    def _client(self) -> XClient:
        if self._client_instance is None:
            from bot.platforms.x.client import XClient  # tweepy loads only when X is used

            self._client_instance = XClient(
                self.base_url,
                {role: self._secret(role) for role in self.required_credentials},
                timeout=self.timeout,
                before_send=self._before_send,
                on_answer=self._observe,
            )
        return self._client_instance

    def prepare(self) -> None:
        """Build the client now (the worker's warm-up), so the first slot does not pay for it."""
        self._client  # noqa: B018  (the property builds and keeps it)

    def rate_app(self) -> str | None:
        """The app, by a digest of its consumer key (never the key itself): its 24-hour caps are shared."""
        import hashlib

        return hashlib.sha256(self._secret("consumer_key").encode()).hexdigest()[:16]

    def _before_send(self, bucket: str) -> None:
        wait = self.gate.wait_needed(bucket)
        if wait > 0:
            raise RateLimited(f"x rate limit on {bucket}: waiting {wait:.0f}s", retry_after=wait)

    def _observe(self, bucket: str, response: requests.Response) -> None:
        headers = response.headers
        for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
            remaining, reset = headers.get(f"{prefix}-remaining"), headers.get(f"{prefix}-reset")
            if remaining is not None and reset is not None:
                try:
                    self.gate.observe(bucket, int(remaining), float(reset), app=prefix == "x-app-limit-24hour")
                except ValueError:
                    continue  # a malformed header is X's problem; the 429, if any, still stops us

    def close(self) -> None:
        if self._share_as is not None:
            from bot.platforms.x.upload import SHARED

            SHARED.leave(self.base_url, self._share_as)
        if self._client_instance is not None:
            self._client_instance.close()

    # ---- hooks ----

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        if not (out.images or out.video):
            return self._post(out, [])
        from tweepy.errors import BadRequest

        from bot.platforms.x.upload import upload_media

        media_ids, borrowed = upload_media(
            self._client, out, progress, self.log, self._sleep, self.base_url, self._share_as
        )
        try:
            return self._post(out, media_ids)
        except BadRequest:
            if not borrowed:
                raise
            # A 400 creates no post, so trying again cannot double it: X refused media another
            # account uploaded for us (expired, or not shared after all). Upload our own once.
            from bot.platforms.x.upload import SHARED

            for file, media_id in borrowed:
                SHARED.forget(self.base_url, file, media_id)
            self.log.warning("shared_media_refused", media_ids=[m for _, m in borrowed])
            media_ids, _ = upload_media(self._client, out, progress, self.log, self._sleep, self.base_url, None)
            return self._post(out, media_ids)

    @property
    def share_id(self) -> str | None:
        """Our user id when uploads are shared with the process's other X accounts, else None."""
        return self._share_as

    def _stage(self, out: Outgoing, together: Sequence[Any]) -> bool:
        # The media a fan-out will post, uploaded once for this account and up to 100 others before
        # the slot: at the slot each account then makes one request, the post itself.
        if not (out.images or out.video):
            return False
        if self._share_as is None:
            # This account uploads its own media at the slot (share_media: false); the group's
            # first sharing account stages for the others.
            sharing = [
                a for a in together if getattr(a, "share_id", None) and getattr(a, "base_url", None) == self.base_url
            ]
            return bool(sharing) and sharing[0].stage(out, sharing[1:])
        from bot.platforms.x.upload import upload_media

        peers = (getattr(a, "share_id", None) for a in together if getattr(a, "base_url", None) == self.base_url)
        among = {self._share_as, *(peer for peer in peers if peer)}
        upload_media(self._client, out, None, self.log, self._sleep, self.base_url, self._share_as, among)
        return True

    def _post(self, out: Outgoing, media_ids: list[str]) -> Receipt:
        answer = self._client.create_tweet(text=out.text, media_ids=media_ids or None, user_auth=True)
        return self._receipt(str(answer.data["id"]))

    def _receipt(self, tweet_id: str) -> Receipt:
        handle = (self.account.handle or "").lstrip("@") or (self._me.handle if self._me else "i/web")
        return Receipt(remote_id=tweet_id, url=f"https://x.com/{handle}/status/{tweet_id}")

    def _my_id(self) -> str:
        # X access tokens begin with the user id (tweepy relies on it too); that spares a
        # users/me call, whose window is small, every time a fresh adapter reconciles.
        prefix = self._secret("access_token").partition("-")[0]
        return prefix if prefix.isdigit() else self._whoami().id

    def _find_published(self, out: Outgoing) -> Receipt | None:
        wanted, token = comparable(out.text), None
        # A busy account may have posted many times since the uncertain attempt: read back
        # page by page (newest first), up to a bound, stopping at the first match.
        for _ in range(int(self.account.options.get("reconcile_max_pages", RECONCILE_PAGES))):
            params = {"max_results": 100, "post.fields": "created_at"}
            if token:
                params["pagination_token"] = token
            # Through our session, not tweepy's get_users_tweets: see _search for why.
            answer = self._client.send("GET", f"/2/users/{self._my_id()}/tweets", params=params).json()
            for tweet in answer.get("data") or []:
                seen = comparable(tweet["text"])
                # X appends a link to attached media at the end of the text.
                if seen == wanted or ((out.images or out.video) and seen.removesuffix(" \x00") == wanted):
                    return self._receipt(str(tweet["id"]))
            token = (answer.get("meta") or {}).get("next_token")
            if not token:
                break
        return None

    def _reshare(self, mention: Mention) -> Receipt:
        answer = self._client.retweet(mention.remote_id, user_auth=True)
        if not (answer.data or {}).get("retweeted"):
            raise ContentRejected(f"X did not retweet {mention.remote_id}")
        # X's answer names no id for the retweet itself; the receipt points at what was reshared.
        return Receipt(remote_id=mention.remote_id, url=mention.url)

    def _withdraw_reshare(self, mention: Mention, reshare_id: str | None) -> None:
        import tweepy

        # DELETE /2/users/:id/retweets/:source_tweet_id; undoing a retweet that is gone answers retweeted: false.
        try:
            self._client.unretweet(mention.remote_id, user_auth=True)
        except tweepy.NotFound:
            self.log.info("reshare_already_gone", remote_id=mention.remote_id)

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        from bot.platforms.x.search import join_cursor, queries, split_cursor

        key = tuple(sorted(t.lstrip("#").casefold() for t in hashtags))
        deferred = self._pacer.defer(key)
        if deferred is not None:
            self._deferred(deferred, hashtags)
            return MentionPage(mentions=[], cursor=cursor)
        # One query for every tag; several only when the tags make a query longer than X takes.
        wanted = queries(hashtags)
        cursors = split_cursor(cursor, len(wanted))
        mentions: dict[str, Mention] = {}
        for n, query in enumerate(wanted):
            found, cursors[n] = self._search(query, cursors[n], hashtags)
            mentions.update(found)
        self._pacer.searched(key, found=len(mentions))
        ordered = sorted(mentions.values(), key=lambda m: int(m.remote_id))
        return MentionPage(mentions=ordered, cursor=join_cursor(cursors))

    def _deferred(self, why: str, hashtags: Sequence[str]) -> None:
        if why == "budget_spent" and self._pacer.first_report_of_spent_budget():
            self.log.warning("mentions_budget_spent", hashtags=list(hashtags), daily_reads=self._pacer.daily_reads)
        else:
            self.log.debug("mentions_search_deferred", hashtags=list(hashtags), reason=why)

    def _search(self, query: str, cursor: str | None, hashtags: Sequence[str]) -> tuple[dict[str, Mention], str | None]:
        """One query's new posts since ``cursor`` and its new cursor; the posts read are billed to the pacer."""
        import tweepy

        from bot.platforms.x.search import (
            EXPANSIONS,
            MEDIA_FIELDS,
            PAGE_MAX,
            PAGE_MIN,
            POST_FIELDS,
            USER_FIELDS,
            as_tweepy_post,
            post_extras,
        )

        pages_left = int(self.account.options.get("search_max_pages", 5))
        mentions: dict[str, Mention] = {}
        newest, token = cursor, None
        since_id, start_time = self._search_from(cursor, hashtags)
        while pages_left > 0:
            pages_left -= 1
            remaining = self._pacer.remaining()
            if remaining is not None and remaining <= 0:
                break
            params: dict[str, Any] = {
                "query": query,
                # X bills per post returned: a page no larger than the budget left (X's minimum is 10).
                "max_results": PAGE_MAX if remaining is None else max(PAGE_MIN, min(PAGE_MAX, remaining)),
                "post.fields": ",".join(POST_FIELDS),
                "expansions": ",".join(EXPANSIONS),
                "user.fields": ",".join(USER_FIELDS),
                "media.fields": ",".join(MEDIA_FIELDS),
            }
            for name, value in (("since_id", since_id), ("start_time", start_time), ("next_token", token)):
                if value:
                    params[name] = value
            # tweepy 4.17's search_recent_tweets sends only the names of its own parameter list
            # (tweet.fields, referenced_tweets.id) and its Tweet model expects edit_history_tweet_ids:
            # X's current spec (v2.167) names them post.fields, referenced_posts and edit_history_post_ids.
            # So the request goes through the same tweepy-owned session (signed, gated, observed) as our
            # media upload, and tweepy's public Tweet and User models read the answer.
            answer = self._client.send("GET", "/2/tweets/search/recent", params=params).json()
            includes = answer.get("includes") or {}
            users = {str(u["id"]): tweepy.User(u) for u in includes.get("users", [])}
            meta = answer.get("meta") or {}
            for data in answer.get("data") or []:
                tweet = tweepy.Tweet(as_tweepy_post(data))
                extras = post_extras(data, includes)
                mentions[str(tweet.id)] = self._mention(tweet, users.get(str(tweet.author_id)), extras)
            self._pacer.billed(int(meta.get("result_count") or len(answer.get("data") or [])))
            if meta.get("newest_id") and (newest is None or int(meta["newest_id"]) > int(newest)):
                newest = str(meta["newest_id"])
            token = meta.get("next_token")
            if not token:
                break
        if token:
            self.log.warning("mentions_truncated", hashtags=list(hashtags), kept=len(mentions))
        return mentions, newest

    def _search_from(self, cursor: str | None, hashtags: Sequence[str]) -> tuple[str | None, str | None]:
        """``since_id`` and ``start_time`` for a search: X refuses a since_id older than its 7-day window."""
        if cursor is None or not cursor.isdigit():
            return cursor, None
        made = ((int(cursor) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000
        oldest = self._wall() - SEARCH_WINDOW + SEARCH_MARGIN  # a margin for our clock running behind X's
        if made >= oldest:
            return cursor, None
        # After a long outage, search the whole window instead of failing on every poll; posts older than
        # the window are out of recent search's reach anyway.
        if cursor not in self._expired_cursors:
            self._expired_cursors.add(cursor)
            self.log.warning(
                "mentions_cursor_expired",
                hashtags=list(hashtags),
                cursor=cursor,
                cursor_at=datetime.fromtimestamp(made, UTC).isoformat(),
                searched_from=datetime.fromtimestamp(oldest, UTC).isoformat(),
            )
        return None, datetime.fromtimestamp(oldest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _mention(self, tweet: Any, user: Any, extras: Extras) -> Mention:
        kinds = {ref.type: str(ref.id) for ref in (tweet.referenced_tweets or [])}
        ref = {f"{kind}_id": ref for kind, ref in kinds.items()}
        if extras.earlier_versions:
            ref[EARLIER_VERSIONS] = ",".join(extras.earlier_versions)
        username = user.username if user is not None else str(tweet.author_id)
        return Mention(
            remote_id=str(tweet.id),
            url=f"https://x.com/{username}/status/{tweet.id}",
            author_id=str(tweet.author_id),
            author_handle=username,
            author_name=user.name if user is not None else "",
            text=html.unescape(tweet.text),
            created_at=tweet.created_at,
            is_reply="replied_to" in kinds,
            is_reshare="retweeted" in kinds,
            sensitive=bool(tweet.possibly_sensitive),
            lang=tweet.lang,
            ref=ref,
            alt_texts=extras.alt_texts,
            card_title=extras.card_title,
            quoted_text=extras.quoted_text,
            author_created_at=user.created_at if user is not None else None,
            author_followers=_followers(user),
        )

    def _whoami(self) -> Identity:
        if self._me is None:
            answer = self._client.get_me(user_fields=["username"], user_auth=True)
            self._me = Identity(id=str(answer.data.id), handle=answer.data.username)
        return self._me

    def _map_error(self, exc: Exception) -> BotError:
        return map_error(exc, self.account, wall=self._wall) or self._unavailable(exc)


def _followers(user: Any) -> int | None:
    """The author's follower count from ``public_metrics``, None where X did not send it."""
    count = ((user.public_metrics if user is not None else None) or {}).get("followers_count")
    return int(count) if isinstance(count, int) else None
