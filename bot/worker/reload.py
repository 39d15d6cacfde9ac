"""Watch the campaign's editable folders and ask the worker to reload when staff change a file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger()

WATCHED = ("posts", "schedules", "config")


class Watcher:
    """A daemon thread running watchfiles over posts/, schedules/ and config/; calls ``on_change(paths)``.

    Editors save in bursts (temp file, rename, chmod), so changes are debounced into one reload.
    """

    def __init__(self, root: Path, on_change: Callable[[list[str]], object], debounce_ms: int = 300) -> None:
        self.root = root
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bot-reload", daemon=True)

    def start(self) -> None:
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
        try:
            for changes in watchfiles.watch(
                *paths,
                debounce=self.debounce_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=500,
                raise_interrupt=False,
            ):
                changed = sorted({self._relative(path) for _, path in changes})
                try:
                    self.on_change(changed)
                except Exception as exc:  # noqa: BLE001  (the watcher must outlive a failed reload)
                    log.error("reload_failed", changed=changed, error=f"{type(exc).__name__}: {exc}")
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
