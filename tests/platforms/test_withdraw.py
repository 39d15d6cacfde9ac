"""Platform.withdraw_reshare on every platform's sandbox: the reshare is gone, and withdrawing again is no error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bot.platforms.base import Platform
from sandboxes.base import Sandbox, SandboxAccount
from tests.platforms.support import fresh_name, opened


@pytest.fixture
def campaign_account(sandbox: Sandbox) -> SandboxAccount:
    return sandbox.create_account(fresh_name("index"))


@pytest.fixture
def adapter(campaign_account: SandboxAccount) -> Iterator[Platform]:
    yield from opened(campaign_account)


def test_withdrawing_a_reshare_removes_it_and_a_second_withdrawal_is_harmless(
    sandbox: Sandbox, adapter: Platform, campaign_account: SandboxAccount
) -> None:
    """Undo retweet (X), unreblog (Mastodon), repost record deleted (Bluesky), repost deleted (Threads): the post
    stays, our reshare goes."""
    if not type(adapter).supports_tracking:
        pytest.skip(f"{sandbox.platform} has no hashtag search, so the bot makes no reshare there to withdraw")
    tag = f"Free{uuid.uuid4().hex[:6]}"
    first = adapter.fetch_mentions([tag], None)
    remote_id = sandbox.post_as(sandbox.create_account(fresh_name("supporter")), f"Solidarity #{tag}")
    sandbox.index()
    mention = adapter.fetch_mentions([tag], first.cursor).mentions[0]
    receipt = adapter.reshare(mention)
    assert [p.reshare_of for p in sandbox.posts(campaign_account) if p.reshare_of] == [remote_id]
    adapter.withdraw_reshare(mention, receipt.remote_id)
    assert [p.reshare_of for p in sandbox.posts(campaign_account) if p.reshare_of] == []
    assert remote_id in {p.remote_id for p in sandbox.posts()}
    adapter.withdraw_reshare(mention, receipt.remote_id)  # already gone: no error
