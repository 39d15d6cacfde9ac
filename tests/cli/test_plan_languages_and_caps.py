"""``bot plan`` and ``bot check`` as staff run them: accounts' languages in the calendar, and daily-cap warnings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot import cli
from tests.cases.casefiles import BASE, BASE_ENV

BE_ACCOUNT = """
  mastodon-by:
    platform: mastodon
    base_url: https://mastodon.social
    language: be
    credentials: {access_token: MASTODON_A19_TOKEN}
"""
BURST = """
  - cron: "*/10 * * * *"
    post: launch
    accounts: [x-index]
"""
PLAN = ["plan", "--from", "2022-01-12", "--days", "1"]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The base campaign, its credentials set, with a Belarusian account on the launch slot and a be text."""
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    for var in BASE_ENV:
        monkeypatch.setenv(var, "fake-secret-value")
    accounts = root / "config/accounts.yaml"
    accounts.write_text(accounts.read_text() + BE_ACCOUNT)
    schedule = root / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text().replace("bluesky-index]", "bluesky-index, mastodon-by]", 1))
    post = root / "posts/launch.yaml"
    english = post.read_text().split("variants:")[0].removeprefix("text: |\n").strip()
    rest = "variants:" + post.read_text().split("variants:")[1]
    post.write_text(f'text:\n  en: "{english}"\n  be: "Свабоду Андрэю і Ірыне. #FreeAndreiandIrina"\n{rest}')
    return root


def test_check_is_clean_with_a_be_text(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """With a be text for the Belarusian account, ``bot check`` passes with its one summary line."""
    assert cli.main(["--campaign", str(campaign), "check"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "campaign 'test-campaign' is valid: 4 accounts, 5 posts (2 queues), 1 schedules with 3 slots; 0 warnings"
    ]


def test_check_fails_naming_the_belarusian_account(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """Without the be text, ``bot check`` exits 1 and names the post's file and line, the account and the languages."""
    post = campaign / "posts/launch.yaml"
    post.write_text(post.read_text().replace("  be:", "  ru:"))
    assert cli.main(["--campaign", str(campaign), "check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "posts/launch.yaml:1: text: mastodon-by (config/accounts.yaml:17) publishes in be, but post 'launch' has no "
        "be text, only en, ru (expected text.be: the words in be, or take the post out of the slots of that account)"
    ]


def test_plan_shows_an_accounts_other_language(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """The calendar marks the account that publishes in another language than the campaign's, and JSON has them all."""
    assert cli.main(["--campaign", str(campaign), *PLAN]) == 0
    launch = next(line for line in capsys.readouterr().out.splitlines() if "09:00" in line)
    assert "x-index, mastodon-a19, bluesky-index, mastodon-by (be)" in launch
    assert cli.main(["--campaign", str(campaign), *PLAN, "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert entry["languages"] == {"x-index": "en", "mastodon-a19": "en", "bluesky-index": "en", "mastodon-by": "be"}


def test_plan_warns_of_a_day_over_the_cap(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """A slot every 10 minutes to an X account: the plan warns, with the slots' lines, and still exits 0."""
    schedule = campaign / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text() + BURST)
    assert cli.main(["--campaign", str(campaign), *PLAN]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("Daily caps (posts a platform lets one account publish in 24 hours):")
    assert out[start + 1] == (
        "  warning: x-index would publish 146 posts in the 24 hours from Wed 12 Jan 2022 00:00 GMT, more than x "
        "allows (expected at most 100 in 24 hours: fewer slots for this account); from the slots at "
        "schedules/launch.yaml:15, schedules/launch.yaml:4, schedules/launch.yaml:7"
    )


def test_plan_json_keeps_warnings_apart(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """With ``--json`` the cap warning goes to stderr, so the JSON on stdout still parses."""
    schedule = campaign / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text() + BURST)
    assert cli.main(["--campaign", str(campaign), *PLAN, "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 147
    assert "warning: x-index would publish 146 posts" in captured.err


def test_plan_without_overruns_prints_no_cap_section(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """A campaign within every cap prints no daily-cap heading at all."""
    assert cli.main(["--campaign", str(campaign), *PLAN]) == 0
    assert "Daily caps" not in capsys.readouterr().out


FACEBOOK = """
  facebook-page:
    platform: facebook
    credentials: {access_token: MASTODON_A19_TOKEN}
"""
REELS = """
  - cron: "*/30 * * * *"
    post: 001-supporter
    accounts: [facebook-page]
"""


def test_plan_and_check_warn_of_a_day_over_the_reels_cap(campaign: Path, capsys: pytest.CaptureFixture[str]):
    """A supporter video every 30 minutes to a Facebook Page: 48 Reels a day, over 30; plan and check both warn."""
    accounts = campaign / "config/accounts.yaml"
    accounts.write_text(accounts.read_text() + FACEBOOK)
    schedule = campaign / "schedules/launch.yaml"
    schedule.write_text(schedule.read_text() + REELS)
    assert cli.main(["--campaign", str(campaign), *PLAN]) == 0
    out = capsys.readouterr().out
    assert "facebook-page would publish 48 video posts (Reels) in the 24 hours from Wed 12 Jan 2022 00:00 GMT" in out
    assert "more than facebook allows (expected at most 30 in 24 hours: fewer video posts or slots" in out
    cli.main(["--campaign", str(campaign), "check"])
    out = capsys.readouterr().out
    assert "warning: slots[3]: facebook-page would publish" in out and "video posts (Reels)" in out
