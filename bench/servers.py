"""The platform sandboxes of the tests, hosted in a separate process for benchmarks.

Why another process: the sandboxes are Python servers. In the benchmark's own process
they would share its GIL with the worker under test and charge their CPU time to the
figures; a real platform runs on someone else's machines. A ``multiprocessing`` manager
(over a Unix socket) hosts them and hands back proxies; every HTTP request still goes
over loopback TCP to the ordinary sandbox classes with their per-request ``latency``.
"""

from __future__ import annotations

from multiprocessing.managers import BaseManager
from typing import Any

from sandboxes.base import SandboxAccount, ServerPost


class Host:
    """One started sandbox; methods (not properties) so a manager proxy can call them."""

    def __init__(self, platform: str, latency: float, options: dict[str, Any] | None = None) -> None:
        from sandboxes import sandbox_class

        if platform == "x":
            # The benchmarks measure the bot, not X: hundreds of accounts posting within minutes would
            # meet X's published per-user and per-app limits. A benchmark may pass rate_limits=True.
            options = {"rate_limits": False, **(options or {})}
        self.sandbox = sandbox_class(platform)(latency=latency, **(options or {}))
        self.sandbox.start()

    def base_url(self) -> str:
        return self.sandbox.base_url

    def create_accounts(self, names: list[str]) -> list[SandboxAccount]:
        """Many accounts in one call (one round trip to this process, not one per account)."""
        return [self.sandbox.create_account(name) for name in names]

    def create_account(self, name: str) -> SandboxAccount:
        return self.sandbox.create_account(name)

    def post_as(self, account: SandboxAccount, text: str) -> str:
        remote_id = self.sandbox.post_as(account, text)
        self.sandbox.index()
        return remote_id

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        return self.sandbox.posts(account)

    def post_count(self) -> int:
        return len(self.sandbox.posts())

    def requests(self) -> list[dict[str, Any]]:
        return self.sandbox.requests()

    def request_summary(self) -> dict[str, Any]:
        """Counts by status and the time of each POST that created a post (for throughput)."""
        log = self.sandbox.requests()
        by_status: dict[str, int] = {}
        for entry in log:
            key = str(entry.get("status"))
            by_status[key] = by_status.get(key, 0) + 1
        return {"total": len(log), "by_status": by_status}

    def stop(self) -> None:
        self.sandbox.stop()


class Servers(BaseManager):
    """``with Servers() as servers: x = servers.Host("x", 0.2)``."""


Servers.register("Host", Host)


def start_servers() -> Servers:
    """Start the hosting process; call before the benchmark starts any thread of its own (it forks)."""
    manager = Servers()
    manager.start()
    return manager


def cpu_seconds(servers: Servers) -> float:
    """CPU time the hosting process (every sandbox in it) has used so far."""
    import os
    from pathlib import Path

    fields = Path(f"/proc/{servers._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
