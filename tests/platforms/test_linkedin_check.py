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


def reshare_campaign(tmp_path: Path, reshare_of: str, accounts: str, text: str | None = None) -> Path:
    root = campaign(tmp_path, "x-index")
    commentary = text if text is not None else '""'
    body = f"reshare_of: {reshare_of}\ntext: {commentary}\n"
    (root / "posts" / "partner.yaml").write_text(body)
    (root / "schedules" / "partner.yaml").write_text(
        "timezone: Europe/London\nwindow: {start: 2022-01-12, end: 2022-01-13}\nslots:\n"
        f"  - at: 2022-01-12T14:00\n    post: partner\n    accounts: [{accounts}]\n"
    )
    return root


def test_a_post_file_schedules_a_reshare_by_url_with_optional_commentary(tmp_path: Path) -> None:
    """reshare_of with a LinkedIn URL and an empty text is a valid post for a LinkedIn account, and reaches the adapter."""
    url = "https://www.linkedin.com/feed/update/urn:li:share:7123456789/"
    found = inspect(reshare_campaign(tmp_path, url, "linkedin-a19"))
    assert found.errors == []
    assert found.campaign is not None
    out = found.campaign.posts["partner"].outgoing("linkedin", "k")
    assert (out.reshare_of, out.text) == (url, "")


def test_a_reshare_to_another_platform_or_of_no_linkedin_post_is_refused(tmp_path: Path) -> None:
    """reshare_of on an X account, or naming no share or ugcPost, is an error at the post file's line."""
    found = inspect(
        reshare_campaign(tmp_path, "https://example.org/not-linkedin", "linkedin-a19, x-index", "Read this")
    )
    problems = [e for e in found.errors if e.startswith("posts/partner.yaml:1: reshare_of: ")]
    assert any("names no LinkedIn post" in p for p in problems)
    assert any("x cannot reshare a post named by reference (accounts x-index)" in p for p in problems)
