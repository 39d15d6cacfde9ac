"""The reference AT Protocol network from npm (PLC, PDS, AppView) as processes on 127.0.0.1.

``atproto/start.mjs`` (beside this file) runs the network in one node process; PostgreSQL and a private
redis-server back the AppView. ``start`` returns what start.mjs prints once everything answers:
the URLs of the PLC, the PDS, the AppView and its control endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from sandboxes.postgres import Postgres, free_port

NODE_DIR = Path(__file__).resolve().parent / "atproto"


def _die_with_parent() -> None:
    # redis-server would outlive a test run killed with -9; node already exits when its stdin closes.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class BlueskyNetwork:
    """The node process and, with the AppView, its PostgreSQL cluster and redis-server."""

    def __init__(self, *, appview: bool, rate_limits: bool, blob_limit: int, startup_timeout: float) -> None:
        self.appview = appview
        self.rate_limits = rate_limits
        self.blob_limit = blob_limit
        self.startup_timeout = startup_timeout
        self._pg: Postgres | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._node: subprocess.Popen[str] | None = None

    def start(self, public_url: str) -> dict[str, Any]:
        """Start the network, its PDS announcing ``public_url``; return its URLs. Stops what started on failure."""
        if not (NODE_DIR / "node_modules" / "@atproto" / "dev-env").exists():
            raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run scripts/setup (npm ci)")
        env = {"LOG_ENABLED": "false", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}
        args = ["node", "start.mjs", "--blob-limit", str(self.blob_limit), "--public-url", public_url]
        if self.rate_limits:
            args.append("--rate-limits")
        try:
            if not self.appview:
                args.append("--no-appview")
                self._node = self._spawn(args, env)
            else:
                # Node loads its modules while PostgreSQL and redis start; "go" tells it they answer.
                self._pg = Postgres()
                redis_port = free_port()
                env |= {"DB_POSTGRES_URL": self._pg.plain_url, "REDIS_HOST": f"127.0.0.1:{redis_port}"}
                self._node = self._spawn([*args, "--wait-go"], env)
                self._redis = subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--loglevel",
                        "warning",
                    ],
                    stdout=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
                self._pg.start()
                self._await_redis(redis_port)
                assert self._node.stdin is not None
                self._node.stdin.write("go\n")
                self._node.stdin.flush()
            return self._await_ready()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            args,
            cwd=NODE_DIR,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @staticmethod
    def _await_redis(port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {port}") from None
                time.sleep(0.02)

    def _await_ready(self) -> dict[str, Any]:
        assert self._node is not None and self._node.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._node.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_timeout)
        line = result[0] if result else ""
        if not line.startswith("{"):
            self._node.kill()
            err = self._node.stderr.read()[-2000:] if self._node.stderr else ""
            raise RuntimeError(f"Bluesky sandbox did not start within {self.startup_timeout:.0f}s: {err}")
        # stderr is not read after start-up; drain it so a chatty server never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self._node.stderr], daemon=True).start()  # type: ignore[union-attr]
        return json.loads(line)

    def stop(self) -> None:
        if self._node is not None:
            try:
                if self._node.stdin:
                    self._node.stdin.close()  # start.mjs closes the network when its stdin ends
                self._node.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._node.kill()
                self._node.wait()
            self._node = None
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait()
            self._redis = None
        if self._pg is not None:
            self._pg.stop()
            self._pg = None
