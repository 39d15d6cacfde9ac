"""Reshare latency: from a supporter's tagged post appearing on the server to the bot's reshare request.

Run: ``.venv/bin/python bench/reshare_latency.py [--posts 20] [--interval 5] [--platforms x,mastodon,bluesky]``.
One campaign account per platform tracks #FreeAndreiandIrina through the worker's own tracking
(``Worker.start_tracking``), with ``interval`` seconds between polls for X; Mastodon streams
(hashtag SSE) and Bluesky streams (the PDS's repository firehose, ``com.atproto.sync.subscribeRepos``),
their polls only the safety net. Bluesky is then measured a second time with its stream switched
off (``options: {streaming: false}``), so its stream and polling figures print side by side. Supporters (a new author each time, so no cooldown
applies) post every ``--gap`` seconds on every platform; the latency is from ``post_as``
returning (the post is on the server and indexed) to the adapter's ``reshare`` call starting
(a timing wrapper). The naive baseline polls every platform one after another with the same
interval and reshares what it found, in this process.
Goal: p95 at or under 1 s with streaming; at or under interval + 1 s with polling.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import TAG, Recorder, Report, export, machine, parser, pct, quiet_logs, write_campaign
from servers import start_servers

TAGS = ["FreeAndreiandIrina"]


class ReshareTimes(Recorder):
    """Start times of reshare calls, by the remote id of the reshared post."""

    def builder(self) -> Any:
        from bot.publishing.adapters import build_adapter

        return lambda account: _TimedReshare(build_adapter(account), self)


class _TimedReshare:
    def __init__(self, adapter: Any, record: ReshareTimes) -> None:
        self._adapter = adapter
        self._record = record

    def reshare(self, mention: Any) -> Any:
        self._record.started(mention.remote_id, time.monotonic())
        return self._adapter.reshare(mention)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


STREAMING = {"mastodon", "bluesky"}  # platforms the worker follows in real time


def campaign_for(root: Path, accounts: list, interval: float, *, polling: bool = False) -> Path:
    entries = export(accounts)
    if polling:  # streams off: the tracker polls every ``interval`` seconds
        for entry in entries.values():
            entry["options"] = {**(entry.get("options") or {}), "streaming": False}
    far = {"timezone": "UTC", "slots": [{"at": "2100-01-12T09:00", "post": "launch", "accounts": list(entries)}]}
    reshare = {
        "track": [{"hashtags": TAGS, "accounts": list(entries), "interval": interval}],
        "policy": {
            "always_from": [],
            "never_from": [],
            "blocked_words": ["traitors"],
            "skip": ["replies", "reshares", "own", "sensitive"],
            "max_per_hour": 3600,
            "max_per_day": 20000,
            "author_cooldown": "1m",
            "mode": "auto",
        },
    }
    posts = {"launch": {"text": f"Free Andrei and Irina. {TAG}"}}
    return write_campaign(root, "reshare-latency", entries, posts, {"later": far}, reshare)


def supporters_post(hosts: dict, authors: dict, count: int, gap: float, label: str) -> dict[str, float]:
    """Every ``gap`` seconds a new supporter posts on every platform; remote id -> when it was on the server."""
    appeared: dict[str, float] = {}
    for i in range(count):
        t0 = time.monotonic()
        for platform, host in hosts.items():
            remote_id = host.post_as(authors[platform][i], f"{label} {i}: journalism is not a crime. #{TAGS[0]}")
            appeared[remote_id] = time.monotonic()
        time.sleep(max(0.0, gap - (time.monotonic() - t0)))
    return appeared


def run_worker(root: Path, hosts: dict, authors: dict, count: int, gap: float, settle: float) -> tuple[dict, dict]:
    from bot.core.clock import SystemClock
    from bot.ledger.db import default_url
    from bot.publishing.publisher import AdapterPool
    from bot.worker.runtime import Worker

    worker = Worker(root, clock=SystemClock(), database_url=default_url(root), heartbeat=3600, sweep=3600)
    times = ReshareTimes()
    worker.publisher.adapters = AdapterPool(times.builder())
    worker.warm_up()
    worker.start()
    worker.start_tracking()
    serving = threading.Thread(target=worker.serve, daemon=True)
    serving.start()
    time.sleep(3)  # the first poll reads the (empty) tag, streams connect
    appeared = supporters_post(hosts, authors, count, gap, "Supporter")
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and len(set(appeared) & set(times.starts)) < len(appeared):
        time.sleep(0.2)
    worker.request_stop("benchmark done")
    serving.join(timeout=30)
    worker.close()
    return appeared, dict(times.starts)


def run_naive(root: Path, hosts: dict, authors: dict, count: int, gap: float, interval: float) -> tuple[dict, dict]:
    """Poll each platform in turn every ``interval`` seconds; reshare each new post found, one by one."""
    from bot.campaign import load
    from bot.publishing.adapters import build_adapter

    campaign = load(root)
    adapters = {a.platform: build_adapter(a) for a in campaign.accounts.values()}
    cursors: dict[str, Any] = {}
    started: dict[str, float] = {}
    stop = threading.Event()

    def loop() -> None:
        # The first pass only sets the cursors: a naive bot does not reshare the whole history either.
        first = True
        while not stop.is_set():
            for platform, adapter in adapters.items():
                page = adapter.fetch_mentions(TAGS, cursors.get(platform))
                cursors[platform] = page.cursor or cursors.get(platform)
                for mention in page.mentions if not first else []:
                    if "Naive" in mention.text and mention.remote_id not in started:
                        started[mention.remote_id] = time.monotonic()
                        adapter.reshare(mention)
            first = False
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(3)
    appeared = supporters_post(hosts, authors, count, gap, "Naive")
    deadline = time.monotonic() + interval * 3 + 10
    while time.monotonic() < deadline and len(set(appeared) & set(started)) < len(appeared):
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=30)
    return appeared, started


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=20, help="supporter posts per platform (default 20)")
    p.add_argument("--gap", type=float, default=2.5, help="seconds between supporter posts (default 2.5)")
    p.add_argument("--interval", type=float, default=5.0, help="poll interval for X and Bluesky (default 5 s)")
    p.add_argument("--platforms", default="x,mastodon,bluesky")
    args = p.parse_args()
    servers = start_servers()
    quiet_logs()
    print(f"machine: {machine()}")
    report = Report("reshare")
    platforms = [s.strip() for s in args.platforms.split(",") if s.strip()]
    try:
        hosts = {platform: servers.Host(platform, args.latency) for platform in platforms}
        campaign_accounts = [hosts[p].create_account(f"campaign_{p}") for p in platforms]
        authors = {p: hosts[p].create_accounts([f"fan{i:03d}" for i in range(2 * args.posts)]) for p in platforms}
        ours_authors = {p: a[: args.posts] for p, a in authors.items()}
        naive_authors = {p: a[args.posts :] for p, a in authors.items()}
        polled: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory(prefix="bench-reshare-") as tmp:
            root = campaign_for(Path(tmp) / "campaign", campaign_accounts, args.interval)
            appeared, started = run_worker(root, hosts, ours_authors, args.posts, args.gap, args.interval * 2 + 10)
            n_appeared, n_started = run_naive(root, hosts, naive_authors, args.posts, args.gap, args.interval)
            if "bluesky" in platforms:  # the same worker with Bluesky's stream off: the polling figure
                k = platforms.index("bluesky")
                poll_root = campaign_for(Path(tmp) / "polling", [campaign_accounts[k]], args.interval, polling=True)
                poll_authors = {"bluesky": hosts["bluesky"].create_accounts([f"pol{i:03d}" for i in range(args.posts)])}
                p_appeared, p_started = run_worker(
                    poll_root, {"bluesky": hosts["bluesky"]}, poll_authors, args.posts, args.gap, args.interval * 2 + 10
                )
                polled["bluesky"] = [p_started[r] - p_appeared[r] for r in p_appeared if r in p_started]
        # Remote ids are per platform; the posting order says which platform each belongs to.
        order = list(appeared)
        n_order = list(n_appeared)
        for k, platform in enumerate(platforms):
            mine = order[k :: len(platforms)]
            naive_mine = n_order[k :: len(platforms)]
            lat = [started[r] - appeared[r] for r in mine if r in started]
            naive_lat = [n_started[r] - n_appeared[r] for r in naive_mine if r in n_started]
            streaming = platform in STREAMING
            goal = 1.0 if streaming else args.interval + 1.0
            how = "stream" if streaming else f"polling every {args.interval:g} s"
            met = bool(lat) and len(lat) == len(mine) and pct(lat, 95) <= goal
            report.add(f"{platform} ({how}): median", f"{pct(lat, 50):.2f} s", f"{pct(naive_lat, 50):.2f} s")
            report.add(
                f"{platform} ({how}): p95",
                f"{pct(lat, 95):.2f} s",
                f"{pct(naive_lat, 95):.2f} s",
                f"<= {goal:g} s",
                met,
                note="" if len(lat) == len(mine) else f"reshared {len(lat)} of {len(mine)}",
            )
            if platform in polled:
                p_lat = polled[platform]
                report.add(
                    f"{platform} (polling every {args.interval:g} s, stream off): p95",
                    f"{pct(p_lat, 95):.2f} s",
                    "",
                    f"<= {args.interval + 1.0:g} s",
                    bool(p_lat) and len(p_lat) == args.posts and pct(p_lat, 95) <= args.interval + 1.0,
                    note="" if len(p_lat) == args.posts else f"reshared {len(p_lat)} of {args.posts}",
                )
    finally:
        servers.shutdown()
    report.emit(args.json)


if __name__ == "__main__":
    main()
