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
from pathlib import Path

from bot import media

Result = media.MediaInfo | str  # what the file is, or why it cannot be read

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from dataclasses import asdict
from bot import media
import PIL.Image, av  # while the parent still reads YAML
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


class Prober:
    """Probes a campaign's files; ``warm`` starts the child early, so its imports overlap the loading."""

    def __init__(self) -> None:
        self._child: subprocess.Popen | None = None

    def warm(self) -> None:
        if self._child is None:
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, _REPO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, text=True,
                )
            except OSError:
                self._child = None

    def probe_all(self, paths: list[Path]) -> dict[Path, Result]:
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
            self.warm()
            results = self._ask(list(todo)) or [_here(p) for p in todo]
            for (path, key), result in zip(todo.items(), results):
                out[path] = _known[key] = result
        self.close()
        return out

    def close(self) -> None:
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            self._child = None

    def _ask(self, paths: list[Path]) -> list[Result] | None:
        """Results in order, or None when the child failed (the caller then probes here)."""
        if self._child is None:
            return None
        try:
            stdout, _ = self._child.communicate(json.dumps([str(p) for p in paths]), timeout=120)
            raw = json.loads(stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        if self._child.returncode != 0 or len(raw) != len(paths):
            return None
        return [media.MediaInfo(**r["info"]) if "info" in r else r["error"] for r in raw]


def _here(path: Path) -> Result:
    try:
        return media.probe(path)
    except media.MediaError as exc:
        return str(exc)
