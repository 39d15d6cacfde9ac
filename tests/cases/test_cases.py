"""The case corpus: every invalid case yields exactly its expected lines, every valid case passes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bot import cli
from bot.campaign.parsecache import CACHE
from bot.campaign.yamlsrc import YamlProblem, read
from tests.cases.casefiles import BASE_ENV, build, cases

INVALID = cases("invalid")
VALID = cases("valid")


def _run(
    case: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    built: tuple[Path, list[str]] | None = None,
) -> tuple[int, list[str], str]:
    """``bot check`` of the case built under ``tmp_path``, or of ``built`` (its folder and variables to unset)."""
    root, unset = built or build(case, tmp_path)
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


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_case_same_with_cold_and_warm_parse_cache(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """With state/, the check that writes the parse cache and the one that reads it both print the case's lines."""
    built = build(case, tmp_path)
    root = built[0]
    (root / "state").mkdir()
    _, cold, _ = _run(case, tmp_path, monkeypatch, capsys, built)
    store = root / CACHE
    written = store.stat()
    kept = set(json.loads(store.read_text())["files"])
    assert kept and kept <= _parsed_digests(root)  # not all: a duplicate id or a link outside is never read
    _, warm, _ = _run(case, tmp_path, monkeypatch, capsys, built)
    expected = [line for line in (case / "expected.txt").read_text().splitlines() if line.strip()]
    assert cold[: len(expected)] == expected and len(cold) in (len(expected), len(expected) + 1)
    assert warm == cold
    # Not written again: the warm check found an entry for every post, and no other.
    assert (store.stat().st_ino, store.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def _parsed_digests(root: Path) -> set[str]:
    """Content hashes of the campaign's post files that are readable YAML (only those are cached)."""
    out = set()
    for path in (root / "posts").rglob("*.y*ml"):
        try:
            read(path, "x")
        except (YamlProblem, OSError):
            continue
        out.add(hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest())
    return out
