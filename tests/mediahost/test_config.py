"""config/media_host.yaml: validated with file:line problems, on the campaign model, required where a platform fetches by URL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.campaign import inspect, load
from bot.platforms import REGISTRY
from bot.platforms.mastodon.adapter import Mastodon
from tests.cases.casefiles import BASE, BASE_ENV

GOOD = """\
# where Instagram and Threads fetch media from
media_host:
  bucket: campaign-media
  endpoint_url: https://example.r2.cloudflarestorage.com
  region: auto
  prefix: freeandrei/
  url_lifetime: 2h
  credentials: {access_key_id: MEDIA_S3_KEY_ID, secret_access_key: MEDIA_S3_SECRET}
"""


@pytest.fixture
def campaign_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    for var in (*BASE_ENV, "MEDIA_S3_KEY_ID", "MEDIA_S3_SECRET"):
        monkeypatch.setenv(var, f"value-of-{var.lower()}")
    return root


def test_valid_block_reaches_the_campaign_model(campaign_dir: Path) -> None:
    """A valid block is on ``Campaign.media_host`` with its lifetime in seconds and variable names only."""
    (campaign_dir / "config" / "media_host.yaml").write_text(GOOD)
    host = load(campaign_dir).media_host
    assert host is not None
    assert (host.bucket, host.endpoint_url, host.region, host.prefix) == (
        "campaign-media",
        "https://example.r2.cloudflarestorage.com",
        "auto",
        "freeandrei/",
    )
    assert host.url_lifetime == 7200.0 and host.path_style is False and host.line == 2
    assert host.credentials == {"access_key_id": "MEDIA_S3_KEY_ID", "secret_access_key": "MEDIA_S3_SECRET"}


def test_no_file_no_host(campaign_dir: Path) -> None:
    """A campaign whose platforms all take uploads needs no media host and gets none."""
    assert load(campaign_dir).media_host is None


def test_each_mistake_at_its_line_and_a_pasted_key_not_echoed(campaign_dir: Path) -> None:
    """Bucket name, lifetime, a pasted secret, a missing role and an unknown key: each reported at its own line."""
    pasted = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    (campaign_dir / "config" / "media_host.yaml").write_text(
        "media_host:\n"
        "  bucket: Campaign_Media\n"  # 2
        "  url_lifetime: 30d\n"  # 3
        "  credentials:\n"  # 4
        f"    access_key_id: {pasted}\n"  # 5
    )
    errors = inspect(campaign_dir).errors
    mine = [e for e in errors if e.startswith("config/media_host.yaml")]
    assert any(e.startswith("config/media_host.yaml:2: media_host.bucket:") for e in mine)
    assert any(e.startswith("config/media_host.yaml:3: media_host.url_lifetime:") for e in mine)
    assert any(
        e.startswith("config/media_host.yaml:4: media_host.credentials: missing credential 'secret_access_key'")
        for e in mine
    )
    assert any(
        e.startswith("config/media_host.yaml:5: media_host.credentials.access_key_id: must be the NAME") for e in mine
    )
    assert not any(pasted in e for e in errors)
    (campaign_dir / "config" / "media_host.yaml").write_text(GOOD.replace("  region: auto\n", "  regoin: auto\n"))
    assert any(e.startswith("config/media_host.yaml:5:") and "regoin" in e for e in inspect(campaign_dir).errors)


def test_unset_key_variable_is_a_warning_for_check_and_an_error_for_run(
    campaign_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bot check`` warns at the block's line when a key variable is unset; the worker's secret check refuses it."""
    from bot.campaign import secret_problems

    (campaign_dir / "config" / "media_host.yaml").write_text(GOOD)
    monkeypatch.delenv("MEDIA_S3_SECRET")
    result = inspect(campaign_dir)
    assert result.errors == []
    assert any(
        w.startswith(
            "config/media_host.yaml:2: warning: media_host.credentials.secret_access_key: environment variable MEDIA_S3_SECRET"
        )
        for w in result.warnings
    )
    assert result.campaign is not None
    assert any("MEDIA_S3_SECRET is not set" in p for p in secret_problems(result.campaign))


class _Fetcher(Mastodon):
    """A platform that fetches media by URL, as Instagram and Threads do."""

    name = "fetcher"
    needs_media_host = True


def test_account_needing_a_host_without_one_is_an_error_at_its_line(
    campaign_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account whose platform fetches media by URL, with no config/media_host.yaml, is an error at the account."""
    monkeypatch.setitem(REGISTRY, "fetcher", _Fetcher)
    path = campaign_dir / "config" / "accounts.yaml"
    data = yaml.safe_load(path.read_text())
    data["accounts"]["fetcher-one"] = {
        "platform": "fetcher",
        "base_url": "https://fetch.example",
        "credentials": {"access_token": "FETCHER_ONE_TOKEN"},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("  fetcher-one:"))
    errors = inspect(campaign_dir).errors
    assert (
        f"config/accounts.yaml:{line}: accounts.fetcher-one: fetcher fetches media from a public URL: write config/media_host.yaml (an S3-compatible bucket; see the README's 'Media hosting')"
        in errors
    )
    (campaign_dir / "config" / "media_host.yaml").write_text(GOOD)
    assert not any("fetches media" in e for e in inspect(campaign_dir).errors)
