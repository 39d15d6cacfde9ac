"""The case corpus: every invalid case yields exactly its expected lines, every valid case passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli
from tests.cases.casefiles import BASE_ENV, build, cases

INVALID = cases("invalid")
VALID = cases("valid")


def _run(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, list[str], str]:
    root, unset = build(case, tmp_path)
    for var in BASE_ENV:
        monkeypatch.setenv(var, f"value-of-{var.lower()}")
    for var in unset:
        monkeypatch.delenv(var)
    code = cli.main(["--campaign", str(root), "check"])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_corpus_is_big_enough():
    """The corpus holds at least 40 invalid cases, each with an expected.txt."""
    assert len(INVALID) >= 40
    assert all((case / "expected.txt").is_file() for case in INVALID)


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """An invalid case prints exactly its expected lines, and exits 1 when one of them is an error."""
    expected = [line for line in (case / "expected.txt").read_text().splitlines() if line.strip()]
    code, lines, _ = _run(case, tmp_path, monkeypatch, capsys)
    has_error = any(": warning: " not in line for line in expected)
    if has_error:
        assert lines == expected
        assert code == 1
    else:
        assert lines[:-1] == expected and "is valid" in lines[-1]
        assert code == 0


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_valid_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """A valid case exits 0 and prints only the one-line summary."""
    code, lines, err = _run(case, tmp_path, monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert len(lines) == 1 and lines[0].startswith("campaign 'test-campaign' is valid:")


def test_base_campaign_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """The base every case starts from is itself valid, so a case's lines come from its own change."""
    (tmp_path / "empty").mkdir()
    code, lines, _ = _run(tmp_path / "empty", tmp_path / "out", monkeypatch, capsys)
    assert code == 0 and len(lines) == 1


POSTS_CASES = [c for c in INVALID if (c / "posts").is_dir()]


@pytest.mark.parametrize("case", POSTS_CASES, ids=[c.name for c in POSTS_CASES])
def test_invalid_case_same_without_fast_paths(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """With the fast post reader and the plain-post check turned off, libyaml and pydantic give the same lines."""
    from bot.campaign import fastyaml, posts

    expected = [line for line in (case / "expected.txt").read_text().splitlines() if line.strip()]
    monkeypatch.setattr(fastyaml, "parse", lambda text: None)
    monkeypatch.setattr(posts, "plain_post", lambda data: None)
    _, lines, _ = _run(case, tmp_path, monkeypatch, capsys)
    assert lines[: len(expected)] == expected
