"""X recent search, cost-aware: queries under X's length cap, per-query cursors, back-off and a daily read budget.

X bills reads per post returned, so a poller that searches every few seconds for nothing,
or pages through a flood, costs money. ``SearchPacer`` decides before each poll whether a
search goes out: after polls that found nothing the gap to the next search doubles (1, 2, 4 ...
polls, up to ``max_gap`` seconds of polls every ``poll_interval``) and a hit resets it. The gap is
counted in polls, not in the adapter's wall time: the tracker's clock decides when it polls (a
demo's clock runs faster than the wall), so the back-off follows that clock; the posts read in a UTC day
stop at ``daily_reads``. Names follow X's OpenAPI document v2.167 (August 2026):
``post.fields`` selects fields, ``referenced_posts`` lists references, ``edit_history_post_ids``
the edit chain; answers may still carry the older ``referenced_tweets`` /
``edit_history_tweet_ids`` (and ``includes.tweets``), and both are read.

What readers see beside the text goes through the blocked-word filter too, so a search also asks
for it (``post_extras``): image descriptions (expansion ``attachments.media_keys`` with
``media.fields=alt_text``, in ``includes.media``), the quoted post (expansion ``referenced_posts``,
in ``includes.posts``) and link-card titles (``entities.urls[].title``). An edited post comes back
as a new version with a new id whose ``edit_history_post_ids`` (a default field) lists the earlier
ones; ``bot.platforms.base.EARLIER_VERSIONS`` in the mention's ``ref`` tells the tracker which post it replaces.
"""

from __future__ import annotations

import html
import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUERY_MAX = 512  # X: a recent-search query of a self-serve app is at most 512 characters
QUERY_SUFFIX = " -is:retweet"
PAGE_MIN, PAGE_MAX = 10, 100  # max_results bounds of recent search
# Fields the spec's post.fields takes (author_id and referenced_posts come with their expansions);
# entities carry the link cards' titles.
POST_FIELDS = ("created_at", "lang", "possibly_sensitive", "conversation_id", "entities", "attachments")
EXPANSIONS = ("author_id", "referenced_posts", "attachments.media_keys")
MEDIA_FIELDS = ("alt_text",)  # media_key and type come by default
# created_at and public_metrics (followers_count) are the author's trust signals for the reshare policy.
USER_FIELDS = ("username", "name", "created_at", "public_metrics")
DEFAULT_MAX_GAP = 1800.0  # seconds: a quiet tag is still searched at least every 30 minutes
DEFAULT_POLL_INTERVAL = 300.0  # the tracker's default for X, until it tells its own
CURSOR_SEPARATOR = ","


def queries(hashtags: Sequence[str], limit: int = QUERY_MAX) -> list[str]:
    """Recent-search queries for ``hashtags``: one when it fits ``limit`` characters, else as few as fit."""
    tags = [f"#{tag.lstrip('#')}" for tag in hashtags]
    out: list[list[str]] = []
    for tag in tags:
        if out and len(_query(out[-1] + [tag])) <= limit:
            out[-1].append(tag)
            continue
        if len(_query([tag])) > limit:
            raise ValueError(f"hashtag {tag[:40]}... makes a query longer than {limit} characters")
        out.append([tag])
    return [_query(group) for group in out]


def _query(tags: list[str]) -> str:
    return f"({' OR '.join(tags)}){QUERY_SUFFIX}"


def split_cursor(cursor: str | None, count: int) -> list[str | None]:
    """One cursor per query: a plain id for one query, ids joined by commas for several."""
    if count == 1:
        return [cursor or None]
    parts = (cursor or "").split(CURSOR_SEPARATOR) if cursor and CURSOR_SEPARATOR in cursor else []
    if len(parts) != count:
        # The tag list was split differently before (or never): every query starts from the old single id.
        single = cursor if cursor and cursor.isdigit() else None
        return [single] * count
    return [part or None for part in parts]


def join_cursor(cursors: Sequence[str | None]) -> str | None:
    if len(cursors) == 1:
        return cursors[0]
    if not any(cursors):
        return None
    return CURSOR_SEPARATOR.join(c or "" for c in cursors)


def as_tweepy_post(data: dict[str, Any]) -> dict[str, Any]:
    """A post of the current spec with the names tweepy's ``Tweet`` model reads filled in from the new ones."""
    post = dict(data)
    if "referenced_tweets" not in post and "referenced_posts" in post:
        post["referenced_tweets"] = post["referenced_posts"]
    if "edit_history_tweet_ids" not in post:
        # tweepy 4.17's Tweet warns without it; the current spec names it edit_history_post_ids.
        post["edit_history_tweet_ids"] = post.get("edit_history_post_ids") or [post["id"]]
    return post


@dataclass(frozen=True)
class Extras:
    """What a reader sees with a post beside its text, and the versions it replaces."""

    alt_texts: tuple[str, ...] = ()
    card_title: str = ""
    quoted_text: str = ""
    earlier_versions: tuple[str, ...] = ()


def post_extras(data: dict[str, Any], includes: dict[str, Any]) -> Extras:
    """Alt texts, link-card titles, the quoted post's text and earlier versions of one post of a search answer."""
    media = {str(m.get("media_key")): m for m in includes.get("media") or [] if isinstance(m, dict)}
    posts = {str(p.get("id")): p for p in [*(includes.get("posts") or []), *(includes.get("tweets") or [])]}
    keys = (data.get("attachments") or {}).get("media_keys") or []
    alts = tuple(str(media[k]["alt_text"]) for k in keys if media.get(k, {}).get("alt_text"))
    urls = (data.get("entities") or {}).get("urls") or []
    titles = " | ".join(str(u["title"]) for u in urls if isinstance(u, dict) and u.get("title"))
    references = data.get("referenced_posts") or data.get("referenced_tweets") or []
    quoted = [posts[str(r["id"])] for r in references if r.get("type") == "quoted" and str(r.get("id")) in posts]
    quoted_text = html.unescape(str(quoted[0].get("text") or "")) if quoted else ""
    history = data.get("edit_history_post_ids") or data.get("edit_history_tweet_ids") or []
    earlier = tuple(str(v) for v in history if str(v) != str(data.get("id")))
    return Extras(alts, titles, quoted_text, earlier)


@dataclass
class _Quiet:
    streak: int = 0  # searches in a row that found nothing
    skipped: int = 0  # polls left out since the last search


class SearchPacer:
    """Back-off when nothing new and a daily budget of posts read; one per adapter, thread-safe.

    The budget is counted in posts returned (what X bills) per UTC day; it survives a restart when
    ``state_file`` is given. A budget of 0 or None means no budget.
    """

    def __init__(
        self,
        wall: Callable[[], float],
        *,
        daily_reads: int | None = None,
        max_gap: float = DEFAULT_MAX_GAP,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        state_file: Path | None = None,
    ) -> None:
        self._wall = wall
        self.daily_reads = daily_reads or None
        self.max_gap = max_gap
        self.poll_interval = poll_interval
        self._state_file = state_file
        self._lock = threading.Lock()
        self._quiet: dict[tuple[str, ...], _Quiet] = {}
        self._day, self.read_today = self._load()
        self._spent_reported: str | None = None

    def configure(
        self, *, daily_reads: int | None = None, max_gap: float | None = None, poll_interval: float | None = None
    ) -> None:
        """Take the tracking settings of config/reshare.yaml (None keeps the current value)."""
        with self._lock:
            if daily_reads is not None:
                self.daily_reads = daily_reads or None
            if max_gap is not None:
                self.max_gap = max_gap
            if poll_interval:
                self.poll_interval = poll_interval

    def _today(self) -> str:
        return datetime.fromtimestamp(self._wall(), UTC).date().isoformat()

    def _load(self) -> tuple[str, int]:
        today = self._today()
        if self._state_file is None or not self._state_file.exists():
            return today, 0
        try:
            saved = json.loads(self._state_file.read_text())
            day, reads = str(saved["day"]), int(saved["reads"])
        except (OSError, ValueError, KeyError, TypeError):
            return today, 0  # a damaged count is started afresh rather than stopping tracking
        return (day, reads) if day == today else (today, 0)

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self.read_today = today, 0

    def remaining(self) -> int | None:
        """Posts the budget still allows today; None without a budget."""
        with self._lock:
            self._roll()
            return None if self.daily_reads is None else max(0, self.daily_reads - self.read_today)

    def defer(self, key: tuple[str, ...]) -> str | None:
        """Why this poll sends no search ("backing_off", "budget_spent"), or None to search now."""
        with self._lock:
            self._roll()
            if self.daily_reads is not None and self.read_today >= self.daily_reads:
                return "budget_spent"
            quiet = self._quiet.setdefault(key, _Quiet())
            # One empty search changes nothing; each further one doubles the polls left out, up to max_gap.
            most = max(0, math.ceil(self.max_gap / max(self.poll_interval, 1.0)) - 1)
            wanted = min(2 ** (quiet.streak - 1) - 1, most) if quiet.streak > 1 else 0
            if quiet.skipped < wanted:
                quiet.skipped += 1
                return "backing_off"
            quiet.skipped = 0
            return None

    def first_report_of_spent_budget(self) -> bool:
        """True once a day, so a spent budget is logged as a warning once and then quietly."""
        with self._lock:
            if self._spent_reported == self._day:
                return False
            self._spent_reported = self._day
            return True

    def billed(self, read: int) -> None:
        """Count posts X returned (and bills), at once, so the next page of the same poll sees them."""
        with self._lock:
            self._roll()
            self.read_today += read
            self._save()

    def searched(self, key: tuple[str, ...], found: int) -> None:
        """Record a poll that searched: ``found`` new posts (a hit resets the back-off)."""
        with self._lock:
            quiet = self._quiet.setdefault(key, _Quiet())
            quiet.streak = 0 if found else min(quiet.streak + 1, 16)

    def _save(self) -> None:
        if self._state_file is None:
            return
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            temp = self._state_file.with_suffix(".tmp")
            temp.write_text(json.dumps({"day": self._day, "reads": self.read_today}))
            temp.replace(self._state_file)
        except OSError:
            pass  # the count then lives in memory only; tracking goes on


def estimate_month(
    interval: float, *, queries: int = 1, max_gap: float = DEFAULT_MAX_GAP, daily_reads: int | None = None
) -> dict[str, int | None]:
    """Searches a month (30 days) when every poll finds posts and when none does, and the posts billable.

    ``posts_at_most`` is the budget's ceiling (None without one: then each search may bill up to a page).
    """
    month = 30 * 86400.0
    busy = int(month / max(interval, 1.0)) * queries
    quiet = int(month / max(min(max_gap, month), interval, 1.0)) * queries
    return {
        "searches_busy": busy,
        "searches_quiet": quiet,
        "posts_at_most": None if not daily_reads else daily_reads * 30,
    }
