"""The publisher's release hook: media let go once a publication is published or failed for good, kept otherwise."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from bot.core.model import MediaHostSettings
from bot.mediahost import S3MediaHost
from bot.publishing.release import drain, settled
from bot.publishing.results import Outcome, Result
from sandboxes.s3 import S3Sandbox


def test_release_follows_the_outcome(s3: S3Sandbox, settings: MediaHostSettings, banner: Path) -> None:
    """A retry or a claim lost to another worker keeps the file; a published (or permanently failed) one frees it,
    on the release pool (``drain`` waits for it, as the worker does when it stops)."""
    adapter = SimpleNamespace(media_host=S3MediaHost(settings, environ=s3.env))
    adapter.media_host.url_for(banner, publication="pub1-kept")
    adapter.media_host.url_for(banner, publication="pub1-failed")
    for outcome in (Outcome.retry_later, Outcome.not_mine):
        result = Result(outcome)
        assert settled(result, adapter, "pub1-kept") is result
    settled(Result(Outcome.failed), adapter, "pub1-failed")
    assert drain(timeout=30)
    assert len(s3.keys_in_bucket(settings.prefix + "media/")) == 1  # pub1-kept still holds it
    settled(Result(Outcome.published), adapter, "pub1-kept")
    assert drain(timeout=30)
    assert s3.keys_in_bucket(settings.prefix) == []


def test_adapters_without_a_host_are_left_alone() -> None:
    """An adapter with no media host (X, Mastodon, Bluesky) passes its result through untouched."""
    result = Result(Outcome.published)
    assert settled(result, SimpleNamespace(media_host=None), "pub1-x") is result
