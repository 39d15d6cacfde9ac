"""Before the slots: whether each Threads account that config/reshare.yaml tracks with may search at all
(``bot check --online``).

Tag search needs the ``threads_keyword_search`` permission, which Meta grants through app review
(https://developers.facebook.com/docs/threads/keyword-search); a token without it cannot track. That is a fact
of the token, not of the platform, so it can only be asked online: one search per tracking account. An account
whose token lacks it is an error naming the account, saying that tracking is not available for it and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.errors import BotError, PermanentError
from bot.platforms.online import Finding, ask_accounts


def unable_to_track(campaign: Any, adapter_for: Callable[[Any], Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) as ``config/accounts.yaml:LINE: account ID: why`` lines."""
    tracks = campaign.reshare.track if campaign.reshare is not None else []
    tracking: dict[str, list[str]] = {a: t.hashtags[:1] for t in tracks for a in t.accounts}

    def may_search(account: Any, adapter: Any) -> Finding | None:
        try:
            adapter.fetch_mentions(tracking[account.id] or ["FreeAndreiandIrina"], None)
        except PermanentError as exc:  # says which permission is missing and why it matters
            return "error", f"tracking is not available: {exc}"
        except BotError as exc:
            return "warning", f"keyword search not checked: {type(exc).__name__}: {exc}"
        return None

    return ask_accounts(campaign, adapter_for, "threads", may_search, only=tracking)
