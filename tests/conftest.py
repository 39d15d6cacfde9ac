"""Shared fixtures: sandbox platform servers on loopback, a throwaway PostgreSQL, an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.clock import FakeClock
from sandboxes import Sandbox, sandbox_class
from sandboxes.postgres import Postgres

PLATFORMS = ("x", "mastodon", "bluesky", "linkedin", "facebook", "instagram", "threads", "telegram")


def _started(platform: str) -> Iterator[Sandbox]:
    sandbox = sandbox_class(platform)()
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def x_sandbox() -> Iterator[Sandbox]:
    yield from _started("x")


@pytest.fixture(scope="session")
def mastodon_sandbox() -> Iterator[Sandbox]:
    yield from _started("mastodon")


@pytest.fixture(scope="session")
def bluesky_sandbox() -> Iterator[Sandbox]:
    yield from _started("bluesky")


@pytest.fixture(scope="session")
def facebook_sandbox() -> Iterator[Sandbox]:
    yield from _started("facebook")


@pytest.fixture(scope="session")
def instagram_sandbox() -> Iterator[Sandbox]:
    yield from _started("instagram")


@pytest.fixture(scope="session")
def threads_sandbox() -> Iterator[Sandbox]:
    yield from _started("threads")


@pytest.fixture(scope="session")
def media_host() -> Iterator[Any]:
    """Public expiring URLs from a loopback file server, for the platforms that fetch media (Instagram, Threads)."""
    from tests.platforms.graph_host import LoopbackMediaHost

    host = LoopbackMediaHost()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def linkedin_sandbox() -> Iterator[Sandbox]:
    yield from _started("linkedin")


@pytest.fixture(scope="session")
def telegram_sandbox() -> Iterator[Sandbox]:
    yield from _started("telegram")


@pytest.fixture(params=PLATFORMS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each platform's sandbox in turn: the contract suite runs over all of them."""
    return request.getfixturevalue(f"{request.param}_sandbox")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with Postgres() as pg:
        yield pg


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Commands run in-process configure structlog onto pytest's captured stdout, which closes after the test."""
    yield
    from bot.observability import logs

    logs.reset()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the Bluesky stack (npm servers, PostgreSQL, Redis): `make test-fast` skips them."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "bluesky_sandbox" in getattr(item, "fixturenames", ()) or "bluesky" in params.values():
            item.add_marker(pytest.mark.bluesky)
