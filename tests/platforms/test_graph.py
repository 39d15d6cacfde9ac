"""The shared Graph pieces: the version setting and its end-of-life warning, usage headers, error mapping."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from bot.core.errors import AuthFailed, ContentRejected, NotFound, PlatformUnavailable, RateLimited
from bot.platforms.graph.client import GraphApiError, read_usage
from bot.platforms.graph.errors import map_graph_error
from bot.platforms.graph.version import GRAPH_VERSION, SETTING, end_of_life, graph_version, version_warning

ACCOUNT = SimpleNamespace(id="instagram-index", credentials={"access_token": "IG_INDEX_ACCESS_TOKEN"})


def test_version_is_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_GRAPH_VERSION overrides the pinned version; unset, the pinned one is used."""
    monkeypatch.delenv(SETTING, raising=False)
    assert graph_version() == GRAPH_VERSION
    monkeypatch.setenv(SETTING, "v23.0")
    assert graph_version() == "v23.0"


def test_end_of_life_warnings() -> None:
    """A version is retired two years after its successor's release: warned 90 days ahead, and once past."""
    assert end_of_life("v21.0") == date(2027, 1, 21)
    assert version_warning("v21.0", today=date(2026, 6, 1)) is None
    assert "will be retired on 2027-01-21" in (version_warning("v21.0", today=date(2026, 12, 1)) or "")
    assert "was retired" in (version_warning("v19.0", today=date(2026, 12, 1)) or "")
    assert "not one this bot was tested with" in (version_warning("v9.0") or "")


def test_usage_headers_read_the_highest_percentage() -> None:
    """X-App-Usage and X-Business-Use-Case-Usage give the highest percentage and the time to regain access."""
    usage = read_usage(
        {
            "X-App-Usage": '{"call_count": 12, "total_cputime": 3, "total_time": 4}',
            "X-Business-Use-Case-Usage": '{"1": [{"type": "instagram", "call_count": 85, "total_cputime": 9,'
            ' "total_time": 9, "estimated_time_to_regain_access": 2}]}',
        }
    )
    assert usage is not None and (usage.percent, usage.regain_minutes) == (85, 2)
    assert read_usage({"X-App-Usage": "not json"}) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 190, "error_subcode": 463}, AuthFailed),
        ({"code": 4}, RateLimited),
        ({"code": 17}, RateLimited),
        ({"code": 32}, RateLimited),
        ({"code": 613}, RateLimited),
        ({"code": 80002}, RateLimited),
        ({"code": 9, "error_subcode": 2207042}, RateLimited),
        ({"code": 2, "is_transient": True}, PlatformUnavailable),
        ({"code": 100, "error_subcode": 33}, NotFound),
        ({"code": 9004, "error_subcode": 2207052}, ContentRejected),
    ],
)
def test_errors_map_by_what_the_caller_does_next(error: dict[str, int | bool], expected: type) -> None:
    """Each documented code becomes the bot error for what happens next; 190 names the account and variable."""
    mapped = map_graph_error(GraphApiError(400, {"message": "m", **error}), "instagram", ACCOUNT)
    assert type(mapped) is expected
    if expected is AuthFailed:
        assert "instagram-index" in str(mapped) and "IG_INDEX_ACCESS_TOKEN" in str(mapped)
    if expected is RateLimited:
        assert isinstance(mapped, RateLimited) and mapped.retry_after and mapped.retry_after >= 30
