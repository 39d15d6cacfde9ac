"""What every benchmark shares: campaign folders, timing wrappers, statistics and the figures table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BANNER = REPO / "posts" / "media" / "banner-3.png"
TAG = "#FreeAndreiandIrina"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--latency", type=float, default=0.2, help="seconds each server adds per request (default 0.2)")
    p.add_argument("--json", type=Path, help="also write the figures rows to this file (run_all uses it)")
    return p


# ---- statistics ----


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank): p99 of 1,000 values is the 990th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass
class Row:
    """One line of the figures table."""

    bench: str
    metric: str
    ours: str
    naive: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    bench: str
    rows: list[Row] = field(default_factory=list)

    def add(
        self, metric: str, ours: str, naive: str = "", goal: str = "", met: bool | None = None, note: str = ""
    ) -> None:
        self.rows.append(Row(self.bench, metric, ours, naive, goal, met, note))

    def emit(self, path: Path | None) -> None:
        print_table(self.rows)
        if path is not None:
            path.write_text(json.dumps([r.__dict__ for r in self.rows], indent=1))


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def print_table(rows: list[Row]) -> None:
    head = ("benchmark", "metric", "ours", "naive loop", "goal", "")
    table = [head] + [(r.bench, r.metric, r.ours, r.naive, r.goal, verdict(r.met)) for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(head))]
    for n, line in enumerate(table):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if r.note:
            print(f"  note ({r.bench}, {r.metric}): {r.note}")


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem / 1024 / 1024:.0f} GB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


# ---- campaign folders ----


def write_campaign(
    root: Path,
    name: str,
    accounts: dict[str, dict[str, Any]],
    posts: dict[str, dict[str, Any]],
    schedules: dict[str, dict[str, Any]],
    reshare: dict[str, Any] | None = None,
) -> Path:
    """A campaign folder in the issue 2 format, with the banner image under posts/media/."""
    if root.exists():
        shutil.rmtree(root)
    (root / "config").mkdir(parents=True)
    (root / "posts" / "media").mkdir(parents=True)
    (root / "schedules").mkdir()
    shutil.copy(BANNER, root / "posts" / "media" / "banner.png")
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    (root / "config" / "accounts.yaml").write_text(dump({"campaign": name, "accounts": accounts}))
    for post_id, body in posts.items():
        (root / "posts" / f"{post_id}.yaml").write_text(dump(body))
    for schedule, body in schedules.items():
        (root / "schedules" / f"{schedule}.yaml").write_text(dump(body))
    if reshare is not None:
        (root / "config" / "reshare.yaml").write_text(dump(reshare))
    return root


def image_post(text: str) -> dict[str, Any]:
    return {"text": text, "media": [{"file": "media/banner.png", "alt": "Banner: Free Andrei and Irina"}]}


def export(accounts: list[Any]) -> dict[str, dict[str, Any]]:
    """accounts.yaml entries for sandbox accounts; their secrets go into this process's environment."""
    entries = {}
    for account in accounts:
        os.environ.update(account.env)
        entries[account.id] = dict(account.entry)
    return entries


# ---- timing the adapter's publish call ----


class Timed:
    """Wraps an adapter: records when each publish call starts and ends; everything else passes through."""

    def __init__(self, adapter: Any, record: Recorder) -> None:
        self._adapter = adapter
        self._record = record

    def publish(self, out: Any, progress: Any = None) -> Any:
        start = time.monotonic()
        self._record.started(out.key, start)
        try:
            receipt = self._adapter.publish(out, progress)
        except Exception:
            self._record.ended(out.key, time.monotonic(), ok=False)
            raise
        self._record.ended(out.key, time.monotonic(), ok=True)
        return receipt

    def stage(self, out: Any, together: Any = ()) -> Any:
        try:
            return self._adapter.stage(out, together)
        finally:
            self._record.stage_ended()

    def credentials_expire_at(self) -> Any:
        try:
            return self._adapter.credentials_expire_at()
        finally:
            self._record.expiry_asked()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


class Recorder:
    """Start and end times (monotonic) of publish calls by publication key; thread-safe."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.ends: dict[str, tuple[float, bool]] = {}
        self.done = threading.Condition()
        self._ok = 0
        self._target: int | None = None
        self.stages = 0  # stage calls ended (staged, refused or failed)
        self.expiry_asks = 0  # token expiry asks ended (the worker's daily look, which refreshes Graph tokens)
        self.before_slot = threading.Condition()

    def stage_ended(self) -> None:
        with self.before_slot:
            self.stages += 1
            self.before_slot.notify_all()

    def expiry_asked(self) -> None:
        with self.before_slot:
            self.expiry_asks += 1
            self.before_slot.notify_all()

    def wait_for_stages(self, count: int, timeout: float) -> bool:
        """Until ``count`` stage calls have ended (each platform's lanes: bot.publishing.staging.lanes)."""
        with self.before_slot:
            return self.before_slot.wait_for(lambda: self.stages >= count, timeout)

    def wait_for_expiry_asks(self, count: int, timeout: float) -> bool:
        """Until ``count`` accounts' token expiry asks have ended."""
        with self.before_slot:
            return self.before_slot.wait_for(lambda: self.expiry_asks >= count, timeout)

    def started(self, key: str, at: float) -> None:
        self.starts.setdefault(key, at)

    def ended(self, key: str, at: float, ok: bool) -> None:
        with self.done:
            if ok and self.ends.get(key, (0.0, False))[1] is False:
                self._ok += 1
            self.ends[key] = (at, ok)
            # Only the waiter's count matters: waking it at every end costs the measured worker CPU.
            if self._target is not None and self._ok >= self._target:
                self.done.notify_all()

    def ok_count(self) -> int:
        with self.done:
            return self._ok

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.done:
            self._target = count
            return self.done.wait_for(lambda: self._ok >= count, timeout)

    def builder(self, media_host: Any = None) -> Any:
        """An AdapterPool build function whose adapters are timed (with the campaign's media host, if any)."""
        from bot.publishing.adapters import build_adapter

        return lambda account: Timed(build_adapter(account, media_host=media_host), self)


def use_recorder(worker: Any, recorder: Recorder) -> None:
    """Point an in-process Worker's publisher at timed adapters (bench only; the product is unchanged)."""
    from bot.mediahost import from_settings
    from bot.publishing.publisher import AdapterPool

    worker.publisher.adapters = AdapterPool(recorder.builder(from_settings(worker.campaign.media_host)))


def quiet_logs() -> None:
    """Product logs as JSON on stderr, warnings and above: thousands of info lines would cost the figures time."""
    from bot.observability import logs

    logs.configure(fmt="json", stream=sys.stderr, level="warning")


def new_database(pg: Any, name: str) -> str:
    """A fresh database on a throwaway PostgreSQL (sandboxes.postgres); its SQLAlchemy URL."""
    return pg.new_database(name)


class AnchoredClock:
    """Campaign time from ``start`` at ``speed``, restarted by ``anchor()`` once the worker is built."""

    def __init__(self, start: Any, speed: float) -> None:
        from bot.core.clock import CompressedClock

        self._clock = CompressedClock(start, speed)
        self.speed = speed

    def anchor(self) -> float:
        """Campaign time is ``start`` again from now; the monotonic time of that instant."""
        self._clock._t0 = time.monotonic()
        return self._clock._t0

    def move_to(self, when: Any) -> None:
        """Campaign time is ``when`` from now on (a worker's scheduler looks at the clock at least every second)."""
        self._clock._t0 = time.monotonic() - (when - self._clock.start).total_seconds() / self.speed

    def wall_at(self, when: Any) -> float:
        """The monotonic time at which campaign time reaches ``when``."""
        return self._clock._t0 + (when - self._clock.start).total_seconds() / self.speed

    def now(self) -> Any:
        return self._clock.now()

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def wall_seconds(self, clock_seconds: float) -> float:
        return self._clock.wall_seconds(clock_seconds)
