"""Post files' parsed values, kept by the hash of each file's bytes, so an unchanged file is not parsed again.

The cache lives in ``state/parse-cache.json`` when the campaign folder has a ``state/``
(the worker's; read-only commands create no folder). An entry is found only by the hash
of the exact bytes it was parsed from, so an edited file is always parsed afresh; a
file's lines are not kept, and are found by reading it again only when a problem must
be located in it (``yamlsrc.Later``). The file is JSON, never pickle: nothing in it can
run code. Parsing is what it replaces: values still go through pydantic every time.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from bot.campaign.yamlsrc import Later, Source, decode, parse, read_bytes

CACHE = Path("state") / "parse-cache.json"
# Raise when what a parse gives changes (yamlsrc's rules); PyYAML's version is checked too.
CACHE_VERSION = 1
_STAMP = f"{CACHE_VERSION}/pyyaml-{yaml.__version__}"
# Marks an encoded value that JSON cannot hold as it is (a date, bytes, a mapping with keys that are not text).
_MARK = "\x00"


class ParseCache:
    """Parsed post files by content hash; ``path`` None keeps nothing between runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._old: dict[str, Any] = self._load() if path is not None else {}
        self._new: dict[str, Any] = {}  # what this run read: the next file holds exactly these
        self.hits = 0

    def read(self, path: str, rel: str) -> Source:
        """The file's Source: from the cache when its bytes were parsed before, else parsed (YamlProblem)."""
        raw = read_bytes(path)
        if self.path is None:
            return parse(decode(raw), rel)
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        entry = self._new.get(digest) or self._old.get(digest)
        if entry is not None:
            try:
                data, cut, marked = entry
                cut_hashtags = {tuple(loc): tag for loc, tag in cut}
                value = _decoded(data) if marked else data
            except (TypeError, ValueError, KeyError):
                pass  # a damaged entry: parsed again below, and replaced
            else:
                self.hits += 1
                self._new[digest] = entry
                return Later(rel, path, value, cut_hashtags)
        source = parse(decode(raw), rel)
        try:
            marks: list[str] = []
            data = _encoded(source.data, marks)
            cut = [[list(loc), tag] for loc, tag in source.cut_hashtags.items()]
            # Most posts are text only: JSON gives their values back as they are, with no walk to decode them.
            self._new[digest] = [data, cut, bool(marks)]
        except _Unencodable:
            pass  # a value JSON cannot hold: parsed every time, which is only slower
        return source

    def save(self) -> None:
        """Write this run's entries (entries of files gone or changed drop out) when ``state/`` exists."""
        if self.path is None or not self.path.parent.is_dir():
            return  # no state/ here: `check` and `plan` leave the campaign folder as they found it
        if self._new.keys() == self._old.keys():
            return  # nothing read that was not known, nothing known that was not read
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            partial.write_text(json.dumps({"version": _STAMP, "files": self._new}), encoding="utf-8")
            os.replace(partial, self.path)  # a check running beside the worker never reads half a file
        except OSError:
            partial.unlink(missing_ok=True)  # a read-only campaign folder only means the next run parses again

    def _load(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            found = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or unreadable: parse as if it were not there
        if not isinstance(found, dict) or found.get("version") != _STAMP or not isinstance(found.get("files"), dict):
            return {}
        files: dict[str, Any] = found["files"]
        return files


class _Unencodable(Exception):
    pass


def _encoded(value: Any, marks: list[str]) -> Any:
    """``value`` as JSON can hold it, losslessly (``marks`` gets each kind encoded with a mark); _Unencodable else."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is list:
        return [_encoded(item, marks) for item in value]
    if kind is dict:
        if all(type(key) is str and key != _MARK for key in value):
            return {key: _encoded(item, marks) for key, item in value.items()}
        marks.append("map")
        return {_MARK: ["map", [[_encoded(key, marks), _encoded(item, marks)] for key, item in value.items()]]}
    if kind is _dt.datetime:
        marks.append("datetime")
        return {_MARK: ["datetime", value.isoformat()]}
    if kind is _dt.date:
        marks.append("date")
        return {_MARK: ["date", value.isoformat()]}
    if kind is bytes:
        marks.append("bytes")
        return {_MARK: ["bytes", base64.b64encode(value).decode("ascii")]}
    raise _Unencodable(kind.__name__)


def _decoded(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_decoded(item) for item in value]
    if kind is not dict:
        return value
    if len(value) == 1 and _MARK in value:
        tag, payload = value[_MARK]
        if tag == "map":
            return {_decoded(key): _decoded(item) for key, item in payload}
        if tag == "datetime":
            return _dt.datetime.fromisoformat(payload)
        if tag == "date":
            return _dt.date.fromisoformat(payload)
        return base64.b64decode(payload)
    return {key: _decoded(item) for key, item in value.items()}


def at(root: Path) -> ParseCache:
    """The cache of the campaign in ``root`` (used only if ``root/state`` exists)."""
    return ParseCache(root / CACHE if (root / CACHE.parent).is_dir() else None)
