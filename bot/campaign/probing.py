"""Media probing for the campaign checks, done in a short-lived child process.

Probing imports Pillow and PyAV (over 20 MB that a process never gives back).
``bot check`` exits right after, but a worker loads the campaign at start and on
every edit and would keep both libraries in its heap for nothing while it idles.
Results are kept per (path, size, mtime), so a reload probes only changed files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from bot import media

Result = media.MediaInfo | str  # what the file is, or why it cannot be read

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from dataclasses import asdict
from bot import media
out = []
for path in json.load(sys.stdin):
    try:
        out.append({"info": asdict(media.probe(path))})
    except media.MediaError as exc:
        out.append({"error": str(exc)})
json.dump(out, sys.stdout)
"""
_REPO = str(Path(__file__).resolve().parents[2])
_known: dict[tuple[str, int, int], Result] = {}


def probe_all(paths: list[Path]) -> dict[Path, Result]:
    """Each distinct path's probe result, the slow ones from one child process."""
    out: dict[Path, Result] = {}
    todo: dict[Path, tuple[str, int, int]] = {}
    for path in dict.fromkeys(paths):
        try:
            stat = os.stat(path)
        except OSError:
            stat = None
        key = (str(path), stat.st_size, stat.st_mtime_ns) if stat else None
        if key is not None and key in _known:
            out[path] = _known[key]
        elif key is not None and stat.st_size > 0 and os.path.isfile(path):
            todo[path] = key
        else:
            out[path] = _here(path)  # missing, empty or not a file: said without any import
    if todo:
        results = _in_child(list(todo)) or [_here(p) for p in todo]
        for (path, key), result in zip(todo.items(), results):
            out[path] = _known[key] = result
    return out


def _here(path: Path) -> Result:
    try:
        return media.probe(path)
    except media.MediaError as exc:
        return str(exc)


def _in_child(paths: list[Path]) -> list[Result] | None:
    """Results in order, or None when the child failed (the caller then probes here)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, _REPO], input=json.dumps([str(p) for p in paths]),
            capture_output=True, text=True, timeout=120, check=True,
        )
        raw = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if len(raw) != len(paths):
        return None
    return [media.MediaInfo(**r["info"]) if "info" in r else r["error"] for r in raw]
