"""Fault injection for the crash tests; inert unless its environment variable is set.

``BOT_FAULT_EXIT_AFTER_PUBLISH=P`` (0 < P <= 1) makes the worker process exit at once
(``os._exit(86)``, no clean-up, like ``kill -9``) with probability P right after a platform
accepted a post and before the ledger records it: the one gap exactly-once has to survive.
``BOT_FAULT_SEED`` makes the choice repeatable. Production never sets these.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

EXIT_CODE = 86


class _ExitAfterPublish:
    """Wraps an adapter: every call passes through; after a successful publish, maybe die."""

    def __init__(self, adapter: Any, probability: float, rng: random.Random, lock: threading.Lock) -> None:
        self._adapter = adapter
        self._probability = probability
        self._rng = rng
        self._lock = lock

    def publish(self, out: Any, progress: Any = None) -> Any:
        receipt = self._adapter.publish(out, progress)
        with self._lock:
            die = self._rng.random() < self._probability
        if die:
            sys.stdout.write(
                f'{{"event": "fault_injected", "fault": "exit_after_publish", "remote_id": "{receipt.remote_id}"}}\n'
            )
            sys.stdout.flush()
            os._exit(EXIT_CODE)
        return receipt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


def adapter_builder(state_dir: Any = None, media_host: Any = None) -> Callable[[Any], Any] | None:
    """An AdapterPool build function with the fault wrapped in, or None (the pool's default) when off."""
    probability = float(os.environ.get("BOT_FAULT_EXIT_AFTER_PUBLISH") or 0)
    if probability <= 0:
        return None
    from bot.publishing.adapters import build_adapter

    rng = random.Random(os.environ.get("BOT_FAULT_SEED"))
    lock = threading.Lock()
    return lambda account: _ExitAfterPublish(
        build_adapter(account, state_dir=state_dir, media_host=media_host), probability, rng, lock
    )
