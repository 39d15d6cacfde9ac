"""XSandbox: our fake X API v2 server on loopback, behind the common Sandbox interface.

The server speaks X's documented request and response shapes (see ``x_server``),
verifies OAuth 1.0a signatures with the keys of accounts created here, keeps
X's published rate limits (per user, per 3 hours for posts and reposts, per app per day:
see ``sandboxes.x.limits``), and walks uploaded videos through X's processing states. Its
accounts are users of one app, as a campaign's accounts are. Beyond the interface, tests can
shrink a rate limit (``set_limit``, ``set_app_limit``), exempt an account that posts more than a
person could (``lift_limits``), answer with the older field names (``legacy_names``), make
video processing fail (``fail_processing``) and inspect uploads. Benchmarks that measure the bot
rather than X start it with ``rate_limits=False``; contract tests with ``record=True`` to see
every request's and answer's bytes in ``requests()`` (under ``wire``).

Videos pass through pending and in_progress before succeeded (``processing_polls``
STATUS polls); ``check_after_secs`` defaults to 0 so test suites do not wait, the
demo and benchmarks pass X's usual 1 or more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sandboxes.base import Draft, PlatformServer, SandboxAccount, ServedSandbox, ServerPost, env_name
from sandboxes.x.limits import WINDOW
from sandboxes.x.server import XHTTPServer
from sandboxes.x.state import XState

# Where a post_as card points: a link twitter-text recognises (a real top-level domain).
CARD_LINK = "https://news.example.org/story"
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def warm_up_text() -> None:
    """Import twitter-text and compile its patterns (counting, links, emoji) once per process."""
    from twitter_text import parse_tweet

    from sandboxes.x.search import wrap_links

    sample = "Free them \U0001f54a\ufe0f https://example.org #FreeAndreiandIrina \u0431\u0435\u043b"
    parse_tweet(sample)
    wrap_links(sample, lambda url: url)


ROLES = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


class XSandbox(ServedSandbox):
    platform = "x"

    def __init__(
        self,
        *,
        latency: float = 0.0,
        workdir: str | None = None,
        wall: Callable[[], float] = time.time,
        processing_polls: int = 2,
        check_after_secs: int = 0,
        rate_limits: bool = True,
        shared_app: bool = True,
        record: bool = False,
    ) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self.state = XState(
            wall,
            processing_polls=processing_polls,
            check_after_secs=check_after_secs,
            rate_limits=rate_limits,
            shared_app=shared_app,
        )
        self.state.record_wire = record

    def _new_server(self) -> PlatformServer:
        return XHTTPServer(self.state, self.latency)

    def start(self) -> None:
        if self._server is not None:
            return
        super().start()
        # X does not pause to load its text rules at its first post: load them now, beside the server
        # (about 0.5 s of CPU that would otherwise stall the first requests of a benchmark).
        threading.Thread(target=warm_up_text, name="x-sandbox-warm-up", daemon=True).start()

    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        creds = self.state.create_user(name, display_name or name)
        prefix = env_name("x", name)
        values = dict(zip(ROLES, (creds.consumer_key, creds.consumer_secret, creds.token, creds.token_secret)))
        env_names = {role: f"{prefix}_{role.upper()}" for role in ROLES}
        entry = {"platform": "x", "base_url": self.base_url, "handle": name, "credentials": env_names}
        return SandboxAccount(
            id=f"x-{name}", handle=name, entry=entry, env={env_names[role]: values[role] for role in ROLES}
        )

    def _user_id(self, account: SandboxAccount) -> str:
        return self.state.user_by_name(account.handle).id

    def post_as(
        self,
        account: SandboxAccount,
        text: str,
        *,
        reply_to: str | None = None,
        sensitive: bool = False,
        spoiler_text: str = "",
        reshare_of: str | None = None,
        alt_text: str = "",
        card_title: str = "",
        quote_of: str | None = None,
    ) -> str:
        """``Sandbox.post_as``, and ``quote_of``: a quote post of that remote id (the quoted text travels in
        ``includes.posts``, as on X)."""
        draft = Draft(text, reply_to, sensitive, spoiler_text, reshare_of, alt_text, card_title)
        return self._publish(account, draft, quote_of)

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        return self._publish(account, draft, None)

    def _publish(self, account: SandboxAccount, draft: Draft, quote_of: str | None) -> str:
        user_id = self._user_id(account)
        text, titles = draft.text, {}
        if draft.card_title:
            # X makes a card only from a link in the text, and readers get its title in entities.urls.
            text, titles = f"{text} {CARD_LINK}", {CARD_LINK: draft.card_title}
        media_ids = [self._described_image(user_id, draft.alt_text)] if draft.alt_text else []
        # X has no content warnings: a spoiler marks the post possibly_sensitive, as the closest equivalent.
        tweet = self.state.add_tweet(
            user_id,
            text,
            reply_to=draft.reply_to,
            quote=quote_of,
            media_ids=media_ids,
            sensitive=draft.sensitive or bool(draft.spoiler_text),
            retweet_of=draft.reshare_of,
            link_titles=titles,
        )
        return tweet.id

    def _described_image(self, user_id: str, alt: str) -> str:
        """An uploaded image with ``alt`` as its description, as the X app's upload and metadata calls leave it."""
        uploaded = self.state.media.upload(user_id, {"media": TINY_PNG, "media_category": "tweet_image"})
        media_id = uploaded["data"]["id"]
        self.state.media.set_alt(user_id, {"id": media_id, "metadata": {"alt_text": {"text": alt}}})
        return str(media_id)

    def edit_as(self, account: SandboxAccount, remote_id: str, text: str) -> None:
        """Edit as X does: a new version with a new id; search then finds only that one (see ``latest_id``)."""
        self.state.edit_tweet(self._user_id(account), remote_id, text)

    def latest_id(self, remote_id: str) -> str:
        """The id of the newest version of the post ``remote_id`` (itself when never edited)."""
        with self.state.lock:
            return self.state.tweets[remote_id].versions()[-1]

    def delete_as(self, account: SandboxAccount, remote_id: str) -> None:
        self.state.delete_tweet(self._user_id(account), remote_id)

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        state = self.state
        with state.lock:
            author = self._user_id(account) if account is not None else None
            tweets = sorted(state.tweets.values(), key=lambda t: int(t.id))
            return [
                ServerPost(
                    remote_id=t.id,
                    author=state.users[t.author_id].username,
                    text=t.text,
                    url=f"https://x.com/{state.users[t.author_id].username}/status/{t.id}",
                    media=[self._media_view(m) for m in t.media_ids],
                    reshare_of=state.retweet_of.get(t.id),
                    reply_to=next((ref for kind, ref in t.referenced if kind == "replied_to"), None),
                    sensitive=t.possibly_sensitive,
                )
                for t in tweets
                if (author is None or t.author_id == author) and t.latest
            ]

    def _media_view(self, media_id: str) -> dict[str, Any]:
        media = self.state.media.items[media_id]
        captions = [s["language_code"] for s in media.subtitles]
        return {
            "kind": "image" if media.kind == "gif" else media.kind,
            "id": media.id,
            "alt": media.alt,
            "bytes": len(media.data),
            "media_type": media.media_type,
            "category": media.category,
            "state": media.state,
            "appends": media.appends,
            "captions": bool(captions),
            "caption_languages": captions,
        }

    def media(self) -> list[dict[str, Any]]:
        """Every upload, posted or not, oldest first (processing states included)."""
        with self.state.lock:
            return [self._media_view(m) for m in self.state.media.items]

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        self.state.faults.add(fault, count=count, retry_after=retry_after, path=path)

    def fail_processing(self, count: int = 1) -> None:
        """The next ``count`` videos end in processing state ``failed``."""
        self.state.media.fail_processing += count

    def restore_defaults(self) -> None:
        self.state.faults.clear()
        self.state.rates.reset()
        self.state.media.fail_processing = 0
        self.state.legacy_names = False

    def set_limit(self, endpoint: str, limit: int, window: int = WINDOW, account: SandboxAccount | None = None) -> None:
        """Set a rate limit, e.g. ``set_limit("POST /2/tweets", 2)``; for one account, or for all.

        Endpoints are named as in X's docs (``GET /2/users/:id/tweets``); ``"daily"`` is the
        24-hour posting cap sent as ``x-user-limit-24hour-*``.
        """
        self.state.rates.set(endpoint, limit, window, self._user_id(account) if account is not None else None)

    def set_app_limit(self, endpoint: str, limit: int, window: int = 86400) -> None:
        """Set the per-app cap of an endpoint (every account of this sandbox together), e.g. of POST /2/tweets."""
        self.state.rates.set_app(endpoint, limit, window)

    def lift_limits(self, account: SandboxAccount) -> None:
        """Never rate-limit nor count ``account``: for a test that posts for many people from one account."""
        self.state.rates.exempt(self._user_id(account))

    def legacy_names(self, on: bool = True) -> None:
        """Answer reads with the names X used before v2.167 (referenced_tweets, edit_history_tweet_ids)."""
        self.state.legacy_names = on

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(entry) for entry in self.state.log]

    def index(self) -> None:
        """Writes are searchable at once on this server."""
