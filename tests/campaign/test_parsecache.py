"""The parse cache: same values as a fresh parse, used only for the exact bytes it was made from, kept only in state/."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from bot.campaign import inspect, parsecache
from bot.campaign.parsecache import CACHE, ParseCache
from bot.campaign.yamlsrc import YamlProblem, read

REPO = Path(__file__).resolve().parents[2]
CORPUS = sorted(
    p for folder in ("tests/cases", "posts", "schedules", "config") for p in (REPO / folder).rglob("*.y*ml")
)
KINDS = """\
text: hi #tag
when: 2022-01-05
at: 2022-01-05 10:00:00+02:00
naive: 2022-01-05T10:00:00
bad_date: 2022-13-01
time: 10:30
n: 3
f: 1.5
inf: .inf
yes: yes
none: ~
blob: !!binary aGVsbG8=
numbers: {1: one, 2: two}
"\\0": marked key
list: [a, 1, 2022-01-05, {b: [c, 2.0]}]
"""


def _warm(path: Path, tmp_path: Path) -> tuple[object, object]:
    """(fresh Source, Source from a cache that was written by another run and read back)."""
    store = tmp_path / "state" / "parse-cache.json"
    store.parent.mkdir(exist_ok=True)
    store.unlink(missing_ok=True)
    first = ParseCache(store)
    fresh = first.read(str(path), "x.yaml")
    first._old = {}  # as a new file: save writes even when the content was cached before
    first.save()
    second = ParseCache(store)
    cached = second.read(str(path), "x.yaml")
    assert second.hits == 1, path
    return fresh, cached


def test_every_value_kind_comes_back_from_the_cache_as_parsed(tmp_path: Path):
    """Dates, timezone-aware and naive datetimes, bytes, numbers, non-text keys and cut hashtags survive the cache."""
    path = tmp_path / "kinds.yaml"
    path.write_text(KINDS)
    fresh, cached = _warm(path, tmp_path)
    assert cached.data == fresh.data
    assert [type(v) for v in _leaves(cached.data)] == [type(v) for v in _leaves(fresh.data)]
    assert fresh.data["at"].utcoffset() == dt.timedelta(hours=2)
    assert cached.cut_hashtags == fresh.cut_hashtags == {("text",): "#tag"}


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (k, *_leaves(v))]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_every_corpus_file_reads_the_same_from_the_cache(tmp_path: Path):
    """Each YAML file of the repository gives the same values and cut hashtags, and the same lines, cold or warm."""
    checked = 0
    for path in CORPUS:
        try:
            full = read(path, "x.yaml")
        except YamlProblem:
            continue
        fresh, cached = _warm(path, tmp_path)
        assert (cached.data, cached.cut_hashtags) == (fresh.data, fresh.cut_hashtags) == (full.data, full.cut_hashtags)
        for loc in (("text",), ("media", 0, "file"), ("slots", 1, "accounts"), ("video",)):
            assert cached.line(loc) == full.line(loc), (path, loc)
        checked += 1
    assert checked > 50


def test_syntax_errors_are_not_cached(tmp_path: Path):
    """A file that does not parse is reported with its line every time and leaves no entry."""
    path = tmp_path / "p.yaml"
    path.write_text("text: one\ntext: two\n")
    (tmp_path / "state").mkdir()
    for _ in range(2):
        cache = ParseCache(tmp_path / CACHE)
        with pytest.raises(YamlProblem) as info:
            cache.read(str(path), "p.yaml")
        assert info.value.line == 2
        cache.save()
    assert not (tmp_path / CACHE).exists()


def _post(root: Path, body: str) -> Path:
    path = root / "posts" / "launch.yaml"
    path.write_text(body)
    return path


def test_changed_content_never_uses_the_old_entry(campaign_dir: Path):
    """An edited post is parsed afresh even when its size and modification time are as before."""
    (campaign_dir / "state").mkdir()
    path = _post(campaign_dir, "text: Free Andrei and Irina\n")
    stat = path.stat()
    assert inspect(campaign_dir).errors == []
    cached = json.loads((campaign_dir / CACHE).read_text())["files"]
    assert hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest() in cached
    path.write_text("txet: Free Andrei and Irina\n")  # same length
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert "posts/launch.yaml:1: unknown key 'txet' (did you mean 'text'?)" in inspect(campaign_dir).errors


def test_warm_check_reads_the_cache_and_keeps_only_current_files(campaign_dir: Path):
    """A second check hits the cache for every post; a removed post's entry drops out of the file."""
    (campaign_dir / "state").mkdir()
    inspect(campaign_dir)
    posts = sorted((campaign_dir / "posts").rglob("*.yaml"))
    digests = {hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() for p in posts}
    assert set(json.loads((campaign_dir / CACHE).read_text())["files"]) == digests
    cache = parsecache.at(campaign_dir)
    for post in posts:
        cache.read(str(post), post.name)
    assert cache.hits == len(posts)
    gone = posts.pop()
    gone.unlink()
    inspect(campaign_dir)
    kept = set(json.loads((campaign_dir / CACHE).read_text())["files"])
    assert kept == {hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() for p in posts} != digests


def test_read_only_commands_create_no_folder(campaign_dir: Path):
    """Without state/, a check writes nothing into the campaign folder."""
    before = sorted(p.relative_to(campaign_dir) for p in campaign_dir.rglob("*"))
    inspect(campaign_dir)
    assert not (campaign_dir / "state").exists()
    assert sorted(p.relative_to(campaign_dir) for p in campaign_dir.rglob("*")) == before


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"version": "0/old", "files": {}}), json.dumps([1, 2]), json.dumps({"version": None})],
)
def test_unreadable_or_foreign_cache_is_ignored(campaign_dir: Path, content: str):
    """A corrupt cache, or one from another version of the reader or PyYAML, is not used and is replaced."""
    (campaign_dir / "state").mkdir()
    (campaign_dir / CACHE).write_text(content)
    assert inspect(campaign_dir).errors == []
    assert json.loads((campaign_dir / CACHE).read_text())["version"] == parsecache._STAMP


@pytest.mark.parametrize(
    "damaged", [None, 5, [], ["x"], [{"\x00": ["date", "not a date"]}, [], True], [{}, [[1]], False]]
)
def test_damaged_entry_is_parsed_again(tmp_path: Path, damaged: object):
    """An entry of the right hash but the wrong shape is not used: the file is parsed and the entry replaced."""
    path = tmp_path / "p.yaml"
    path.write_text("text: hi #tag\n")
    (tmp_path / "state").mkdir()
    digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    (tmp_path / CACHE).write_text(json.dumps({"version": parsecache._STAMP, "files": {digest: damaged}}))
    cache = ParseCache(tmp_path / CACHE)
    source = cache.read(str(path), "p.yaml")
    assert (source.data, source.cut_hashtags, cache.hits) == ({"text": "hi"}, {("text",): "#tag"}, 0)
    cache.save()
    assert ParseCache(tmp_path / CACHE).read(str(path), "p.yaml").data == {"text": "hi"}
