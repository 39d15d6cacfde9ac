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

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = "tag:yaml.org,2002:int"
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
        text = path.read_text(encoding="utf-8")
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
            source.data = _Builder(loader, source, text.splitlines()).value(node, ())
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
                key = self.scalar(key_node)
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
        if not node.style and node.end_mark.line < len(self.text_lines):
            rest = self.text_lines[node.end_mark.line][node.end_mark.column:]
            match = _CUT_TAG.match(rest)
            if match:
                self.source.cut_hashtags[loc] = match.group(1)
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        # YAML 1.1 reads an unquoted 10:30 as the base-60 number 630; staff mean a time.
        if node.tag in (_INT, _FLOAT) and ":" in node.value:
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:
            # An impossible date such as 2022-13-01: keep the text, validation reports it.
            return node.value
