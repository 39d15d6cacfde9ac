"""Before the slots: which posts' media each Mastodon account's server will refuse (``bot check --online``, worker start).

One instance look-up per server (accounts on one server share it), then every post a schedule
sends to the account is measured against what that server takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.platforms.mastodon.server import ServerInfo


def refused_media(campaign: Any, adapter_for: Callable[[Any], Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) as ``path: message`` lines: posts a server will refuse; servers that could not be asked."""
    errors: list[str] = []
    warnings: list[str] = []
    servers: dict[str, ServerInfo] = {}
    for account in campaign.accounts.values():
        if account.platform != "mastodon":
            continue
        posts = sorted(set(_posts_for(campaign, account.id)))
        if not any(campaign.posts[p].media or campaign.posts[p].video for p in posts):
            continue
        try:
            adapter = adapter_for(account)
        except Exception as exc:  # noqa: BLE001  (a missing variable is the offline check's to report)
            warnings.append(f"config/accounts.yaml: account {account.id}: not checked online: {type(exc).__name__}")
            continue
        known = servers.get(adapter.base_url)
        if known is not None:
            adapter.know_server(known)
        info = servers[adapter.base_url] = adapter.server()
        if info.source == "defaults":
            warnings.append(
                f"config/accounts.yaml: account {account.id}: {adapter.base_url} did not describe itself; "
                "its media limits are unknown"
            )
            continue
        for post_id in posts:
            post = campaign.posts[post_id]
            refusal = adapter.media_refusal(post.outgoing("mastodon", "check"))
            if refusal:
                errors.append(f"{_shown(campaign.root, post.path)}: account {account.id}: {refusal}")
    return errors, warnings


def _posts_for(campaign: Any, account_id: str) -> Iterator[str]:
    for schedule in campaign.schedules:
        for slot in schedule.slots:
            if account_id not in slot.accounts:
                continue
            if slot.post and slot.post in campaign.posts:
                yield slot.post
            if slot.queue:
                yield from (p for p in campaign.queues.get(slot.queue, []) if p in campaign.posts)


def _shown(root: Path, path: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
