"""Channels: one post with a photo to many channels of one platform at one slot (Telegram: 50 channels, one bot;
LinkedIn: 20 organization pages).

Run: ``.venv/bin/python bench/channels.py [--platform telegram] [--channels 50] [--latency 0.2]``.
The sandbox runs in another process (bench/servers.py) with its flood control on (Telegram: 30 messages a
second per bot, 20 a minute per channel, answered 429 with retry_after). The worker (in this process)
publishes the slot to every channel; we print the wall time from the slot to the last publish answered and
the requests answered 429 (goal 0), and the most messages the sandbox counted in any one second (at most 30
when pacing works, whatever the latency). Beside it: the same worker with the adapters' pacing off (what a bot
that only reacts to 429s does), and the naive loop (one channel after another through the same adapter).
A platform is a parameter: a platform joins with an entry in PLATFORMS (its accounts' options for the
unpaced run) and, if its sandbox needs them, options for bench/servers.Host.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import Report, export, image_post, machine, ms, parser, quiet_logs, write_campaign
from fanout import SLOT, run_worker
from servers import start_servers

TEXT = "Andrei Aliaksandrau and Irina Zlobina: a year behind bars for their journalism. #FreeAndreiandIrina"

# platform -> (default channel count, account options that switch the adapter's own pacing off)
PLATFORMS: dict[str, tuple[int, dict[str, object]]] = {
    "telegram": (50, {"pacing": False}),
    # LinkedIn publishes no short-term rates (daily per app and per member, unpublished; only a 429 tells), so its
    # adapter has no pacing to switch off: both runs are the same adapter, and the sandbox throttles nothing.
    "linkedin": (20, {}),
}


def campaign(root: Path, platform: str, accounts: list, options: dict[str, object]) -> Path:
    entries = export(accounts)
    for entry in entries.values():
        entry["options"] = {**entry.get("options", {}), **options}
    schedule = {
        "timezone": "UTC",
        "slots": [{"at": SLOT.strftime("%Y-%m-%dT%H:%M"), "post": "launch", "accounts": list(entries)}],
    }
    posts = {"launch": image_post(TEXT), "naive": image_post(f"{TEXT} (naive loop)")}
    return write_campaign(root, f"channels-{platform}", entries, posts, {"launch": schedule})


def peak_per_second(entries: list[dict]) -> int:
    """The most messages the sandbox's flood control counted within any one second [t, t + 1)."""
    counted = sorted((e["counted_at"], e["messages"]) for e in entries if "counted_at" in e)
    most, first, inside = 0, 0, 0
    for at, n in counted:
        inside += n
        while counted[first][0] <= at - 1.0:
            inside -= counted[first][1]
            first += 1
        most = max(most, inside)
    return most


def naive_loop(root: Path, accounts: list) -> tuple[float, int]:
    """One channel after another through the same adapter: (seconds for all, failures)."""
    from bot.campaign import load
    from bot.platforms import warm_up
    from bot.publishing.adapters import build_adapter

    loaded = load(root)
    warm_up({a.platform for a in loaded.accounts.values()})
    failed = 0
    started = time.monotonic()
    for account in accounts:
        model = loaded.accounts[account.id]
        adapter = build_adapter(model)
        try:
            adapter.publish(loaded.posts["naive"].outgoing(model.platform, f"naive-{account.id}"))
        except Exception as exc:  # noqa: BLE001  (a failed call still took its time; count it and go on)
            failed += 1
            print(f"naive loop: {account.id}: {type(exc).__name__}")
        finally:
            adapter.close()
    return time.monotonic() - started, failed


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--platform", default="telegram", choices=sorted(PLATFORMS))
    p.add_argument("--channels", type=int, default=None, help="channels (pages) to post to (default per platform)")
    args = p.parse_args()
    count = args.channels or PLATFORMS[args.platform][0]
    servers = start_servers()
    quiet_logs()
    report = Report("channels")
    print(f"machine: {machine()}")
    try:
        host = servers.Host(args.platform, args.latency)
        rows = {}
        with tempfile.TemporaryDirectory(prefix=f"bench-channels-{args.platform}-") as tmp:
            for run, options in (("paced", {}), ("pacing off", PLATFORMS[args.platform][1])):
                # A fresh minute for each run: the channels' 20-a-minute windows start empty.
                accounts = host.create_accounts([f"{run[:2]}{i:03d}" for i in range(count)])
                root = campaign(Path(tmp) / run.replace(" ", "-"), args.platform, accounts, options)
                before = len(host.requests())
                result = run_worker(root, count, None, lead=0.0)
                answered = host.requests()[before:]
                result["throttled"] = sum(1 for e in answered if e.get("status") == 429)
                result["peak"] = peak_per_second(answered)
                rows[run] = result
                print(
                    f"{args.platform} ({run}): published {result['published']}/{count}, failed {result['failed']}, "
                    f"429: {result['throttled']}, most messages the server counted in one second: {result['peak']}, "
                    f"worker counts {result['counts']}"
                )
            naive_accounts = host.create_accounts([f"nv{i:03d}" for i in range(count)])
            naive_root = campaign(Path(tmp) / "naive", args.platform, naive_accounts, {})
            before = len(host.requests())
            naive_seconds, naive_failed = naive_loop(naive_root, naive_accounts)
            naive_429 = sum(1 for e in host.requests()[before:] if e.get("status") == 429)
        host.stop()
        naive_text = f"{naive_seconds:.2f} s ({naive_failed} failed, {naive_429} answered 429)"
        for run, result in rows.items():
            done = result["published"] == count
            wall = f"{result['wall']:.2f} s" if done else f"n/a: {count - result['published']} not published"
            report.add(
                f"{args.platform}: {count} channels, one photo post, slot to all published ({run})",
                wall,
                naive_text if run == "paced" else "",
            )
            report.add(
                f"{args.platform}: responses 429 ({run})",
                str(result["throttled"]),
                str(naive_429) if run == "paced" else "",
                "0" if run == "paced" else "",
                (result["throttled"] == 0 and done) if run == "paced" else None,
            )
            report.add(
                f"{args.platform}: most messages the server counted in any second ({run})",
                str(result["peak"]),
                "",
                "<= 30" if run == "paced" else "",
                (result["peak"] <= 30) if run == "paced" else None,
            )
            report.add(
                f"{args.platform}: last publish call started after slot ({run})",
                ms(result["last_start"]),
            )
    finally:
        servers.shutdown()
    report.emit(args.json)


if __name__ == "__main__":
    main()
