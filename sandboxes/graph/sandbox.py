"""Facebook, Instagram and Threads sandboxes: one Graph API server implementation (``server``) behind the Sandbox
interface, one subclass a product (the accounts it creates are Pages, Instagram professional accounts or Threads
users). Each sandbox instance runs its own server on a free loopback port.

Beyond the interface, tests can put the server on their own clock (``use_clock``) with a container processing
delay (``processing_seconds``), make containers end in ERROR (``fail_processing``), expire a token
(``expire_token``), force an account's usage percentage (``set_usage``), set its daily quota (``set_quota``),
say what Threads' profile_lookup reports of an account (``set_profile``: follower count, discoverable),
make the server store a write and drop the connection unanswered (``crash_after``), and read what it downloaded
(``fetched``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from sandboxes.base import Draft, PlatformServer, SandboxAccount, ServedSandbox, ServerPost, env_name
from sandboxes.graph.server import GraphHTTPServer, _new_post
from sandboxes.graph.state import GraphState


class GraphSandbox(ServedSandbox):
    product: ClassVar[str]

    def __init__(
        self,
        *,
        latency: float = 0.0,
        workdir: str | None = None,
        wall: Callable[[], float] = time.time,
        processing_seconds: float = 0.0,
    ) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self._default_processing = processing_seconds
        self.state = GraphState(wall, processing_seconds)

    def _new_server(self) -> PlatformServer:
        return GraphHTTPServer(self.state, self.latency)

    def create_account(
        self, name: str, *, display_name: str | None = None, scopes: set[str] | None = None
    ) -> SandboxAccount:
        account = self.state.create_account(self.product, name, display_name or name, scopes)
        var = env_name(self.product, name, "access_token")
        entry = {
            "platform": self.platform,
            "base_url": self.base_url,
            "handle": name,
            "credentials": {"access_token": var},
        }
        return SandboxAccount(id=f"{self.product}-{name}", handle=name, entry=entry, env={var: account.token})

    def _account(self, acct: SandboxAccount) -> Any:
        return next(a for a in self.state.accounts.values() if a.username == acct.handle and a.product == self.product)

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        with self.state.lock:
            me = self._account(account)
            media = [{"kind": "image", "alt": draft.alt_text, "bytes": 0}] if draft.alt_text else []
            extras = self._extras(draft)
            return _new_post(self.state, me, draft.text, media=media, reshare_of=draft.reshare_of, **extras).id

    def _extras(self, draft: Draft) -> dict[str, Any]:
        """What a product keeps of a draft beyond its text and media (Facebook and Instagram: nothing)."""
        return {}

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        with self.state.lock:
            owner = self._account(account).id if account is not None else None
            found = sorted(self.state.posts.values(), key=lambda p: (p.created, int(p.id.split("_")[-1])))
            return [
                ServerPost(
                    remote_id=p.id,
                    author=self.state.accounts[p.owner].username,
                    text=p.text,
                    url=p.permalink,
                    media=[dict(m) for m in p.media],
                    reshare_of=p.reshare_of,
                    reply_to=p.reply_to,
                    sensitive=p.is_spoiler_media or bool(p.text_entities),
                )
                for p in found
                if (owner is None or p.owner == owner)
                and self.state.accounts[p.owner].product == self.product
                and p.kind != "draft"  # a draft is not on the Page
            ]

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        self.state.faults.add(fault, count=count, retry_after=retry_after, path=path)

    def crash_after(self, path: str, count: int = 1) -> None:
        """The next ``count`` POSTs whose path contains ``path`` are done, then the connection drops unanswered."""
        with self.state.lock:
            self.state.crashes.append([path, count])

    def use_clock(self, wall: Callable[[], float], processing_seconds: float | None = None) -> None:
        """Age containers (and tokens, quotas, usage) by ``wall``; a container stays IN_PROGRESS ``processing_seconds``."""
        with self.state.lock:
            self.state.wall = wall
            if processing_seconds is not None:
                self.state.processing_seconds = processing_seconds

    def fail_processing(self, count: int = 1) -> None:
        """The next ``count`` media containers end in ERROR (Instagram's 2207053 unknown upload error)."""
        with self.state.lock:
            self.state.fail_processing += count

    def expire_token(self, account: SandboxAccount, at: float | None = None) -> None:
        """The account's token expires at ``at`` (now when None): calls with it then fail with 190."""
        with self.state.lock:
            self._account(account).token_expires = self.state.wall() if at is None else at

    def set_usage(self, account: SandboxAccount, percent: int | None) -> None:
        """Report ``percent`` in the usage headers of this account's calls (None: count calls as usual)."""
        with self.state.lock:
            self._account(account).forced_usage = percent

    def set_quota(self, account: SandboxAccount, total: int | None) -> None:
        """This account's daily publishing quota (None: the product's default)."""
        with self.state.lock:
            self._account(account).quota = total

    def grant(self, account: SandboxAccount, scope: str) -> None:
        with self.state.lock:
            self._account(account).scopes.add(scope)

    def fetched(self) -> list[str]:
        with self.state.lock:
            return list(self.state.fetched)

    def containers(self, account: SandboxAccount | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            owner = self._account(account).id if account is not None else None
            return [
                {"id": c.id, "status": self.state.container_status(c), "media_type": c.media_type, "text": c.text}
                for c in self.state.containers.values()
                if owner is None or c.owner == owner
            ]

    def restore_defaults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
            self.state.crashes.clear()
            self.state.wall = time.time
            self.state.processing_seconds = self._default_processing
            self.state.fail_processing = 0
            self.state.draft_reels = 0

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(e) for e in self.state.log]


class FacebookSandbox(GraphSandbox):
    platform = "facebook"
    product = "facebook"

    def create_account(
        self, name: str, *, display_name: str | None = None, scopes: set[str] | None = None
    ) -> SandboxAccount:
        # A Page token with the permissions the bot asks staff for: post, and read its posts back.
        wanted = {"pages_manage_posts", "pages_read_engagement"} if scopes is None else scopes
        return super().create_account(name, display_name=display_name, scopes=wanted)

    def draft_reels(self, count: int = 1) -> None:
        """The next ``count`` Reels stay drafts although the finish call asked for PUBLISHED."""
        with self.state.lock:
            self.state.draft_reels += count


class InstagramSandbox(GraphSandbox):
    platform = "instagram"
    product = "instagram"


class ThreadsSandbox(GraphSandbox):
    platform = "threads"
    product = "threads"

    def create_account(
        self, name: str, *, display_name: str | None = None, scopes: set[str] | None = None
    ) -> SandboxAccount:
        # Campaign accounts of the demo and tests hold the keyword search and profile discovery permissions unless
        # a test says otherwise.
        default = {"threads_basic", "threads_content_publish", "threads_keyword_search", "threads_profile_discovery"}
        return super().create_account(name, display_name=display_name, scopes=default if scopes is None else scopes)

    def set_profile(
        self, account: SandboxAccount, *, followers: int | None = None, discoverable: bool | None = None
    ) -> None:
        """What profile_lookup says of ``account``: its follower_count, or (not discoverable) that it is not found."""
        with self.state.lock:
            me = self._account(account)
            if followers is not None:
                me.followers = followers
            if discoverable is not None:
                me.discoverable = discoverable

    def _extras(self, draft: Draft) -> dict[str, Any]:
        """A draft's warnings as Threads spoilers (https://developers.facebook.com/documentation/threads/create-posts/spoilers):
        ``spoiler_text`` hides that part of the text (the first occurrence, any case) or, not in it, the whole text;
        ``sensitive`` hides the media (``is_spoiler_media``) or, on a text post, the whole text; a reply says so
        (``is_reply``)."""
        entities: list[dict[str, Any]] = []
        media_spoiler = False
        if draft.spoiler_text:
            text, wanted = draft.text.casefold(), draft.spoiler_text.casefold()
            at = text.find(wanted)
            # casefold may change lengths (ß, İ): then the offsets would not be the text's, so spoil it all
            found = at >= 0 and len(text) == len(draft.text) and len(wanted) == len(draft.spoiler_text)
            offset, length = (at, len(draft.spoiler_text)) if found else (0, len(draft.text))
            entities.append({"entity_type": "SPOILER", "offset": offset, "length": length})
        if draft.sensitive:
            if draft.alt_text:  # the draft carries an image: media spoilers work on IMAGE, VIDEO and CAROUSEL
                media_spoiler = True
            elif not entities:
                entities.append({"entity_type": "SPOILER", "offset": 0, "length": len(draft.text)})
        return {
            "is_spoiler_media": media_spoiler,
            "text_entities": [e for e in entities if e["length"] > 0],
            "reply_to": draft.reply_to,
        }
