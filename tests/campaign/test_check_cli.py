"""``bot check`` as staff run it: exit codes, output, and no platform client imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli

REPO = Path(__file__).parents[2]


def test_clean_campaign_exits_0_with_one_line(campaign_dir: Path, credentials, capsys: pytest.CaptureFixture[str]):
    """A clean campaign exits 0 and prints one summary line."""
    assert cli.main(["--campaign", str(campaign_dir), "check"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "campaign 'test-campaign' is valid: 3 accounts, 5 posts (2 queues), 1 schedules with 3 slots; 0 warnings"
    ]


def test_errors_exit_1_listing_errors_and_warnings(campaign_dir: Path, credentials, monkeypatch, capsys):
    """With an error, every problem is listed, warnings marked as such, and the exit code is 1."""
    monkeypatch.delenv("MASTODON_A19_TOKEN")
    path = campaign_dir / "schedules/launch.yaml"
    path.write_text(path.read_text().replace("accounts: [mastodon-a19]", "accounts: [mastdon-a19]"))
    assert cli.main(["--campaign", str(campaign_dir), "check"]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        "config/accounts.yaml:10: warning: accounts.mastodon-a19.credentials.access_token: "
        "environment variable MASTODON_A19_TOKEN is not set",
        "schedules/launch.yaml:13: slots[2].accounts[0]: unknown account 'mastdon-a19' "
        "(known: x-index, mastodon-a19, bluesky-index)",
    ]
    assert out.err.strip() == "1 error, 1 warning"


def test_check_does_not_import_platform_clients(campaign_dir: Path):
    """``bot check`` stays fast: tweepy, Mastodon.py and atproto are never imported."""
    code = (
        "import sys; from bot import cli; rc = cli.main(['--campaign', sys.argv[1], 'check']);"
        "bad = [m for m in ('tweepy', 'mastodon', 'atproto') if m in sys.modules];"
        "print('IMPORTED', bad); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(campaign_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "IMPORTED []" in done.stdout


def test_repo_sample_campaign_passes():
    """The shipped #FreeAndreiandIrina campaign at the repository root has no errors."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--campaign", str(REPO), "check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The summary, then what the campaign's settings add (the media host's line since config/media_host.yaml).
    assert any(line.startswith("campaign 'FreeAndreiandIrina' is valid") for line in done.stdout.splitlines())


def test_no_warnings_option_hides_warnings(campaign_dir: Path, credentials, monkeypatch, capsys):
    """``--no-warnings`` prints only the summary when the only problems are warnings."""
    monkeypatch.delenv("MASTODON_A19_TOKEN")
    assert cli.main(["--campaign", str(campaign_dir), "check", "--no-warnings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].endswith("1 warning")
