"""Safe YAML reading that remembers the line of every key and list item.

Staff-facing problems must point at the offending line, so documents are
composed into nodes (libyaml when available), turned into plain Python values
here, and kept so that the line of any location can be found when needed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.campaign import fastyaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader with a memo of tag resolution.

    Resolving a plain scalar's tag runs Python regexes for every value; campaign
    files repeat the same keys and short values thousands of times. Safe loaders
    have no path resolvers, so a plain scalar's tag depends only on its value.
    """

    _memo: dict[str, str] = {}

    def resolve(self, kind, value, implicit):
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        if not implicit[0]:
            return _STR  # quoted or block text is always a string
        tag = self._memo.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            # Bounded: the memo lives as long as the process (a worker's whole life).
            if len(value) <= 32 and len(self._memo) < 10_000:
                self._memo[value] = tag
        return tag

    # Safe loaders have no path resolvers: skip the bookkeeping done for every node.
    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass


_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
_CUT_TAG = re.compile(r"^\s+(#\w+)")
_COLLECTIONS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

Loc = tuple[str | int, ...]


@dataclass
class Source:
    """One YAML file: its data, its campaign-relative name, and its nodes for finding lines."""

    rel: str
    data: Any
    node: yaml.Node | None = None
    # Unquoted values followed on their line by " #word": YAML reads that as a comment.
    cut_hashtags: dict[Loc, str] = field(default_factory=dict)
    # From the fast reader instead of nodes: the line of each key and item, and the document's.
    lines: dict[Loc, int] | None = None
    first: int = 1

    def line(self, loc: Loc) -> int:
        """Line of ``loc`` (a key's line, or a list item's), or of its nearest ancestor in the file.

        Lines are looked up in the nodes only when a problem is reported, so
        files without problems (nearly all of them) cost nothing here.
        """
        node = self.node
        if node is None:
            return self._mapped(loc) if self.lines is not None else 1
        line = node.start_mark.line + 1
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == str(part):
                        child, line = value_node, key_node.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def _mapped(self, loc: Loc) -> int:
        line = self.first
        for end in range(1, len(loc) + 1):
            found = self.lines.get(loc[:end])
            if found is None:
                break
            line = found
        return line

    def where(self, loc: Loc) -> str:
        return f"{self.rel}:{self.line(loc)}"


class Later(Source):
    """A file read again only when a problem must be located in it (most never are)."""

    def __init__(self, rel: str, path: Path | str) -> None:
        super().__init__(rel, None)
        self.path = path
        self._read: Source | None = None

    def line(self, loc: Loc) -> int:
        if self._read is None:
            try:
                self._read = read(self.path, self.rel, fast=True)
            except (YamlProblem, OSError):  # changed or removed since it was loaded
                return 1
        return self._read.line(loc)


class YamlProblem(Exception):
    """The file is not readable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read(path: Path | str, rel: str, fast: bool = False) -> Source:
    """Parse ``path`` safely; raise YamlProblem with the line of a syntax error.

    With ``fast``, files of the plain shape most posts have skip libyaml (see fastyaml).
    """
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise YamlProblem(1, "file is not UTF-8 text") from None
    if fast:
        found = fastyaml.parse(text)
        if found is not None:
            return Source(rel, found[0], lines=found[1], first=found[2])
    return parse(text, rel)


def _read_bytes(path: Path | str) -> bytes:
    # os.read takes three system calls where open().read() takes nine: a third of the time for small files.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def parse(text: str, rel: str) -> Source:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        source = Source(rel, None, node)
        if node is not None:
            source.data = _Builder(loader).value(node)
            # Only a document holding " #" can have a hashtag cut off as a comment.
            if " #" in text:
                _find_cut_hashtags(node, (), text.splitlines(), source.cut_hashtags)
        return source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"YAML syntax error: {exc}") from None
    finally:
        loader.dispose()


class _Builder:
    """Nodes to plain values; refuses what safe, unambiguous campaign files never need."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def value(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value  # the common case, without the constructor's machinery
            return self.scalar(node)
        if node.tag not in _COLLECTIONS:
            # Safe loading: a tag such as !!python/object never builds anything.
            raise yaml.MarkedYAMLError(problem=f"unsupported tag {node.tag!r}", problem_mark=node.start_mark)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item) for item in node.value]
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(
                    problem="a key must be a plain value, not a list or mapping", problem_mark=key_node.start_mark
                )
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.MarkedYAMLError(
                    problem="merge keys (<<) are not supported", problem_mark=key_node.start_mark
                )
            key = key_node.value if key_node.tag == _STR else self.scalar(key_node)
            key = key if isinstance(key, (str, int)) else str(key)
            if key in out:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            out[key] = self.value(value_node)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        # YAML 1.1 reads an unquoted 10:30 as the base-60 number 630; staff mean a time.
        if node.tag in (_INT, _FLOAT) and ":" in node.value:
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:
            # An impossible date such as 2022-13-01: keep the text, validation reports it.
            return node.value


def _find_cut_hashtags(node: yaml.Node, loc: Loc, lines: list[str], found: dict[Loc, str]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _find_cut_hashtags(value_node, (*loc, str(key_node.value)), lines, found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_cut_hashtags(item, (*loc, index), lines, found)
    elif not node.style and node.tag == _STR and node.end_mark.line < len(lines):
        match = _CUT_TAG.match(lines[node.end_mark.line][node.end_mark.column :])
        if match:
            found[loc] = match.group(1)
