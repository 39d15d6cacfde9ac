"""Safe YAML reading that remembers the line of every key and list item.

Staff-facing problems must point at the offending line, so documents are
composed into nodes by libyaml (PyYAML's ``CSafeLoader``), turned into plain
Python values here, and kept so that the line of any location can be found
when needed. Only the safe loaders are ever used: no tag builds an object.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml composes about five times faster than PyYAML's pure-Python reader; a PyYAML
# built without it (``yaml.__with_libyaml__`` false) still reads every file the same way.
_Loader: type[yaml.CSafeLoader] | type[yaml.SafeLoader] = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

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

    def line(self, loc: Loc) -> int:
        """Line of ``loc`` (a key's line, or a list item's), or of its nearest ancestor in the file."""
        node = self.node
        if node is None:
            return 1
        line: int = node.start_mark.line + 1
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

    def where(self, loc: Loc) -> str:
        return f"{self.rel}:{self.line(loc)}"


class Later(Source):
    """A file whose nodes are not kept: read again only when a problem must be located in it (most never are)."""

    def __init__(
        self, rel: str, path: Path | str, data: Any = None, cut_hashtags: dict[Loc, str] | None = None
    ) -> None:
        super().__init__(rel, data, None, cut_hashtags or {})
        self.path = path
        self._read: Source | None = None

    def line(self, loc: Loc) -> int:
        if self._read is None:
            try:
                self._read = read(self.path, self.rel)
            except (YamlProblem, OSError):  # changed or removed since it was loaded
                return 1
        return self._read.line(loc)


class YamlProblem(Exception):
    """The file is not readable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read(path: Path | str, rel: str) -> Source:
    """Parse ``path`` safely; raise YamlProblem with the line of a syntax error."""
    return parse(decode(read_bytes(path)), rel)


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlProblem(1, "file is not UTF-8 text") from None


def read_bytes(path: Path | str) -> bytes:
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

    def __init__(self, loader: yaml.CSafeLoader | yaml.SafeLoader) -> None:
        self.loader = loader

    def value(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
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

    def scalar(self, node: yaml.ScalarNode) -> Any:
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
    elif isinstance(node, yaml.ScalarNode) and not node.style and node.tag == _STR and node.end_mark.line < len(lines):
        match = _CUT_TAG.match(lines[node.end_mark.line][node.end_mark.column :])
        if match:
            found[loc] = match.group(1)
