"""Safe YAML reading that remembers the line of every key and list item.

Staff-facing problems must point at the offending line, so documents are
composed into nodes (libyaml when available) and turned into plain Python
values here, recording ``location -> line`` on the way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader with a memo of tag resolution.

    Resolving a plain scalar's tag runs Python regexes for every value; campaign
    files repeat the same keys and short values thousands of times. Safe loaders
    have no path resolvers, so a plain scalar's tag depends only on its value.
    """

    _memo: dict[str, str] = {}

    def resolve(self, kind, value, implicit):  # noqa: ANN001
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        if not implicit[0]:
            return _STR  # quoted or block text is always a string
        tag = self._memo.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= 64 and len(self._memo) < 100_000:
                self._memo[value] = tag
        return tag

    # Safe loaders have no path resolvers: skip the bookkeeping done for every node.
    def descend_resolver(self, current_node, current_index):  # noqa: ANN001
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
    """One YAML file: its data, its campaign-relative name and the line of each location."""

    rel: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    # Unquoted values followed on their line by " #word": YAML reads that as a comment.
    cut_hashtags: dict[Loc, str] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """Line of ``loc``, or of its nearest known ancestor (1 for the document)."""
        loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Loc) -> str:
        return f"{self.rel}:{self.line(loc)}"


class YamlProblem(Exception):
    """The file is not readable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read(path: Path, rel: str) -> Source:
    """Parse ``path`` safely; raise YamlProblem with the line of a syntax error."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except UnicodeDecodeError:
        raise YamlProblem(1, "file is not UTF-8 text") from None
    return parse(text, rel)


def parse(text: str, rel: str) -> Source:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        source = Source(rel, None)
        if node is not None:
            source.lines[()] = node.start_mark.line + 1
            # Only a document holding " #" can have a hashtag cut off as a comment.
            lines = text.splitlines() if " #" in text else []
            source.data = _Builder(loader, source, lines).value(node, ())
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
    def __init__(self, loader: Any, source: Source, text_lines: list[str]) -> None:
        self.loader = loader
        self.source = source
        self.lines = source.lines
        self.text_lines = text_lines

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTIONS:
            # Safe loading: a tag such as !!python/object never builds anything.
            raise yaml.MarkedYAMLError(problem=f"unsupported tag {node.tag!r}", problem_mark=node.start_mark)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.MarkedYAMLError(
                        problem="a key must be a plain value, not a list or mapping",
                        problem_mark=key_node.start_mark,
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.MarkedYAMLError(
                        problem="merge keys (<<) are not supported", problem_mark=key_node.start_mark
                    )
                key = key_node.value if key_node.tag == _STR else self.scalar(key_node)
                key = key if isinstance(key, (str, int)) else str(key)
                if key in out:
                    raise yaml.MarkedYAMLError(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
                child = (*loc, key if isinstance(key, int) else str(key))
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.value(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*loc, index)
                self.lines[child] = item.start_mark.line + 1
                items.append(self.value(item, child))
            return items
        if node.tag == _STR:
            self._check_cut(node, loc)
            return node.value  # the common case, without the constructor's machinery
        return self.scalar(node)

    def _check_cut(self, node: yaml.Node, loc: Loc) -> None:
        if not node.style and node.end_mark.line < len(self.text_lines):
            rest = self.text_lines[node.end_mark.line][node.end_mark.column:]
            match = _CUT_TAG.match(rest)
            if match:
                self.source.cut_hashtags[loc] = match.group(1)

    def scalar(self, node: yaml.Node) -> Any:
        # YAML 1.1 reads an unquoted 10:30 as the base-60 number 630; staff mean a time.
        if node.tag in (_INT, _FLOAT) and ":" in node.value:
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:
            # An impossible date such as 2022-13-01: keep the text, validation reports it.
            return node.value
