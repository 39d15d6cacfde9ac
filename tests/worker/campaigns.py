"""Helpers for worker tests: campaigns written as YAML in a temp dir, and `bot run` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sandboxes.base import SandboxAccount

REPO = Path(__file__).resolve().parents[2]


def write_campaign(
    root: Path,
    accounts: Iterable[SandboxAccount],
    schedules: Mapping[str, Mapping[str, Any]],
    posts: Mapping[str, str] = {},
    queues: Mapping[str, Mapping[str, str]] = {},
) -> Path:
    """Write config/accounts.yaml, posts/ (queues as sub-folders) and schedules/ under ``root``."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "posts").mkdir(exist_ok=True)
    (root / "schedules").mkdir(exist_ok=True)
    dump(root / "config" / "accounts.yaml", {"accounts": {a.id: a.entry for a in accounts}})
    for post_id, text in posts.items():
        dump(root / "posts" / f"{post_id}.yaml", {"text": text})
    for queue, items in queues.items():
        (root / "posts" / queue).mkdir(exist_ok=True)
        for post_id, text in items.items():
            dump(root / "posts" / queue / f"{post_id}.yaml", {"text": text})
    for name, body in schedules.items():
        dump(root / "schedules" / f"{name}.yaml", body)
    return root


def dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def env_for(accounts: Iterable[SandboxAccount], **extra: str) -> dict[str, str]:
    """The process environment a worker needs: credentials of ``accounts`` plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    for account in accounts:
        env.update(account.env)
    env.update({"BOT_LOG_FORMAT": "json", **extra})
    return env


class Workers:
    """Starts ``python -m bot run`` processes and kills any still running when the test ends."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def spawn(self, root: Path, env: Mapping[str, str], log: Path, *args: str, watch: bool = False) -> subprocess.Popen:
        """Start a worker on ``root`` with JSON logs appended to ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "--campaign",
                    str(root),
                    "run",
                    *([] if watch else ["--no-watch"]),
                    *args,
                ],
                cwd=REPO,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_for_event(
    log: Path, event: str, count: int, proc: subprocess.Popen | None = None, timeout: float = 90.0
) -> dict[str, Any] | None:
    """The ``count``-th ``event`` in ``log`` once it is there; None if ``proc`` exited first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events(log) if e["event"] == event] if log.exists() else []
        if len(found) >= count:
            return found[count - 1]
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.05)
    raise AssertionError(f"no {event} number {count} in {log} within {timeout} s")


def events(log: Path) -> list[dict[str, Any]]:
    """Every JSON event line of a log file (other lines, such as tracebacks, are skipped)."""
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
