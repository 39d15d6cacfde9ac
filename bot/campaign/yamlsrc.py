"""Safe YAML reading that remembers the line of every key and list item.

Staff-facing problems must point at the offending line, so documents are
composed into nodes by libyaml (PyYAML's ``CSafeLoader``), turned into plain
Python values here, and kept so that the line of any location can be found
when needed. Only the safe loaders are ever used: no tag builds an object.

A hostile file costs little (issue 13): a file over ``MAX_BYTES`` is refused before it is read,
anchors and aliases are refused before anything is built (an alias bomb of a few hundred bytes
expands to billions of values), nesting deeper than ``MAX_DEPTH`` and a second document are
problems with their line. ``bot check`` and the worker's reloads read through here alike.
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

MAX_BYTES = 256 * 1024
"""Largest campaign YAML file read: posts and settings are a few kilobytes, a schedule of 1,000 slots about
90 KB. The worst file under it (130,000 one-character items) takes about 0.8 s and 55 MB to read; at 1 MB,
3.5 s and 200 MB."""
MAX_DEPTH = 20
"""Deepest nesting read: campaign files need about 5 levels (accounts, an account, its options, a list)."""

_ALIASES = (
    "anchors and aliases (&name, *name) are not supported in campaign files (they are not needed there: "
    "write each value out in full, and put a text that starts with & or * in quotes)"
)
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep (campaign files need about 5; check the indentation)"
_SECOND_DOCUMENT = (
    "a second YAML document starts here (a campaign file holds one: remove this --- "
    "or move what follows to a file of its own)"
)


@dataclass
class Source:
    """One YAML file: its data, its campaign-relative name, and its nodes for finding lines."""

    rel: str
    data: Any
    node: yaml.Node | None = None
    # Unquoted values followed on their line by " #word": YAML reads that as a comment.
    cut_hashtags: dict[Loc, str] = field(default_factory=dict)
    _index: dict[int, dict[str, tuple[int, yaml.Node]]] = field(default_factory=dict, repr=False, compare=False)

    def line(self, loc: Loc) -> int:
        """Line of ``loc`` (a key's line, or a list item's), or of its nearest ancestor in the file."""
        node = self.node
        if node is None:
            return 1
        line: int = node.start_mark.line + 1
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode) and len(node.value) > 16:
                found = self._keys(node).get(str(part))
                if found is not None:
                    line, child = found
            elif isinstance(node, yaml.MappingNode):
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

    def _keys(self, node: yaml.MappingNode) -> dict[str, tuple[int, yaml.Node]]:
        """The mapping's keys to their line and value, indexed once: a file with 60,000 wrong keys
        would otherwise cost 60,000 scans of 60,000 keys to locate its problems."""
        index = self._index.get(id(node))
        if index is None:  # first key wins, as in a scan (duplicates are refused when reading anyway)
            index = self._index[id(node)] = {str(k.value): (k.start_mark.line + 1, v) for k, v in reversed(node.value)}
        return index


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
    """The file's bytes; YamlProblem when it holds more than ``MAX_BYTES`` (then it is never read whole)."""
    # os.read takes three system calls where open().read() takes nine: a third of the time for small files.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        total = len(chunks[0])
        while len(chunks[-1]) == 1 << 16:
            if total > MAX_BYTES:  # stop here: a 50 MB file costs 5 reads, not 50 MB
                raise YamlProblem(1, _too_big(max(total, os.fstat(fd).st_size)))
            chunks.append(os.read(fd, 1 << 16))
            total += len(chunks[-1])
    finally:
        os.close(fd)
    if total > MAX_BYTES:
        raise YamlProblem(1, _too_big(total))
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def _too_big(size: int) -> str:
    return (
        f"the file is {size:,} bytes, over the limit of {MAX_BYTES:,} "
        "(a post or settings file is a few kilobytes; split a long schedule into several files)"
    )


def parse(text: str, rel: str) -> Source:
    """``text`` as a Source; YamlProblem with a line for a syntax error or a limit passed."""
    # Only a document holding & or * can have an anchor or an alias: most files skip this second pass.
    if "&" in text or "*" in text:
        _refuse_anchors(text)
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
        raise _problem(exc) from None
    except yaml.YAMLError as exc:
        raise _unmarked(exc, text) from None
    except RecursionError:
        # PyYAML without libyaml composes recursively: Python's stack ends before libyaml's depth limit would.
        raise YamlProblem(getattr(loader, "line", 0) + 1, _TOO_DEEP) from None
    finally:
        loader.dispose()


def _problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    if exc.context == "expected a single document in the stream":
        return YamlProblem(line, _SECOND_DOCUMENT)
    if exc.problem and "maximum nesting depth" in exc.problem:  # libyaml's own limit (1,000 levels)
        return YamlProblem(line, _TOO_DEEP)
    return YamlProblem(line, f"YAML syntax error: {exc.problem or exc.context}")


def _refuse_anchors(text: str) -> None:
    """YamlProblem at the first anchor or alias, found in the event stream before any node is composed."""
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark if event is not None else None
                raise YamlProblem(mark.line + 1 if mark else 1, _ALIASES)
    except yaml.MarkedYAMLError as exc:
        raise _problem(exc) from None
    except yaml.YAMLError as exc:
        raise _unmarked(exc, text) from None
    finally:
        loader.dispose()


def _unmarked(exc: yaml.YAMLError, text: str) -> YamlProblem:
    """A problem without a mark: the reader's refusal of a character (a NUL, a lone surrogate), located by position."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        return YamlProblem(line, f"YAML syntax error: the character U+{char:04X} is not allowed ({exc.reason})")
    return YamlProblem(1, f"YAML syntax error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


class _Builder:
    """Nodes to plain values; refuses what safe, unambiguous campaign files never need."""

    def __init__(self, loader: yaml.CSafeLoader | yaml.SafeLoader) -> None:
        self.loader = loader

    def value(self, node: yaml.Node, depth: int = 1) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            return self.scalar(node)
        if node.tag not in _COLLECTIONS:
            # Safe loading: a tag such as !!python/object never builds anything.
            raise yaml.MarkedYAMLError(problem=f"unsupported tag {node.tag!r}", problem_mark=node.start_mark)
        if depth > MAX_DEPTH:
            raise YamlProblem(node.start_mark.line + 1, _TOO_DEEP)
        depth += 1
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, depth) for item in node.value]
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
            out[key] = self.value(value_node, depth)
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
