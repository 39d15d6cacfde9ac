"""The fast post reader and the plain-post check agree with libyaml and pydantic wherever they answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.campaign import fastyaml
from bot.campaign.files import PostFile
from bot.campaign.plainpost import plain_post
from bot.campaign.yamlsrc import Source, YamlProblem, parse

REPO = Path(__file__).resolve().parents[2]
CORPUS = sorted(
    p for folder in ("tests/cases", "posts", "schedules", "config") for p in (REPO / folder).rglob("*.y*ml")
)
TRICKY = [
    "text: hello\n",
    "text: |\n  a\n  b\n",
    "text: |-\n  a\n\n  b\n\n",
    "text: |\n  a\n\n\nlink: x\n",
    "text: |\n  a\n# c\nlink: x\n",
    "text: |\n  a",
    "text: |\n    a\n   b\n",
    "text: |\n  a\n    b\n",
    "text: hi\n  more\n",
    "text: 'a''b'\n",
    'text: "a"\n',
    'text: "a" # c\n',
    "text: a # c\n",
    "text: a #c\n",
    "text:a\n",
    "text: yes\n",
    "yes: a\n",
    "text: ~\n",
    "text:\n",
    "text:\nlink: x\n",
    "media:\n- file: a\n",
    "media:\n  - file: a\n    alt: b\n  - file: c\n",
    "media:\n  -   file: a\n      alt: b\n",
    "media:\n  - a\n  - b\n",
    "media:\n  - file: a\n   alt: b\n",
    "variants:\n  x: a\n  mastodon: b\n",
    "variants:\n  x: |\n    long\n  y: z\n",
    "consent: {given: true, date: 2022-01-05}\n",
    "consent: {given: yes, date: 2022-13-05}\n",
    "a: [x, y]\n",
    "a: []\n",
    "a: {}\n",
    "a: [x, y,]\n",
    "a: {b: c, b: d}\n",
    "a: 10:30\n",
    "a: 1_000\n",
    "a: 0x1F\n",
    "a: =\n",
    "a: b\na: c\n",
    "# c\n\ntext: x\n",
    "---\ntext: x\n",
    "text: x\n...\n",
    "text: a: b\n",
    "text: a:\n",
    "text: -a\n",
    "text: - a\n",
    "text: 'a\n  b'\n",
    "a:\n  b:\n    c: d\n  e: f\n",
    "a:\n  b: c\n d: e\n",
    "a: b\n  # c\nd: e\n",
    "text: |\n  x\n   \n  y\n",
    "text: |\n  x\n  \n  y\n",
    "text: |\n\n  x\n",
    "text: |\n  \u00e9\u2028\n",
    "text: a\u00a0b\n",
    "a: 2022-01-05 10:00:00\n",
    "a: 2022-01-05T10:00\n",
    "a: null\n",
    "a: [1, 2]\n",
    "a: {b: [c]}\n",
    'text: "a\\"b"\n',
    "- a\n",
    "a\n",
    "",
    "a: b\n\n\n",
    "a: [b c, d]\n",
    "a: {b: c d}\n",
    "a: {b:c}\n",
    "a: [b: c]\n",
    "a: &x b\n",
    "a: !!str b\n",
    "a: b\r\n",
    "a: b\tc\n",
    "text: |\n  a\nlink: x\nmedia:\n  - file: m\n    alt: |\n      long alt\n  - file: n\n",
]


def _locs(data: Any, loc: tuple = ()):
    yield loc
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _locs(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _locs(value, (*loc, i))


def _same_as_libyaml(text: str) -> bool:
    """Whether the fast reader answered; fails the test when its answer differs from libyaml's."""
    fast = fastyaml.parse(text)
    if fast is None:
        return False
    try:
        full = parse(text, "x.yaml")
    except YamlProblem as exc:
        pytest.fail(f"fast reader accepted what libyaml refuses ({exc.message}): {text!r}")
    mapped = Source("x.yaml", fast[0], lines=fast[1], first=fast[2])
    assert mapped.data == full.data and not full.cut_hashtags, text
    for loc in _locs(full.data):
        for probe in (loc, (*loc, "missing"), (*loc, 99)):
            assert mapped.line(probe) == full.line(probe), (text, probe)
    return True


@pytest.mark.parametrize("text", TRICKY)
def test_fast_reader_matches_libyaml_on_tricky_documents(text):
    """On edge cases of quoting, blocks, lists and types the fast reader gives libyaml's values and lines, or gives up."""
    _same_as_libyaml(text)


def test_fast_reader_matches_libyaml_on_corpus():
    """Every campaign file of the repository reads the same, with the same lines, through either reader."""
    answered = sum(_same_as_libyaml(path.read_text(encoding="utf-8", errors="replace")) for path in CORPUS)
    assert answered > len(CORPUS) // 2  # the fast reader is used for most files, not just declared


def test_fast_reader_gives_up_on_what_it_does_not_know():
    """Flow values with quotes, anchors, tags and comments after values go to libyaml."""
    for text in ('a: {b: "c"}\n', "a: &x b\n", "a: !!str b\n", "text: a #tag\n", "a:\n- b\n"):
        assert fastyaml.parse(text) is None, text


def test_plain_posts_are_what_postfile_accepts():
    """A post taken without pydantic is one PostFile accepts, with the same values."""
    taken = 0
    for path in CORPUS:
        try:
            data = parse(path.read_text(encoding="utf-8"), "x").data
        except (YamlProblem, UnicodeDecodeError):
            continue
        plain = plain_post(data)
        if plain is None:
            continue
        taken += 1
        model = PostFile.model_validate(data)
        for name in ("text", "link", "video", "captions", "captions_lang", "alt", "language"):
            assert getattr(plain, name) == getattr(model, name), (path, name)
        assert (plain.variants or {}) == model.variants, path
        assert [(m.file, m.alt) for m in plain.media] == [(m.file, m.alt) for m in model.media], path
        for part, fields in (
            ("supporter", ("name", "role", "organisation", "country")),
            ("consent", ("given", "date", "recorded_by")),
        ):
            ours, theirs = getattr(plain, part), getattr(model, part)
            assert (ours is None) == (theirs is None), (path, part)
            if ours is not None:
                assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields], (path, part)
    assert taken > 20


def test_plain_post_refuses_what_postfile_words():
    """Wrong types, unknown keys and datetimes are left to PostFile, which explains them."""
    for data in (
        {"text": 1},
        {"text": "a", "txt": "b"},
        {"text": "a", "media": [{"file": "x", "alt": 3}]},
        {"text": "a", "consent": {"given": True, "date": __import__("datetime").datetime(2022, 1, 5, 10)}},
        {"text": "a", "variants": None},
        {"text": "a", "supporter": {"role": "x"}},
    ):
        assert plain_post(data) is None, data


def test_later_source_reads_the_file_again_for_lines(tmp_path: Path):
    """A post's file kept only by name gives the same lines as the parse it replaced, and line 1 once removed."""
    from bot.campaign.yamlsrc import Later, read

    path = tmp_path / "p.yaml"
    path.write_text("# a post\ntext: hi\nmedia:\n  - file: a.png\n    alt: b\n  - file: c.png\n")
    full = read(path, "posts/p.yaml")
    later = Later("posts/p.yaml", str(path))
    for loc in (("media", 1, "file"), ("media", 0, "alt"), ("text",), ("video",)):
        assert later.line(loc) == full.line(loc)
    assert later.line(("media", 1)) == 6
    path.unlink()
    assert Later("posts/p.yaml", str(path)).line(("text",)) == 1


def test_post_keeps_the_model_contract(tmp_path: Path):
    """Post is built by keyword with a Path, gives a Path back, refuses changes, and defaults its parts."""
    import dataclasses

    from bot.core.model import Post

    post = Post(id="a", queue="q", path=tmp_path / "a.yaml", text="Free them https://example.org")
    assert post.path == tmp_path / "a.yaml" and isinstance(post.path, Path)
    assert (post.variants, post.media, post.video, post.link) == ({}, [], None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        post.text = "x"  # type: ignore[misc]
    assert dataclasses.replace(post, text="b").path == post.path
