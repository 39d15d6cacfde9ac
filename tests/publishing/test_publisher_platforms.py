"""Exactly once on every platform: the same Publisher flow against each sandbox.

Where a platform cannot tell whether a post went out (Telegram: no idempotency key, no read-back), the
same flow ends in ``needs_attention`` with the post on the server once, never twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.publishing.publisher import AdapterPool, Outcome, Publisher
from tests.publishing.support import make_campaign, occurrence, unique

NINE = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow  # drives platform servers over loopback
# Under each sandbox's held-answer delay, over its usual latency.
TIMEOUT = {"x": 1.5, "mastodon": 3.0, "bluesky": 3.0, "linkedin": 1.5, "facebook": 1.5, "threads": 1.5, "telegram": 1.5}
POST_PATH = {
    "x": "/2/tweets",
    "mastodon": "/api/v1/statuses",
    "bluesky": "com.atproto.repo.createRecord",
    "linkedin": "/rest/posts",
    "facebook": "/feed",
    "threads": "threads_publish",
    "telegram": "sendMessage",
}
UNKNOWABLE = {"telegram"}  # a timed-out send can be neither repeated nor read back: a person decides
# The retry itself asks the platform about the container noted before publishing (its status_code), so the
# timed-out attempt is an ordinary retry, not an uncertain one.
CONTAINERS = {"threads", "instagram"}


@pytest.fixture(autouse=True)
def _text_posts_only(sandbox):
    """These slots publish text: a platform that takes no text-only post is pinned by its own adapter tests."""
    from bot.platforms import REGISTRY

    if getattr(REGISTRY[sandbox.platform], "needs_media_host", False) and sandbox.platform != "threads":
        pytest.skip(f"{sandbox.platform} takes no text-only post (tests/platforms covers its publications)")


@pytest.fixture
def on_platform(sandbox, monkeypatch, tmp_path, sqlite_ledger, clock):
    from bot.core.model import Account

    remote = sandbox.create_account(unique("pp"))
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    account = Account(id=remote.id, **remote.entry)
    tag = unique("p")
    campaign = make_campaign(
        tmp_path,
        [account],
        [
            ("launch", None, f"One year ago Andrei and Irina were detained in Belarus. #FreeAndreiandIrina {tag}"),
            ("v1", "videos", f"Journalism is not a crime. #FreeAndreiandIrina {tag}"),
        ],
    )
    publisher = Publisher(campaign, sqlite_ledger, AdapterPool(), clock, "w1")
    yield publisher, account, remote
    publisher.adapters.close()


def server_texts(sandbox, remote) -> list[str]:
    sandbox.index()
    return [p.text for p in sandbox.posts(remote) if p.reshare_of is None]


def test_slots_publish_once_with_their_urls(on_platform, sandbox, clock):
    """A fixed and a queue slot land once each on the platform, with the id and URL it gave recorded."""
    publisher, account, remote = on_platform
    clock.set(NINE)
    occs = [occurrence(NINE, "post:launch", [account.id]), occurrence(NINE, "queue:videos", [account.id], slot=1)]
    results = [publisher.fire(o, account.id) for o in occs]
    assert [r.outcome for r in results] == [Outcome.published, Outcome.published]
    assert [publisher.fire(o, account.id).outcome for o in occs] == [Outcome.not_mine, Outcome.not_mine]
    texts = server_texts(sandbox, remote)
    assert sorted(texts) == sorted(publisher.campaign.posts[p].text_for(account.platform) for p in ("launch", "v1"))
    assert all(r.remote_id and r.url.startswith("http") for r in results)


def test_timeout_after_acceptance_never_doubles_the_post(on_platform, sandbox, clock):
    """The platform keeps the post but answers too late; the retry reconciles and the post exists once."""
    publisher, account, remote = on_platform
    publisher.adapters = AdapterPool(timeout=TIMEOUT[account.platform])
    clock.set(NINE)
    sandbox.fail_next("timeout", path=POST_PATH[account.platform])
    occ = occurrence(NINE, "post:launch", [account.id])
    outcomes = []
    for _ in range(5):  # a slow first call (a login) may time out too: retrying is the point
        result = publisher.fire(occ, account.id)
        outcomes.append(result.outcome)
        if result.outcome is not Outcome.retry_later:
            break
        clock.set(result.retry_at)
    if account.platform in UNKNOWABLE:
        assert outcomes == [Outcome.needs_attention]
        assert [r.id for r in publisher.ledger.needing_attention()] == [result.publication_id]
    else:
        assert outcomes[0] is Outcome.retry_later and outcomes[-1] is Outcome.published
        attempts = [a.outcome for a in publisher.ledger.attempts_of(result.publication_id)]
        assert ("retry" if account.platform in CONTAINERS else "uncertain") in attempts
    assert server_texts(sandbox, remote) == [publisher.campaign.posts["launch"].text_for(account.platform)]
