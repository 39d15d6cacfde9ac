"""The reshare policy: a pure, deterministic judgement of one hashtag post.

Anyone can use a campaign hashtag (trolls, spammers, the regime's supporters), so
nothing here trusts the post: ``decide`` answers allow, skip or review with a
reason, from the post, the campaign's rules and the counts the ledger holds.
It reads no clock and no database; the tracker passes both in through ``Context``.

Reasons (``Decision.reason``) include: partner, tagged, own, never_from, reply, reshare, sensitive,
blocked_word, author_cooldown, cap_author_day, new_account, few_followers, unknown_account,
display_name_unknown (review: the platform did not give the author's display name, so the blocked words could
not be checked against it; Threads without ``threads_profile_discovery``), first_time_author, awaiting_review,
cap_day, cap_hour.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

from bot.core.values import DISPLAY_NAME_UNKNOWN, Mention

if TYPE_CHECKING:
    import regex

    from bot.resharing.matching import Matcher

Action = Literal["allow", "skip", "review"]
SKIP_KINDS = frozenset({"replies", "reshares", "own", "sensitive"})

# Letters NFKD does not decompose, folded so "Łukašenka" and "LUKASENKA" are the same word.
_FOLD = str.maketrans(
    {
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ø": "o",
        "Ø": "o",
        "ħ": "h",
        "ı": "i",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "þ": "th",
        "Þ": "th",
        "ŀ": "l",
    }
)


@cache
def _patterns() -> tuple[regex.Pattern[str], regex.Pattern[str], regex.Pattern[str]]:
    """Words, camelCase joints, and zero-width joiners and friends (used to split words unseen).

    Compiled on first use: ``regex`` (about 0.7 MB) then stays out of a worker no mention has reached.
    """
    import regex

    return regex.compile(r"[\p{L}\p{N}]+"), regex.compile(r"(?<=\p{Ll})(?=\p{Lu})"), regex.compile(r"[\p{Cf}]")


def fold(text: str) -> str:
    """Case- and accent-insensitive form of ``text`` (compatibility forms too, e.g. full-width letters)."""
    text = _patterns()[2].sub("", text).translate(_FOLD).casefold()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def words(text: str) -> str:
    """The folded words of ``text`` as one space-separated string, padded for whole-word search.

    camelCase is also split (``#LukasenkaForever``), as extra words after the plain ones.
    """
    word, camel, invisible = _patterns()
    plain = word.findall(fold(text))
    split = word.findall(fold(camel.sub(" ", invisible.sub("", text))))
    return " " + " ".join(plain) + " | " + " ".join(split) + " "


def server_domain(netloc: str | None) -> str | None:
    """A server's ``host[:port]`` as handles compare it: any case, no default port, no trailing dot."""
    if not netloc:
        return None
    host = unicodedata.normalize("NFKC", netloc).strip().casefold().rpartition("@")[2]
    for default in (":443", ":80"):
        host = host.removesuffix(default)
    name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if colon and port.isdigit():
        return f"{name.rstrip('.')}:{port}"
    return host.rstrip(".") or None


@dataclass(frozen=True)
class Handle:
    """A handle compared the way people mean it: no leading @, any case, Mastodon user@domain aware."""

    local: str
    domain: str | None

    @classmethod
    def parse(cls, raw: str, instance: str | None = None) -> Handle:
        """``instance`` qualifies a bare Mastodon handle (local accounts are shown without a domain).

        The domain keeps its port (``partner@127.0.0.1:8765`` is another server than port 3000);
        a scheme's default port and a trailing dot are dropped, as they name the same server.
        """
        text = unicodedata.normalize("NFKC", raw).strip().lstrip("@").casefold()
        local, _, domain = text.partition("@")
        return cls(local, server_domain(domain) or server_domain(instance))

    def matches(self, entry: Handle, *, loose: bool, instance: str | None = None) -> bool:
        """Whether this author is the one ``entry`` names.

        An entry without a domain names the local account (or, when ``loose``, the
        name on any instance: used for never_from, where matching too much is the safe side).
        """
        if self.local != entry.local:
            return False
        if entry.domain is None:
            return loose or self.domain is None or self.domain == instance
        return self.domain == entry.domain


@dataclass(frozen=True)
class Rules:
    """The campaign's policy in the form ``decide`` compares against."""

    always_from: tuple[str, ...] = ()
    never_from: tuple[str, ...] = ()
    blocked_words: tuple[str, ...] = ()
    skip: frozenset[str] = SKIP_KINDS
    max_per_hour: int = 4
    max_per_day: int = 20
    mode: str = "auto"
    author_cooldown: timedelta = timedelta(hours=6)
    across_accounts: bool = False
    min_spacing: timedelta | None = None
    min_account_age: Mapping[str, timedelta] = field(default_factory=dict)  # platform -> least account age
    min_followers: Mapping[str, int] = field(default_factory=dict)
    new_accounts: str = "review"  # review | skip | allow: an author below a minimum
    unknown_signals: str = "new"  # new | ignore: an age or follower count the platform did not give
    first_time_authors: str = "allow"  # allow | review: an author this campaign has never reshared
    max_per_author_per_day: int | None = None

    @classmethod
    def from_policy(cls, policy: Any) -> Rules:
        """From the campaign model's ``Policy`` (extra fields there are ignored)."""
        spacing = getattr(policy, "min_spacing", None)
        if spacing is not None and not isinstance(spacing, timedelta):
            spacing = timedelta(seconds=float(spacing))
        return cls(
            always_from=tuple(policy.always_from),
            never_from=tuple(policy.never_from),
            blocked_words=tuple(policy.blocked_words),
            skip=frozenset(policy.skip),
            max_per_hour=int(policy.max_per_hour),
            max_per_day=int(policy.max_per_day),
            mode=str(policy.mode),
            author_cooldown=getattr(policy, "author_cooldown", None) or timedelta(hours=6),
            across_accounts=bool(getattr(policy, "across_accounts", False)),
            min_spacing=spacing,
            min_account_age=dict(getattr(policy, "min_account_age", None) or {}),
            min_followers=dict(getattr(policy, "min_followers", None) or {}),
            new_accounts=str(getattr(policy, "new_accounts", "review")),
            unknown_signals=str(getattr(policy, "unknown_signals", "new")),
            first_time_authors=str(getattr(policy, "first_time_authors", "allow")),
            max_per_author_per_day=getattr(policy, "max_per_author_per_day", None),
        )

    @property
    def spacing(self) -> timedelta:
        """Least time between two reshares by one account, so a flood never becomes a burst."""
        if self.min_spacing is not None:
            return self.min_spacing
        return timedelta(seconds=3600 / max(self.max_per_hour, 1))

    @property
    def blocked(self) -> Matcher:
        """The blocked words compiled for matching (built once per distinct list, then shared)."""
        # Imported here, at the first mention judged against blocked words: matching loads ICU and the
        # Snowball stemmers (about 8.5 MB), which a worker waiting for its next slot does not need.
        from bot.resharing.matching import matcher

        return matcher(self.blocked_words)


@dataclass(frozen=True)
class Context:
    """Everything ``decide`` needs beyond the post: the rules and what the ledger counted."""

    rules: Rules
    own_ids: frozenset[str] = frozenset()  # author ids of the campaign's accounts on this platform
    own_handles: tuple[str, ...] = ()
    instance: str | None = None  # the reading account's Mastodon domain, to qualify bare handles
    last_hour: int = 0  # reshares by this account in the last hour, including ones already scheduled
    last_day: int = 0
    author_last: datetime | None = None  # last reshare (or scheduled one) of this author by this account
    now: datetime | None = None
    platform: str = ""  # names the trust minimums that apply
    author_day: int = 0  # this author's reshares (done, scheduled or queued) by this account in 24 hours
    author_known: bool = True  # this campaign has reshared (or scheduled) this author before


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # a short code: partner, tagged, own, never_from, blocked_word, display_name_unknown, cap_hour, ...
    detail: str = ""  # what a person needs to understand the reason


def _listed(author: Handle, entries: Iterable[str], *, loose: bool, instance: str | None) -> str | None:
    for entry in entries:
        if author.matches(Handle.parse(entry), loose=loose, instance=instance):
            return entry
    return None


def blocked_word(mention: Mention, rules: Rules) -> str | None:
    """Where a blocked word or phrase appears (text, warning, alt text, card, quote, display name, handle), or None."""
    if not rules.blocked_words:
        return None
    found = rules.blocked
    if not found.terms:
        return None
    fields = (
        ("text", mention.text),
        ("content warning", mention.spoiler_text),
        *(("alt text", alt) for alt in mention.alt_texts),
        ("link card", mention.card_title),
        ("quoted post", mention.quoted_text),
        ("display name", mention.author_name),
        ("handle", mention.author_handle),
    )
    for where, value in fields:
        hit = found.find(value) if value else None
        if hit:
            shown = hit.found if len(hit.found) <= 40 else hit.found[:39] + "…"
            return f"blocked word {hit.term.written!r} in {where} (as {shown!r})"
    return None


def judge(mention: Mention, ctx: Context) -> Decision:
    """The decision on the post alone, before any cap: skip, or allow with why."""
    rules = ctx.rules
    author, where = Handle.parse(mention.author_handle, ctx.instance), ctx.instance
    if "own" in rules.skip and (
        mention.author_id in ctx.own_ids or _listed(author, ctx.own_handles, loose=False, instance=where)
    ):
        return Decision("skip", "own", "posted by one of the campaign's accounts")
    entry = _listed(author, rules.never_from, loose=True, instance=where)
    if entry:
        return Decision("skip", "never_from", f"author matches never_from {entry!r}")
    # Shape rules hold for partners too: a reply or a reshare is not theirs to amplify as a post.
    if "replies" in rules.skip and mention.is_reply:
        return Decision("skip", "reply", "the post is a reply")
    if "reshares" in rules.skip and mention.is_reshare:
        return Decision("skip", "reshare", "the post is itself a reshare")
    if "sensitive" in rules.skip and (mention.sensitive or mention.spoiler_text.strip()):
        return Decision("skip", "sensitive", "marked sensitive or behind a content warning")
    partner = _listed(author, rules.always_from, loose=False, instance=where)
    if partner:
        # Partners write about the regime by name; blocked words are there to stop trolls, not them.
        return Decision("allow", "partner", f"author matches always_from {partner!r}")
    hit = blocked_word(mention, rules)
    if hit:
        return Decision("skip", "blocked_word", hit)
    return Decision("allow", "tagged", "tagged post that passed the policy")


def untrusted(mention: Mention, ctx: Context) -> Decision | None:
    """The first trust minimum the author falls below (reason new_account, few_followers, unknown_account)."""
    rules = ctx.rules
    age_min, followers_min = rules.min_account_age.get(ctx.platform), rules.min_followers.get(ctx.platform)
    unknown: list[str] = []
    if age_min is not None:
        made = mention.author_created_at
        if made is None:
            unknown.append("account age")
        elif ctx.now is not None and ctx.now - made < age_min:
            # A creation time ahead of our clock is a new account too, never an old one.
            days = max((ctx.now - made).total_seconds(), 0) / 86400
            return Decision(
                "review",
                "new_account",
                f"account made {made.date().isoformat()}, {days:.1f} days old "
                f"(min_account_age {ctx.platform} {_duration(age_min)})",
            )
    if followers_min is not None:
        if mention.author_followers is None:
            unknown.append("follower count")
        elif mention.author_followers < followers_min:
            return Decision(
                "review",
                "few_followers",
                f"{mention.author_followers} followers (min_followers {ctx.platform} {followers_min})",
            )
    if unknown and rules.unknown_signals == "new":
        return Decision("review", "unknown_account", f"{ctx.platform} did not say the author's {' or '.join(unknown)}")
    return None


def _duration(value: timedelta) -> str:
    days, seconds = value.days, value.seconds
    if seconds == 0:
        return f"{days}d"
    return f"{days}d{seconds // 3600}h" if days else f"{seconds // 3600}h{(seconds % 3600) // 60}m"


def decide(mention: Mention, ctx: Context) -> Decision:
    """Allow, skip or review ``mention``; caps apply to what the policy would otherwise allow.

    Partners (always_from) pass the trust signals and first-time routing: staff named them.
    The per-author limits (cooldown, max_per_author_per_day) and the caps hold for everyone.
    """
    verdict = judge(mention, ctx)
    if verdict.action == "skip":
        return verdict
    rules = ctx.rules
    if ctx.author_last is not None and ctx.now is not None and ctx.now - ctx.author_last < rules.author_cooldown:
        return Decision("skip", "author_cooldown", f"this author was reshared at {ctx.author_last.isoformat()}")
    cap = rules.max_per_author_per_day
    if cap is not None and ctx.author_day >= cap:
        return Decision(
            "skip",
            "cap_author_day",
            f"{ctx.author_day} of this author's posts in 24 hours (max_per_author_per_day {cap})",
        )
    if verdict.reason != "partner":
        # Partners are named by handle; anyone else may hide a blocked word in a display name we could not read.
        if DISPLAY_NAME_UNKNOWN in mention.ref:
            why = mention.ref.get(DISPLAY_NAME_UNKNOWN) or ""
            return Decision(
                "review",
                "display_name_unknown",
                f"{ctx.platform or 'the platform'} did not say the author's display name"
                + (f" ({why.replace('_', ' ')})" if why else ""),
            )
        routed = untrusted(mention, ctx)
        if routed is not None and rules.new_accounts != "allow":
            return Decision(cast(Action, rules.new_accounts), routed.reason, routed.detail)
        if not ctx.author_known and rules.first_time_authors == "review":
            return Decision("review", "first_time_author", "this campaign has not reshared this author before")
    if rules.mode == "review" and verdict.reason != "partner":
        # Staff decide; hour and day caps apply when approved posts are reshared. Partners are
        # already vouched for by staff (always_from), so they go straight to the caps below.
        return Decision("review", "awaiting_review", verdict.detail)
    if ctx.last_day >= rules.max_per_day:
        return Decision("skip", "cap_day", f"{ctx.last_day} reshares in 24 hours (max_per_day {rules.max_per_day})")
    if ctx.last_hour >= rules.max_per_hour:
        return Decision("skip", "cap_hour", f"{ctx.last_hour} reshares in the hour (max_per_hour {rules.max_per_hour})")
    return verdict
