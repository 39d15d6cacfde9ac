"""LinkedInSandbox: our fake LinkedIn Community Management API on loopback, behind the Sandbox interface.

Accounts are organization pages, each with a page administrator's token (w_organization_social and
r_organization_social) and the app's client id and secret for token introspection. Beyond the interface,
tests can take a permission away (``revoke``), sunset versions (``sunset_before``), cut videos into smaller
parts (``part_size``), expire a token (``expire``) and read every upload (``videos``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandboxes.base import Draft, PlatformServer, SandboxAccount, ServedSandbox, ServerPost, env_name
from sandboxes.linkedin.server import ACTIVE_SINCE, PART_SIZE, LinkedInHTTPServer, LinkedInState, Problem, displayed

ROLES = ("access_token", "client_id", "client_secret")


class LinkedInSandbox(ServedSandbox):
    platform = "linkedin"

    def __init__(
        self,
        *,
        latency: float = 0.0,
        workdir: str | None = None,
        wall: Callable[[], float] = time.time,
        processing_polls: int = 0,
    ) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self.state = LinkedInState(wall, processing_polls)
        self._processing_polls = processing_polls

    def _new_server(self) -> PlatformServer:
        return LinkedInHTTPServer(self.state, self.latency)

    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        org = self.state.create_org(display_name or name)
        prefix = env_name("linkedin", name)
        names = {role: f"{prefix}_{role.upper()}" for role in ROLES}
        values = {"access_token": org.token, "client_id": org.client_id, "client_secret": org.client_secret}
        entry = {"platform": "linkedin", "base_url": self.base_url, "handle": org.id, "credentials": names}
        return SandboxAccount(
            id=f"linkedin-{name}", handle=org.id, entry=entry, env={names[r]: values[r] for r in ROLES}
        )

    def refresh_token(self, account: SandboxAccount) -> str:
        """The page's refresh token (LinkedIn gives them to approved partners' apps only)."""
        return self.state.orgs[account.handle].refresh_token

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        from bot.platforms.linkedin.text import escape  # a person's post is written in the same little text

        body: dict[str, Any] = {
            "author": f"urn:li:organization:{account.handle}",
            "commentary": escape(draft.text),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"},
            "lifecycleState": "PUBLISHED",
        }
        if draft.reshare_of:
            body["reshareContext"] = {"parent": draft.reshare_of}
        try:
            return self.state.create_post(self.state.orgs[account.handle], body)
        except Problem as exc:
            raise RuntimeError(f"sandbox refused the post: {exc}") from None

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        with self.state.lock:
            return [
                ServerPost(
                    remote_id=p["id"],
                    author=p["org"],
                    text=displayed(p["commentary"]),
                    url=f"https://www.linkedin.com/feed/update/{p['id']}/",
                    media=[dict(m) for m in p["media"]],
                    reshare_of=p["parent"],
                )
                for p in self.state.posts
                if account is None or p["org"] == account.handle
            ]

    def raw_commentary(self, remote_id: str) -> str:
        """The commentary exactly as sent (little text, escapes and all)."""
        with self.state.lock:
            return next(p["commentary"] for p in self.state.posts if p["id"] == remote_id)

    def videos(self) -> list[dict[str, Any]]:
        """Every video upload, posted or not: parts, ETags received and finalized with, captions, status."""
        with self.state.lock:
            return [
                {
                    "urn": v.urn,
                    "size": v.size,
                    "parts": list(v.parts),
                    "etags": [v.etags.get(n) for n in range(len(v.parts))],
                    "finalized_with": list(v.finalized_with),
                    "captions": v.captions,
                    "status": v.status,
                }
                for v in self.state.videos.values()
            ]

    def fail_next(
        self,
        fault: str,
        *,
        count: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        delay: float | None = None,
    ) -> None:
        self.state.faults.add(fault, count=count, retry_after=retry_after, path=path, delay=delay)

    def revoke(self, account: SandboxAccount, scope: str) -> None:
        """Take a permission (``r_organization_social``, ``w_organization_social``) from the page's token."""
        self.state.orgs[account.handle].scopes.discard(scope)

    def expire(self, account: SandboxAccount, at: float) -> None:
        """The page's token stops working at ``at`` (wall seconds)."""
        self.state.orgs[account.handle].expires_at = at

    def sunset_before(self, version: str) -> None:
        """Versions older than ``version`` (YYYYMM) answer 426."""
        self.state.active_since = version

    def part_size(self, size: int) -> None:
        """Cut video uploads into parts of ``size`` bytes (LinkedIn's are 4 MB)."""
        self.state.part_size = size

    def processing(self, polls: int) -> None:
        """Videos stay PROCESSING for ``polls`` status reads after finalizing."""
        self.state.processing_polls = polls

    def restore_defaults(self) -> None:
        self.state.faults.clear()
        self.state.processing_polls = self._processing_polls
        for org in self.state.orgs.values():
            org.scopes = {"w_organization_social", "r_organization_social"}
        self.state.part_size = PART_SIZE
        self.state.active_since = ACTIVE_SINCE

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(e) for e in self.state.log]

    def index(self) -> None:
        """Posts are readable at once on this server."""
