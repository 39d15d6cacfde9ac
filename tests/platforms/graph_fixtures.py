"""The set-up the Graph media platforms' adapter tests share (Instagram, Threads): media, the sandbox's clock, a fresh
account and its adapter on that clock, fetching media from the loopback media host.

A test module takes them by name: ``media, clock, account, ig = graph_fixtures("instagram_sandbox", "ig", 20.0)``;
pytest knows each fixture by the module attribute it is bound to, so the module's tests ask for ``ig`` as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.base import Platform
from sandboxes import SandboxAccount
from tests.platforms.graph_host import LoopbackMediaHost
from tests.platforms.graph_support import GraphClock, jpeg_folder, on_clock
from tests.platforms.support import adapter_for, fresh_name


def graph_fixtures(sandbox: str, prefix: str, processing: float) -> tuple[Any, Any, Any, Any]:
    """(media, clock, account, adapter) fixtures over the session's ``sandbox`` fixture: accounts named ``prefix``-...,
    containers that take ``processing`` seconds of the test's clock."""

    @pytest.fixture(scope="module")
    def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return jpeg_folder(tmp_path_factory.mktemp(f"{prefix}-media"))

    @pytest.fixture
    def clock(request: pytest.FixtureRequest, media_host: LoopbackMediaHost) -> Iterator[GraphClock]:
        yield from on_clock(request.getfixturevalue(sandbox), media_host, GraphClock(), processing=processing)

    @pytest.fixture
    def account(request: pytest.FixtureRequest) -> SandboxAccount:
        return request.getfixturevalue(sandbox).create_account(fresh_name(prefix))

    @pytest.fixture
    def adapter(account: SandboxAccount, media_host: LoopbackMediaHost, clock: GraphClock) -> Iterator[Platform]:
        built = adapter_for(account, media_host=media_host, wall=clock, sleep=clock.sleep, timeout=5)
        yield built
        built.close()

    return media, clock, account, adapter
