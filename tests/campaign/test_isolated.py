"""The worker's loader: the same campaign or the same problems as ``load``, from a child capped in memory and time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.campaign import load
from bot.campaign.isolated import load_isolated
from bot.core.errors import ConfigError

CASES = Path(__file__).resolve().parents[1] / "cases"


def test_valid_campaign_comes_back_equal_to_an_in_process_load() -> None:
    """The pickled model the child sends is the model ``load`` builds, value for value."""
    assert load_isolated(CASES / "base") == load(CASES / "base")


def test_invalid_campaign_gives_the_same_problems(tmp_path: Path) -> None:
    """Staff see the same ``file:line`` messages whether the worker or ``bot check`` loaded the files."""
    root = tmp_path / "campaign"
    shutil.copytree(CASES / "base", root)
    (root / "schedules" / "launch.yaml").write_text("timezone: Europe/Londn\nslots: []\n")
    with pytest.raises(ConfigError) as in_process:
        load(root)
    with pytest.raises(ConfigError) as isolated:
        load_isolated(root)
    assert isolated.value.problems == in_process.value.problems


def test_a_load_over_the_memory_cap_is_a_problem_not_a_dead_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that runs out of its address space becomes one problem naming the cap and its variable."""
    monkeypatch.setenv("BOT_LOAD_MEMORY_MB", "40")  # not even the interpreter and pydantic fit
    with pytest.raises(ConfigError) as err:
        load_isolated(CASES / "base")
    [problem] = err.value.problems
    assert "memory" in problem and "BOT_LOAD_MEMORY_MB" in problem
