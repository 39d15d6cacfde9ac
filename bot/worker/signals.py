"""SIGTERM and SIGINT for the worker process: the first asks for a warm stop, the second exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Protocol

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stoppable(Protocol):
    def request_stop(self, why: str) -> None:
        """Warm stop: no new work; what is in flight finishes and is recorded."""


class Signals:
    """Turns the first stop signal into ``worker.request_stop(<signal name>)``; a second one exits the process.

    No exception is raised into whatever the main thread is doing, so a publication being
    recorded is never interrupted halfway. The handler takes no lock (the main thread may hold
    the logger's or an Event's when the signal lands): it writes to a pipe, and a thread does
    the stopping. Install it before the worker starts any work, so no signal finds the default
    handler (which would end the process without recording what is in flight).
    """

    def __init__(self, worker: Stoppable) -> None:
        self.worker = worker
        self.received = 0
        self._read, self._write = os.pipe()

    def install(self) -> None:
        """Start the relay thread and take over SIGTERM and SIGINT (from the main thread only, as Python requires)."""
        threading.Thread(target=self._relay, name="signals", daemon=True).start()
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.received > 1:
            name = signal.Signals(signum).name
            line = f'{{"event": "worker_killed", "signal": "{name}", "reason": "second signal: exiting without waiting"}}\n'
            os.write(sys.stdout.fileno(), line.encode())
            os._exit(128 + signum)
        os.write(self._write, bytes([signum]))

    def _relay(self) -> None:
        signum = os.read(self._read, 1)[0]
        self.worker.request_stop(signal.Signals(signum).name)
