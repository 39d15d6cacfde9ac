"""Punctuality: 1,000 slots due across a few minutes of compressed time; how late does each publish start?

Run: ``.venv/bin/python bench/punctuality.py [--slots 1000] [--speed 1200] [--latency 0.2]``.
One slot per campaign minute, each to one account (X and Mastodon accounts in turn), run
by the worker in this process on a CompressedClock. Lateness is measured where the
adapter's ``publish`` is called (a timing wrapper around the adapter), against the slot
time converted to wall time (campaign lateness / speed). The naive baseline is a loop
that sleeps until each slot and publishes it through the same adapters, one after another,
for the first ``--naive-slots`` slots. Goal: p99 at or under 50 ms.
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    TAG,
    AnchoredClock,
    Recorder,
    Report,
    export,
    machine,
    parser,
    pct,
    quiet_logs,
    use_recorder,
    write_campaign,
)
from servers import start_servers

FIRST = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
LEAD = timedelta(minutes=2)  # campaign time between the worker's start and the first slot


def slot_times(count: int) -> list[datetime]:
    return [FIRST + timedelta(minutes=i) for i in range(count)]


def campaign_for(root: Path, accounts: list, count: int) -> Path:
    entries = export(accounts)
    ids = list(entries)
    posts, slots = {}, []
    for i, at in enumerate(slot_times(count)):
        posts[f"p{i:04d}"] = {"text": f"Day {i}: Andrei Aliaksandrau and Irina Zlobina are still in prison. {TAG}"}
        slots.append({"at": at.strftime("%Y-%m-%dT%H:%M"), "post": f"p{i:04d}", "accounts": [ids[i % len(ids)]]})
    return write_campaign(root, "punctuality", entries, posts, {"daily": {"timezone": "UTC", "slots": slots}})


def run_worker(root: Path, speed: float, count: int) -> list[float]:
    """Wall lateness (s) of each publish call's start against its slot."""
    from bot.campaign import load
    from bot.ledger.db import default_url
    from bot.ledger.publications import PublicationKey
    from bot.worker.runtime import Worker

    campaign = load(root)
    slot_of = {}
    for schedule in campaign.schedules:
        for slot in schedule.slots:
            at = slot.at.replace(tzinfo=UTC)
            for account in slot.accounts:
                slot_of[PublicationKey(campaign.name, at, f"post:{slot.post}", account).token()] = at
    clock = AnchoredClock(FIRST - LEAD, speed)
    worker = Worker(root, clock=clock, database_url=default_url(root), heartbeat=86400, sweep=86400)
    recorder = Recorder()
    use_recorder(worker, recorder)
    worker.warm_up()  # as `bot run` does before it starts the clock
    clock.anchor()
    worker.start()
    last = max(slot_of.values())
    serving = threading.Thread(target=worker.serve, kwargs={"until": last + timedelta(minutes=10)}, daemon=True)
    serving.start()
    recorder.wait_for(count, timeout=(last - FIRST + LEAD).total_seconds() / speed + 60)
    worker.request_stop("benchmark done")
    serving.join(timeout=30)
    worker.close()
    in_order = sorted((slot_of[key], start - clock.wall_at(slot_of[key])) for key, start in recorder.starts.items())
    worst = sorted(range(len(in_order)), key=lambda i: in_order[i][1])[-3:][::-1]
    print("latest publish calls: " + ", ".join(f"slot {i + 1} ({in_order[i][1] * 1000:.0f} ms)" for i in worst))
    return [late for _, late in in_order]


def run_naive(root: Path, speed: float, count: int) -> list[float]:
    """Sleep until each slot, then publish it; the next slot waits for this one."""
    from bot.campaign import load
    from bot.publishing.adapters import build_adapter

    campaign = load(root)
    slots = [s for sched in campaign.schedules for s in sched.slots][:count]
    adapters = {}
    clock = AnchoredClock(FIRST - timedelta(seconds=5 * speed), speed)
    clock.anchor()
    lateness = []
    for slot in slots:
        wall = clock.wall_at(slot.at.replace(tzinfo=UTC))
        if wall > time.monotonic():
            time.sleep(wall - time.monotonic())
        account = campaign.accounts[slot.accounts[0]]
        lateness.append(time.monotonic() - wall)
        if account.id not in adapters:
            adapters[account.id] = build_adapter(account)
        post = campaign.posts[slot.post]
        out = post.outgoing(account.platform, f"naive-{slot.post}")
        adapters[account.id].publish(type(out)(**{**out.__dict__, "text": "Naive loop. " + out.text}))
    return lateness


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--slots", type=int, default=1000)
    p.add_argument("--speed", type=float, default=1200.0, help="campaign seconds per wall second (default 1200)")
    p.add_argument(
        "--platforms", default="x", help="x, mastodon or both (the Mastodon sandbox fails under this load, see README)"
    )
    p.add_argument("--accounts", type=int, default=10, help="accounts per platform, used in turn (default 10)")
    p.add_argument("--naive-slots", type=int, default=100)
    args = p.parse_args()
    servers = start_servers()
    quiet_logs()
    platforms = [s.strip() for s in args.platforms.split(",") if s.strip()]
    print(f"machine: {machine()}")
    report = Report("punctuality")
    try:
        hosts = [servers.Host(platform, args.latency) for platform in platforms]
        accounts = [a for host in hosts for a in host.create_accounts([f"punct{i:02d}" for i in range(args.accounts)])]
        accounts = [
            a for pair in zip(*[accounts[i :: len(hosts)] for i in range(len(hosts))]) for a in pair
        ] or accounts
        with tempfile.TemporaryDirectory(prefix="bench-punctuality-") as tmp:
            root = campaign_for(Path(tmp) / "campaign", accounts, args.slots)
            span = args.slots * 60 / args.speed
            print(
                f"{args.slots} slots, one per campaign minute, at speed {args.speed:g}: one every "
                f"{60 / args.speed * 1000:.0f} ms of wall time, {span:.0f} s in all"
            )
            late = run_worker(root, args.speed, args.slots)
            naive = run_naive(root, args.speed, args.naive_slots)
        n = len(late)
        p50, p99 = pct(late, 50), pct(late, 99)
        report.add(
            f"{n} slots: publish-call lateness median",
            f"{p50 * 1000:.0f} ms",
            f"{pct(naive, 50) * 1000:.0f} ms (first {len(naive)} slots)",
        )
        report.add(
            f"{n} slots: publish-call lateness p99",
            f"{p99 * 1000:.0f} ms",
            f"{pct(naive, 99) * 1000:.0f} ms",
            "<= 50 ms",
            p99 <= 0.05 and n == args.slots,
        )
        report.add(f"{n} slots: worst lateness", f"{max(late) * 1000:.0f} ms", f"{max(naive) * 1000:.0f} ms")
        if n != args.slots:
            report.add("slots published", f"{n}/{args.slots}", met=False)
    finally:
        servers.shutdown()
    report.emit(args.json)


if __name__ == "__main__":
    main()
