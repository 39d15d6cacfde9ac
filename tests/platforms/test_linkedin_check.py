"""``bot check`` on LinkedIn accounts: no hashtag tracking, the app's optional credentials, the pinned version's age."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from bot.campaign import inspect
from bot.platforms.linkedin.adapter import DEFAULT_VERSION, version_age_months

BASE = Path(__file__).resolve().parents[1] / "cases" / "base"

LINKEDIN = """
  linkedin-a19:
    platform: linkedin
    handle: "2414183"
    options: {linkedin_version: "202401"}
    credentials: {access_token: LINKEDIN_A19_TOKEN, client_id: LINKEDIN_A19_CLIENT_ID,
                  client_secret: LINKEDIN_A19_CLIENT_SECRET}
"""


def campaign(tmp_path: Path, track_accounts: str) -> Path:
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    accounts = root / "config" / "accounts.yaml"
    accounts.write_text(accounts.read_text() + LINKEDIN)
    (root / "config" / "reshare.yaml").write_text(
        f"track:\n  - hashtags: [FreeAndreiandIrina]\n    accounts: [{track_accounts}]\npolicy: {{}}\n"
    )
    return root


def test_a_tracking_rule_on_a_linkedin_account_is_refused_at_its_line(tmp_path: Path) -> None:
    """A LinkedIn account under track: is an error at reshare.yaml's line, saying why and what to do instead."""
    found = inspect(campaign(tmp_path, "x-index, linkedin-a19"))
    [problem] = [e for e in found.errors if "linkedin-a19" in e]
    assert problem.startswith("config/reshare.yaml:3: track[0].accounts[1]: ")
    assert "no hashtag search" in problem and "reshare_of" in problem


def test_linkedin_app_credentials_are_accepted_and_an_old_version_is_warned(tmp_path: Path) -> None:
    """client_id and client_secret are known roles, and a version pinned over ten months ago is a warning, not an error."""
    found = inspect(campaign(tmp_path, "x-index"))
    assert not [e for e in found.errors if "linkedin" in e]
    [warning] = [w for w in found.warnings if "linkedin_version" in w]
    assert warning.startswith("config/accounts.yaml:") and "202401" in warning


def test_the_default_version_is_young_enough_today() -> None:
    """The shipped default version is within the warning age today (update it when this fails)."""
    assert version_age_months(DEFAULT_VERSION, date.today()) <= 10


def test_a_video_under_three_seconds_is_refused_by_check() -> None:
    """bot check refuses a LinkedIn video shorter than the Videos API's 3 seconds, and passes a longer one."""
    from bot.media import MediaInfo
    from bot.platforms.linkedin import LinkedIn

    short = MediaInfo(kind="video", format="mov,mp4", bytes=100_000, duration=2.0)
    assert LinkedIn.media_refusals([], short) == [
        (("video",), "lasts 2.0 s; linkedin takes videos of 3 s to 30 minutes")
    ]
    assert LinkedIn.media_refusals([], MediaInfo(kind="video", format="mov,mp4", bytes=100_000, duration=3.0)) == []
