"""Watch the campaign's editable folders and ask the worker to reload once the changed files are whole.

Editors, sync tools and ``git pull`` write files in pieces: the first half of a post is valid YAML
on its own. So a changed file is used only when it is whole:

- nobody has it open for writing (asked of the kernel, see ``_open_for_writing``), and
- it arrived by a rename (a new inode: an atomic save, used at once), or its size, inode and
  mtime have not changed for ``settle`` seconds (``BOT_RELOAD_SETTLE``, default 3).

Until then the worker keeps its last good campaign; a slot whose post's file is still settling
uses that version and logs ``post_edit_too_late`` (bot.worker.runtime).
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger()

WATCHED = ("posts", "schedules", "config")

SETTLE = 3.0
"""Seconds a file edited in place must stay unchanged before it is used (``BOT_RELOAD_SETTLE``)."""


def settle_seconds() -> float:
    return float(os.environ.get("BOT_RELOAD_SETTLE") or SETTLE)


Snapshot = tuple[int, int, int] | None  # (inode, size, mtime_ns); None: the file is gone


def _snapshot(path: Path) -> Snapshot:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _open_for_writing(path: Path) -> bool | None:
    """Whether some process has ``path`` open for writing; None when the kernel will not say.

    Linux refuses a read lease (fcntl F_SETLEASE, F_RDLCK) on a file open for writing anywhere
    (EAGAIN); it is taken and dropped at once. A lease needs the file's owner or CAP_LEASE
    (EACCES otherwise) and Linux: then only the settle time applies. While held, a writer opening
    the file would make the kernel signal us: F_SETSIG points that at SIGURG, ignored by default
    (the default SIGIO would end the process).
    """
    if not hasattr(fcntl, "F_SETLEASE"):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


class Settling:
    """Changed files waiting to be whole; ``now`` is a monotonic clock in seconds (injectable for tests)."""

    def __init__(self, root: Path, settle: float, now: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.settle = settle
        self.now = now
        self._known: dict[str, Snapshot] = {}  # snapshot of each file as last used
        self._pending: dict[str, tuple[Snapshot, float]] = {}  # relative path -> (snapshot, since)
        self._lock = threading.Lock()

    def remember(self) -> None:
        """Take the snapshot of every watched file as used now (at start and after each reload)."""
        known: dict[str, Snapshot] = {}
        for name in WATCHED:
            folder = self.root / name
            if folder.is_dir():
                for path in folder.rglob("*"):
                    if path.is_file():
                        known[str(path.relative_to(self.root))] = _snapshot(path)
        with self._lock:
            self._known = known

    def note(self, relative: list[str]) -> None:
        """Files reported changed: each waits until it is whole."""
        at = self.now()
        with self._lock:
            for rel in relative:
                self._pending[rel] = (_snapshot(self.root / rel), at)

    def pending(self) -> set[str]:
        """Files changed and not used yet (a slot whose post is among them fires with the last good version)."""
        with self._lock:
            return set(self._pending)

    def take_ready(self) -> list[str] | None:
        """The changed files when all of them are whole (and forgets them), else None."""
        with self._lock:
            if not self._pending:
                return None
            now = self.now()
            for rel, (seen, since) in list(self._pending.items()):
                current = _snapshot(self.root / rel)
                if current != seen:
                    self._pending[rel] = (current, now)  # still moving: its settle time starts again
                    return None
                if current is None:
                    continue  # deleted: nothing to wait for
                writing = _open_for_writing(self.root / rel)
                if writing:
                    return None
                known = self._known.get(rel)
                renamed = known is None or known[0] != current[0]  # a new inode: written whole elsewhere, renamed here
                if renamed and writing is False:
                    continue
                if now - since < self.settle:
                    return None
            ready = sorted(self._pending)
            for rel, (seen, _) in self._pending.items():
                self._known[rel] = seen
            self._pending.clear()
            return ready


class Watcher:
    """A daemon thread running watchfiles over posts/, schedules/ and config/; calls ``on_change(paths)``
    once the changed files are whole (``Settling``)."""

    def __init__(
        self, root: Path, on_change: Callable[[list[str]], object], debounce_ms: int = 300, settle: float | None = None
    ) -> None:
        self.root = root
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self.settling = Settling(root, settle_seconds() if settle is None else settle)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bot-reload", daemon=True)

    def start(self) -> None:
        self.settling.remember()
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _paths(self) -> list[Path]:
        return [self.root / name for name in WATCHED if (self.root / name).is_dir()]

    def _run(self) -> None:
        import watchfiles  # imported here: only the long-running worker watches

        paths = self._paths()
        if not paths:
            log.warning("reload_disabled", reason="none of posts/, schedules/, config/ exists", root=str(self.root))
            return
        # Wake up often enough to notice a file that has settled, with no event to wake us.
        look_ms = max(50, min(500, int(self.settling.settle * 250)))
        try:
            for changes in watchfiles.watch(
                *paths,
                debounce=self.debounce_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=look_ms,
                yield_on_timeout=True,
                raise_interrupt=False,
            ):
                if changes:
                    self.settling.note(sorted({self._relative(path) for _, path in changes}))
                ready = self.settling.take_ready()
                if ready is None:
                    continue
                try:
                    self.on_change(ready)
                except Exception as exc:  # noqa: BLE001  (the watcher must outlive a failed reload)
                    log.error("reload_failed", changed=ready, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001
            log.error("reload_watcher_stopped", error=f"{type(exc).__name__}: {exc}")

    def _relative(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root.resolve()))
        except ValueError:
            try:
                return str(Path(path).relative_to(self.root))
            except ValueError:
                return path
