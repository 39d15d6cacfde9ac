"""YAML reading: safe, with the line of every key and item."""

from __future__ import annotations

import pytest

from bot.campaign.yamlsrc import YamlProblem, parse

DOC = """\
timezone: Europe/London
slots:
  - at: 2022-01-12T09:00
    accounts: [a, b]
  - every: day
    times: [10:00, "16:30"]
"""


def test_lines_of_keys_and_items():
    """Each key and list item is located on the line where it is written."""
    source = parse(DOC, "schedules/x.yaml")
    assert source.line(("timezone",)) == 1
    assert source.line(("slots", 1)) == 5
    assert source.line(("slots", 1, "times")) == 6
    assert source.line(("slots", 0, "accounts", 1)) == 4


def test_unknown_location_falls_back_to_nearest_parent():
    """A location missing from the file (a required key) points at its parent's line."""
    source = parse(DOC, "schedules/x.yaml")
    assert source.line(("slots", 1, "queue")) == 5
    assert source.where(("slots", 0, "post")) == "schedules/x.yaml:3"


def test_unquoted_time_stays_a_time_not_base_60():
    """``10:00`` unquoted stays the text 10:00 instead of YAML 1.1's sexagesimal 600."""
    assert parse(DOC, "x").data["slots"][1]["times"] == ["10:00", "16:30"]


def test_syntax_error_has_line():
    """A syntax error is reported with the line where the parser stopped."""
    with pytest.raises(YamlProblem) as info:
        parse("a: 1\nb: [1, 2\nc: 3\n", "x")
    assert info.value.line == 3
    assert info.value.message.startswith("YAML syntax error:")


def test_duplicate_key_is_an_error():
    """A key written twice is refused instead of silently keeping the last value."""
    with pytest.raises(YamlProblem) as info:
        parse("text: one\nlink: x\ntext: two\n", "x")
    assert (info.value.line, info.value.message) == (3, "YAML syntax error: duplicate key 'text'")


def test_python_tags_are_refused():
    """Only safe YAML is read: a python object tag is an error, never constructed."""
    with pytest.raises(YamlProblem):
        parse("x: !!python/object/apply:os.system ['true']\n", "x")


def test_impossible_date_is_kept_as_text():
    """An impossible date stays text, so validation reports it with its line instead of crashing."""
    assert parse("start: 2022-13-01\n", "x").data == {"start": "2022-13-01"}


def test_reader_is_libyaml():
    """The installed PyYAML has libyaml, and files are composed by its C safe loader (no pure-Python fallback)."""
    import yaml

    from bot.campaign import yamlsrc

    assert yaml.__with_libyaml__
    assert yamlsrc._Loader is yaml.CSafeLoader


def test_tab_indentation_is_a_syntax_error_with_its_line():
    """A tab used to indent is refused at its line; a tab inside a value is kept as written."""
    with pytest.raises(YamlProblem) as info:
        parse("text: hi\nmedia:\n\t- file: a.png\n", "x")
    assert info.value.line == 3
    assert info.value.message.startswith("YAML syntax error:")
    assert parse('text: "a\tb"\n', "x").data == {"text": "a\tb"}


def test_non_utf8_bytes_are_a_problem_at_line_1(tmp_path):
    """A file that is not UTF-8 text is reported as such, never read with replaced characters."""
    from bot.campaign.yamlsrc import read

    path = tmp_path / "p.yaml"
    path.write_bytes("text: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(YamlProblem) as info:
        read(path, "posts/p.yaml")
    assert (info.value.line, info.value.message) == (1, "file is not UTF-8 text")


def test_python_object_tags_never_build_anything(tmp_path):
    """Neither !!python/object nor !!python/name is constructed: the file is refused with its line."""
    marker = tmp_path / "ran"
    for doc in (
        f"text: hi\nx: !!python/object/apply:os.system ['touch {marker}']\n",
        "text: hi\nx: !!python/name:os.system\n",
        "text: hi\nx: !!python/object:collections.OrderedDict {}\n",
    ):
        with pytest.raises(YamlProblem) as info:
            parse(doc, "x")
        assert info.value.line == 2, doc
    assert not marker.exists()


def test_hashtag_after_unquoted_text_is_found_as_cut():
    """An unquoted value followed by " #word" is noted (YAML drops it as a comment); quoted or block text is not."""
    doc = 'text: Free them #FreeAndreiandIrina\nvariants:\n  x: "Free #them"\n  mastodon: |\n    Free #them\n'
    source = parse(doc, "x")
    assert source.data["text"] == "Free them"
    assert source.cut_hashtags == {("text",): "#FreeAndreiandIrina"}


def test_merge_keys_and_non_scalar_keys_are_refused():
    """``<<`` merges and list or mapping keys are errors with their line, not silently built."""
    for doc, line in (
        ("a: 1\nc:\n  <<: {b: 1}\n", 3),
        ("a: &x {b: 1}\nc:\n  <<: *x\n", 1),
        ("text: hi\n? [a, b]\n: c\n", 2),
    ):
        with pytest.raises(YamlProblem) as info:
            parse(doc, "x")
        assert info.value.line == line, doc


def test_later_source_reads_the_file_again_for_lines(tmp_path):
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
