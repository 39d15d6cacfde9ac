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
    recorded is never interrupted halfway. Python runs signal handlers on the main thread between
    two bytecodes, so a handler can run late: after a long C call (an SQLite query waiting out a
    lock, a DNS look-up) or a wait that another thread's signal did not interrupt. So the stop does
    not wait for it: ``signal.set_wakeup_fd`` has the interpreter's C-level handler write the signal
    number to a pipe the moment the signal arrives, and a thread reads it and stops (or exits). The
    Python-level handler only keeps the default action (die at once) away. Install it before the
    worker starts any work.
    """

    def __init__(self, worker: Stoppable) -> None:
        self.worker = worker
        self.received = 0
        self._read, self._write = os.pipe()

    def install(self) -> None:
        """Take over SIGTERM and SIGINT and start the relay thread (from the main thread, as Python requires)."""
        os.set_blocking(self._write, False)  # set_wakeup_fd needs it: a signal must never block on a full pipe
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        threading.Thread(target=self._relay, name="signals", daemon=True).start()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Nothing to do here: the relay thread has the signal from the wakeup pipe already."""

    def _relay(self) -> None:
        while True:
            for signum in os.read(self._read, 64):
                if signum in STOP_SIGNALS:
                    self._received(signal.Signals(signum))

    def _received(self, sig: signal.Signals) -> None:
        self.received += 1
        if self.received > 1:
            line = f'{{"event": "worker_killed", "signal": "{sig.name}", "reason": "second signal: exiting without waiting"}}\n'
            os.write(sys.stdout.fileno(), line.encode())
            os._exit(128 + sig)
        # On a thread of its own, so that a second signal is acted on even while the stop is under way.
        threading.Thread(target=self.worker.request_stop, args=(sig.name,), name="stopping", daemon=True).start()
