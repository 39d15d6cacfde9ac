"""The Mastodon sandbox under concurrency: many clients at once, driven with Mastodon.py over loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from mastodon import Mastodon

from sandboxes.base import SandboxAccount
from sandboxes.mastodon.gateway import WORKERS
from sandboxes.mastodon.sandbox import MastodonSandbox
from tests.platforms.support import fresh_name, restored

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(mastodon_sandbox: MastodonSandbox) -> Iterator[MastodonSandbox]:
    yield from restored(mastodon_sandbox)


def client(sandbox: MastodonSandbox, account: SandboxAccount) -> Mastodon:
    """A client of its own (its own connection), as each of the bot's publishing jobs has."""
    (token,) = account.env.values()
    return Mastodon(access_token=token, api_base_url=sandbox.base_url, version_check_mode="none", request_timeout=120)


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call on its own thread, released together; answers or exceptions, in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001  (collected, so one failure does not hide the others)
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def post_concurrently(sandbox: MastodonSandbox, count: int, tag: str) -> tuple[list[SandboxAccount], list[Any]]:
    accounts = [sandbox.create_account(fresh_name("fan")) for _ in range(count // 3)]
    clients = [client(sandbox, accounts[n % len(accounts)]) for n in range(count)]
    texts = [f"Free Andrei and Irina, voice {n} #{tag}" for n in range(count)]
    return accounts, all_at_once([lambda c=c, t=t: c.status_post(t) for c, t in zip(clients, texts)])


def test_sixty_simultaneous_posts_all_succeed(sandbox: MastodonSandbox) -> None:
    """Sixty status posts sent at the same moment are all answered 200 and all held by the server."""
    tag = fresh_name("Fan")
    mark = len(sandbox.requests())
    accounts, answers = post_concurrently(sandbox, 60, tag)
    failures = [a for a in answers if isinstance(a, Exception)]
    assert failures == []
    assert len({a["id"] for a in answers}) == 60
    sent = [r["status"] for r in sandbox.requests()[mark:] if r["path"] == "/api/v1/statuses"]
    assert sent == [200] * 60
    held = [p for acct in accounts for p in sandbox.posts(acct)]
    assert sorted(p.text for p in held) == sorted(f"Free Andrei and Irina, voice {n} #{tag}" for n in range(60))


def test_open_streams_leave_room_for_posts(sandbox: MastodonSandbox) -> None:
    """More open streams than the database pool's default fifteen connections do not starve concurrent posts."""
    listener = sandbox.create_account(fresh_name("listener"))
    (token,) = listener.env.values()
    streams = [
        requests.get(
            f"{sandbox.base_url}/api/v1/streaming/hashtag",
            params={"tag": f"{fresh_name('T')}"},
            headers={"Authorization": f"Bearer {token}"},
            stream=True,
            timeout=30,
        )
        for _ in range(WORKERS + 10)
    ]
    try:
        assert all(s.status_code == 200 for s in streams)
        _, answers = post_concurrently(sandbox, 30, fresh_name("Busy"))
        assert [a for a in answers if isinstance(a, Exception)] == []
    finally:
        for stream in streams:
            stream.close()
