"""Media probing for the campaign checks, done in a short-lived child process.

Probing imports Pillow and PyAV (over 20 MB that a process never gives back).
``bot check`` exits right after, but a worker loads the campaign at start and on
every edit and would keep both libraries in its heap for nothing while it idles.
Results are kept per (path, size, mtime), so a reload probes only changed files, and
written to ``state/media-probes.json`` when the campaign folder has a ``state/`` (the
worker's; read-only commands create no folder): a worker restarting, or a check run where
a worker ran, whose media files are all known starts no child at all.
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


CACHE = Path("state") / "media-probes.json"
CACHE_VERSION = 1


class Prober:
    """Probes a campaign's files; ``warm`` starts the child early, so its imports overlap the loading.

    ``cache``: a file of earlier results (``CACHE`` under the campaign folder), read at the first
    ``warm`` and written when new files were probed. While it exists, ``warm`` waits: the files
    may all be known, and the child then never starts.
    """

    def __init__(self, cache: Path | None = None) -> None:
        self._child: subprocess.Popen[str] | None = None
        self._cache = cache
        self._cache_read = False
        self._cached = 0  # results the cache file held
        self.children = 0  # child processes started (a check with every file known starts none)

    def warm(self) -> None:
        if self._read_cache():
            return
        self._start()

    def _start(self) -> None:
        if self._child is None:
            self.children += 1
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, _REPO],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            except OSError:
                self._child = None

    def probe_all(self, paths: list[Path]) -> dict[Path, Result]:
        """Each distinct path's probe result, the slow ones from one child process."""
        self._read_cache()
        out: dict[Path, Result] = {}
        todo: dict[Path, tuple[str, int, int]] = {}
        keys = []
        for path in dict.fromkeys(paths):
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
            key = (str(path), stat.st_size, stat.st_mtime_ns) if stat else None
            if key is not None:
                keys.append(key)
            if key is not None and key in _known:
                out[path] = _known[key]
            elif key is not None and key[1] > 0 and os.path.isfile(path):
                todo[path] = key
            else:
                out[path] = _here(path)  # missing, empty or not a file: said without any import
        if todo:
            self._start()
            results = self._ask(list(todo)) or [_here(p) for p in todo]
            for (path, key), result in zip(todo.items(), results):
                out[path] = _known[key] = result
            self._write_cache(keys)
        self.close()
        return out

    def _read_cache(self) -> bool:
        """Load the cache file into the known results once; whether it held any."""
        if self._cache is None:
            return False
        if not self._cache_read:
            self._cache_read = True
            try:
                data = json.loads(self._cache.read_text(encoding="utf-8"))
                if data.get("version") == CACHE_VERSION:
                    for path, size, mtime, result in data["files"]:
                        _known[(path, size, mtime)] = (
                            media.MediaInfo(**result["info"]) if "info" in result else result["error"]
                        )
                        self._cached += 1
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                pass  # missing or unreadable: probe as if it were not there
        return self._cached > 0

    def _write_cache(self, keys: list[tuple[str, int, int]]) -> None:
        """Keep the results of this campaign's files (``keys``): a file gone or changed drops out."""
        if self._cache is None:
            return
        files = [
            [path, size, mtime, {"info": asdict(r)} if isinstance(r, media.MediaInfo) else {"error": r}]
            for path, size, mtime in keys
            if isinstance(r := _known.get((path, size, mtime)), (media.MediaInfo, str))
        ]
        partial = self._cache.with_name(self._cache.name + ".tmp")
        if not self._cache.parent.is_dir():
            return  # no state/ here: `check` and `plan` leave the campaign folder as they found it
        try:
            partial.write_text(json.dumps({"version": CACHE_VERSION, "files": files}), encoding="utf-8")
            os.replace(partial, self._cache)  # a check running beside the worker never reads half a file
        except OSError:
            pass  # a read-only campaign folder only means the next check probes again

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
