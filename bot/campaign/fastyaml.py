"""A fast reader for the plain shape most post files have, with the line of every key.

libyaml costs about 50 microseconds a post file once its nodes are turned into
Python values, which is most of ``bot check`` on 10,000 posts. Post files are
nearly always a few ``key: value`` lines, a ``text: |`` block, a one-level
mapping (variants) or a list of one-level mappings (media). This reader takes
exactly that and gives up (returns None) on anything else: quoting it does not
know, flow collections, anchors, tags, tabs, comments after values, keys or
values that YAML would read as anything but text. Given up files go through
``yamlsrc.parse``; tests compare both readers on every file of the test corpus.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Loc = tuple[str | int, ...]
Lines = dict[Loc, int]

_STR = "tag:yaml.org,2002:str"
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +|$)")
# A plain value may not start with an indicator; "-" and "?" and ":" only start one when a space follows,
# but refusing them costs nothing.
_PLAIN_START = frozenset("-?:,[]{}#&*!|>'\"%@`")
# Anything but printable text and newlines (tabs, CR, NEL, Unicode line separators, BOM) needs libyaml's rules.
_ODD = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_BUILT = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:bool", _INT, _FLOAT, "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp")
}
_tags: dict[str, str] = {}


class _GiveUp(Exception):
    pass


def parse(text: str) -> tuple[Any, Lines, int] | None:
    """(data, line of each key and item by location, line of the document) or None when not plain."""
    if "\\" in text or _ODD.search(text):
        return None
    lines = text.split("\n")
    try:
        return _Reader(lines).document()
    except _GiveUp:
        return None


def _tag(value: str) -> str:
    if value[0] not in _resolver.yaml_implicit_resolvers:
        return _STR  # no implicit type starts with this character: most texts, links, file names
    tag = _tags.get(value)
    if tag is None:
        tag = _resolver.resolve(yaml.ScalarNode, value, (True, False))
        if len(value) <= 32 and len(_tags) < 10_000:
            _tags[value] = tag
    return tag


def _plain(value: str) -> Any:
    """A plain scalar on one line: text, or a value YAML builds from it (true, a date, a number)."""
    value = value.rstrip(" ")
    if not value or value[0] in _PLAIN_START or ": " in value or " #" in value or value.endswith(":"):
        raise _GiveUp
    if value in ("---", "..."):
        raise _GiveUp
    tag = _tag(value)
    if tag == _STR:
        return value
    build = _BUILT.get(tag)
    if build is None:
        raise _GiveUp
    # As yamlsrc does: an unquoted 10:30 stays text, an impossible date stays text for validation to report.
    if tag in (_INT, _FLOAT) and ":" in value:
        return value
    try:
        return build(_constructor, yaml.ScalarNode(tag, value))
    except ValueError:
        return value


def _flow(value: str, loc: Loc, line: int, where: Lines) -> Any:
    """A one-line ``{key: value, ...}`` or ``[value, ...]`` of plain values."""
    value = value.rstrip(" ")
    close = "}" if value[0] == "{" else "]"
    inner = value[1:-1]
    if value[-1] != close or any(c in inner for c in "{}[]\"'#&*!|>%@`?"):
        raise _GiveUp
    parts = [part.strip(" ") for part in inner.split(",")] if inner.strip(" ") else []
    if any(not part or part.startswith("-") for part in parts):
        raise _GiveUp
    if close == "]":
        for i in range(len(parts)):
            where[(*loc, i)] = line
        return [_flow_plain(part) for part in parts]
    out: dict[str, Any] = {}
    for part in parts:
        key, colon, item = part.partition(": ")
        if not colon or key in out or not _KEY.fullmatch(key + ":") or _tag(key) != _STR:
            raise _GiveUp
        where[(*loc, key)] = line
        out[key] = _flow_plain(item)
    return out


def _flow_plain(value: str) -> Any:
    if ":" in value:
        raise _GiveUp
    return _plain(value)


def _quoted(value: str) -> str:
    """A quoted scalar that ends on its own line, without escapes."""
    quote = value[0]
    end = value.find(quote, 1)
    if end < 0 or value[end + 1 :].strip(" "):
        raise _GiveUp  # multi-line, '' escape, or something after the closing quote
    return value[1:end]


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0
        self.where: Lines = {}
        # Each line's indentation, -1 for blank lines and whole-line comments.
        self.indents = []
        for line in lines:
            stripped = line.lstrip(" ")
            self.indents.append(len(line) - len(stripped) if stripped and stripped[0] != "#" else -1)

    def next_content(self) -> int | None:
        """Index of the next line that is not blank or a whole-line comment."""
        i, indents = self.i, self.indents
        while i < len(indents):
            if indents[i] >= 0:
                return i
            i += 1
        return None

    def document(self) -> tuple[Any, Lines, int]:
        first = self.next_content()
        if first is None or self.lines[first].startswith(("%", "---", "...")):
            raise _GiveUp
        data = self.mapping(0, ())
        if self.next_content() is not None:
            raise _GiveUp  # a line the mapping could not take
        return data, self.where, first + 1

    def mapping(self, indent: int, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            i = self.next_content()
            if i is None:
                break
            here = self.indents[i]
            if here < indent:
                break
            if here > indent:
                raise _GiveUp
            self.i = i
            key, rest = self.key(self.lines[i], indent)
            if key in out:
                raise _GiveUp  # duplicate: the full reader says so with its line
            self.where[(*loc, key)] = i + 1
            self.i = i + 1
            out[key] = self.value(rest, indent, (*loc, key))
        return out

    def key(self, line: str, indent: int) -> tuple[str, str]:
        match = _KEY.match(line, indent)
        if match is None or _tag(match.group(1)) != _STR:
            raise _GiveUp
        return match.group(1), line[match.end() :]

    def value(self, rest: str, indent: int, loc: Loc) -> Any:
        if rest:
            if rest[0] in "\"'":
                return _quoted(rest)
            if rest[0] in "{[":
                return _flow(rest, loc, self.i, self.where)
            if rest.rstrip(" ") in ("|", "|-"):
                return self.block(indent, rest.rstrip(" ") == "|-")
            return _plain(rest)
        i = self.next_content()
        if i is None:
            return None
        line = self.lines[i]
        here = self.indents[i]
        if here <= indent:
            if line.startswith("-", here):
                raise _GiveUp  # a list written at its key's own indentation
            return None
        if line.startswith("- ", here) or line.rstrip(" ") == " " * here + "-":
            return self.sequence(here, loc)
        return self.mapping(here, loc)

    def sequence(self, indent: int, loc: Loc) -> list[Any]:
        out: list[Any] = []
        while True:
            i = self.next_content()
            if i is None:
                break
            line = self.lines[i]
            here = self.indents[i]
            if here < indent:
                break
            if here > indent or not line.startswith("- ", here):
                raise _GiveUp
            item_loc = (*loc, len(out))
            self.where[item_loc] = i + 1
            rest = line[here + 2 :]
            start = here + 2 + len(rest) - len(rest.lstrip(" "))
            rest = rest.lstrip(" ")
            if _KEY.match(rest):
                # "- key: value" opens a mapping whose keys sit at the first key's column.
                self.lines[i] = " " * start + rest
                self.indents[i] = start
                self.i = i
                out.append(self.mapping(start, item_loc))
            else:
                self.i = i + 1
                out.append(_quoted(rest) if rest[:1] in ('"', "'") else _plain(rest))
        return out

    def block(self, indent: int, strip: bool) -> str:
        """A literal block (``|`` or ``|-``) whose lines are more indented than its key."""
        first = self.i
        if first >= len(self.lines) or not self.lines[first].strip(" "):
            raise _GiveUp  # leading blank lines: their rules are subtle, leave them to libyaml
        line = self.lines[first]
        inner = len(line) - len(line.lstrip(" "))
        if inner <= indent:
            raise _GiveUp
        content: list[str] = []
        i = first
        while i < len(self.lines):
            line = self.lines[i]
            if not line.strip(" "):
                content.append(line[inner:])
            elif line.startswith(" " * inner):
                content.append(line[inner:])
            else:
                break
            i += 1
        if i == len(self.lines) and self.lines[-1]:
            raise _GiveUp  # the file ends inside the block without a line break
        self.i = i
        while content and not content[-1]:
            content.pop()
        if any(not part.strip(" ") and part for part in content):
            raise _GiveUp  # a blank line holding more spaces than the block's indentation
        text = "\n".join(content)
        return text if strip or not text else text + "\n"
