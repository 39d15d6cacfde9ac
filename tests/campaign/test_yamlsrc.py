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
