"""Media uploaded for a publication not posted yet, remembered so a retry after a crash reuses it.

Why reuse rather than delete: ``DELETE /api/v1/media/:id`` exists only on recent Mastodon and
not on every Mastodon-API server, and an orphan's id is only known if it was written down
anyway; reusing needs nothing but ``GET /api/v1/media/:id``, which every family answers (and
Mastodon answers 404 once the media is attached), and spares a second upload against the
stricter media rate limit. One small JSON file per publication key under
``<campaign>/state/mastodon-uploads/``: only the worker holding the publication's claim writes
it, so no two processes write one file; it is removed once the status is posted or refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path

from bot.core.values import ImageAttachment, VideoAttachment


def fingerprint(item: ImageAttachment | VideoAttachment) -> str:
    """The same file with the same alt text: an earlier upload of it can stand in for a new one."""
    stat = item.path.stat()
    alt = hashlib.sha256(item.alt.encode()).hexdigest()[:16]
    return f"{item.path.name}:{stat.st_size}:{stat.st_mtime_ns}:{alt}"


class UploadMemo:
    """Publication key -> {fingerprint: media id}; in memory when there is no state folder."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.json"

    def recall(self, key: str) -> dict[str, str]:
        path = self._path(key)
        if path is None:
            with self._lock:
                return dict(self._memory.get(key, {}))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none, or damaged by a crash mid-write: upload again
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remember(self, key: str, print_: str, media_id: str) -> None:
        path = self._path(key)
        if path is None:
            with self._lock:
                self._memory.setdefault(key, {})[print_] = media_id
            return
        known = self.recall(key)
        known[print_] = media_id
        path.parent.mkdir(parents=True, exist_ok=True)
        spare = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        spare.write_text(json.dumps(known, sort_keys=True), encoding="utf-8")
        os.replace(spare, path)  # a crash leaves the old file or the new one, never half of one

    def forget(self, key: str) -> None:
        path = self._path(key)
        if path is None:
            with self._lock:
                self._memory.pop(key, None)
            return
        path.unlink(missing_ok=True)
