"""Accounts split over config/accounts.yaml and config/accounts/*.yaml: a coalition's thousands of accounts load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaign.loader import load
from bot.campaign.yamlsrc import MAX_BYTES
from bot.core.errors import ConfigError


def _x_accounts(ids: list[str]) -> str:
    lines = ["accounts:"]
    for n in ids:
        lines.append(
            f"  {n}: {{platform: x, credentials: {{consumer_key: X_APP_KEY, consumer_secret: X_APP_SECRET,"
            f" access_token: X_{n.upper().replace('-', '_')}_T, access_token_secret: X_{n.upper().replace('-', '_')}_S}}}}"
        )
    return "\n".join(lines) + "\n"


def test_accounts_in_several_files_load_together_beyond_one_files_limit(campaign_dir: Path) -> None:
    """2,000 accounts over accounts.yaml and two files of config/accounts/ (each under 256 KB, together over) all load."""
    parts = campaign_dir / "config" / "accounts"
    parts.mkdir()
    ids = [f"s-{n:04d}" for n in range(2000)]
    (parts / "a.yaml").write_text(_x_accounts(ids[:1000]))
    (parts / "b.yml").write_text(_x_accounts(ids[1000:]))
    sizes = [p.stat().st_size for p in parts.iterdir()]
    assert all(size < MAX_BYTES for size in sizes) and sum(sizes) > MAX_BYTES
    campaign = load(campaign_dir)
    assert set(ids) <= set(campaign.accounts)
    assert "x-index" in campaign.accounts  # config/accounts.yaml's own are kept
    assert campaign.accounts["s-1000"].line == 2  # its line in its own file


def test_an_id_in_two_files_is_a_problem_naming_both_files_and_lines(campaign_dir: Path) -> None:
    """The same account id in config/accounts.yaml and a part file is refused with both places; a part sets no campaign."""
    parts = campaign_dir / "config" / "accounts"
    parts.mkdir()
    (parts / "more.yaml").write_text("campaign: other\n" + _x_accounts(["s-1", "x-index"]))
    with pytest.raises(ConfigError) as info:
        load(campaign_dir)
    assert info.value.problems == [
        "config/accounts/more.yaml:1: campaign: is set in config/accounts.yaml only (this file adds accounts)",
        "config/accounts/more.yaml:4: accounts.x-index: account 'x-index' is also in config/accounts.yaml:3 (ids are unique)",
    ]


def test_an_unset_variable_of_an_account_in_a_part_file_names_that_file(campaign_dir: Path) -> None:
    """A credential variable missing for an account kept in config/accounts/ is reported at its own file and line."""
    from bot.campaign.secrets import secret_problems

    parts = campaign_dir / "config" / "accounts"
    parts.mkdir()
    (parts / "supporters.yaml").write_text(_x_accounts(["s-7"]))
    campaign = load(campaign_dir)
    assert campaign.accounts["s-7"].file == "config/accounts/supporters.yaml"
    problems = [p for p in secret_problems(campaign, {}) if "S_7" in p]
    assert problems and all(p.startswith("config/accounts/supporters.yaml:2: ") for p in problems)
