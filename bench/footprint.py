"""Footprint: the idle worker's memory and CPU with a 10,000-post campaign, its start-up time, ``bot check``.

Run: ``.venv/bin/python bench/footprint.py [--posts 10000] [--idle 20] [--runs 3] [--before DIR] [--no-check]``.
The campaign is bench/check_speed.py's generated one (10 queues, two slots a day each, shipped
media); its accounts point at an X sandbox (with ``--latency``) and the clock is the system
clock, before the campaign's window, so the worker has nothing to do. ``bot run`` is started
as staff start it (a subprocess); start-up is the time until its ``worker_started`` line; RSS
and CPU are read from /proc while it idles. ``bot check`` on the same folder is timed as a
subprocess. The naive baseline: a script that loads the same YAML files into dicts and sleeps
in a loop until the next slot (no ledger, no scheduler).
``--before DIR``: also start the worker from DIR (a work tree of an earlier commit, e.g.
``git worktree add /tmp/base HEAD~1``; ``--tree`` names ours, this one by default) on the same campaign and virtual environment, alternating
with ours ``--runs`` times, so a saving's before and after come from one run on one machine load.
With several runs the RSS row gives the median and the range (min-max): other processes on the
machine move a single figure by a megabyte or two.
Goals: RSS under 80 MB, about 0% CPU idle, check under 2 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml
from check_speed import generate
from common import REPO, Report, machine, parser
from servers import start_servers

SETTLE = 5.0  # seconds after worker_started before idling is measured (the tracker's first poll runs then)

NAIVE = textwrap.dedent("""
    import sys, time, pathlib, yaml
    root = pathlib.Path(sys.argv[1])
    posts = [yaml.safe_load(p.read_text()) for p in (root / "posts").rglob("*.yaml")]
    schedules = [yaml.safe_load(p.read_text()) for p in (root / "schedules").glob("*.yaml")]
    print("loaded", len(posts), flush=True)
    while True:
        time.sleep(1)  # the usual bot: wake up every second and compare the time with the schedule
""")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_figures(pid: int, seconds: float) -> tuple[float, float]:
    """Peak RSS (MB) and CPU percent over ``seconds`` of idling."""
    cpu0, t0, peak = cpu_seconds(pid), time.monotonic(), 0.0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.5)
    return peak, 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def point_at_sandbox(root: Path, host) -> dict[str, str]:
    """Every account of the generated campaign on the X sandbox; the environment the worker needs."""
    path = root / "config" / "accounts.yaml"
    config = yaml.safe_load(path.read_text())
    env = {}
    for account_id, entry in config["accounts"].items():
        made = host.create_account(account_id.replace("-", "_"))
        entry.update(
            platform="x", base_url=made.entry["base_url"], handle=made.handle, credentials=made.entry["credentials"]
        )
        entry.pop("options", None)
        env.update(made.env)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return env


def start_worker(root: Path, env: dict[str, str], tree: Path = REPO) -> tuple[subprocess.Popen, float]:
    """``bot run`` (from the work tree ``tree``) as a subprocess; the process and its start-up time (until worker_started)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--campaign", str(root), "run", "--no-watch"],
        cwd=tree,
        env={**os.environ, **env, "BOT_LOG_FORMAT": "json", "PYTHONPATH": str(tree)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in proc.stdout:
        if '"worker_started"' in line:
            return proc, time.monotonic() - started
        if '"worker_refused"' in line or proc.poll() is not None:
            raise SystemExit(f"worker did not start: {line}")
    raise SystemExit("worker exited before worker_started")


def measure_worker(root: Path, env: dict[str, str], idle: float, tree: Path = REPO) -> tuple[float, float, float]:
    """One worker's start-up (s), peak idle RSS (MB) and idle CPU (%), started from ``tree``."""
    proc, startup = start_worker(root, env, tree)
    try:
        time.sleep(SETTLE)
        rss, cpu = idle_figures(proc.pid, idle)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return startup, rss, cpu


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    """The median, and with several values their range: ``61.2 MB (60.8-62.0, 3 runs)``."""
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    if len(ordered) == 1:
        return f"{median:.{digits}f} {unit}"
    return f"{median:.{digits}f} {unit} ({ordered[0]:.{digits}f}-{ordered[-1]:.{digits}f}, {len(ordered)} runs)"


def check_time(root: Path, env: dict[str, str], runs: int = 3, cold: bool = True) -> list[float]:
    """Wall seconds of ``bot check`` per run; ``cold``: without the media-probe cache of earlier checks."""
    from bot.campaign.probing import CACHE

    times = []
    for _ in range(runs):
        if cold:
            (root / CACHE).unlink(missing_ok=True)
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bot", "--campaign", str(root), "check", "--no-warnings"],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        times.append(time.monotonic() - t0)
        if done.returncode != 0:
            raise SystemExit(f"bot check failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return times


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=10_000)
    p.add_argument("--idle", type=float, default=20.0, help="seconds of idling to measure (default 20)")
    p.add_argument("--runs", type=int, default=1, help="workers started (and measured) one after another (default 1)")
    p.add_argument("--before", type=Path, help="a work tree of an earlier commit: its worker is measured beside ours")
    p.add_argument("--tree", type=Path, default=REPO, help="the work tree whose worker is ours (default: this one)")
    p.add_argument("--no-check", action="store_true", help="skip the bot check timings (RSS work)")
    args = p.parse_args()
    servers = start_servers()
    print(f"machine: {machine()}")
    report = Report("footprint")
    try:
        host = servers.Host("x", args.latency)
        with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
            root = Path(tmp) / "campaign"
            generate(root, args.posts)
            # Far from any slot: the window opens in 2100, so the worker only waits.
            launch = root / "schedules" / "launch.yaml"
            launch.write_text(
                launch.read_text().replace("2022-01-12", "2100-01-12").replace("2022-03-12", "2100-03-12")
            )
            env = point_at_sandbox(root, host)
            count = sum(1 for _ in (root / "posts").rglob("*.yaml"))
            checks = [] if args.no_check else check_time(root, env)
            # The probe cache from the runs before (without them, the worker's load writes it).
            warm_checks = [] if args.no_check else check_time(root, env, cold=False)
            ours: list[tuple[float, float, float]] = []
            before: list[tuple[float, float, float]] = []
            for _ in range(args.runs):  # alternated, so both see the same machine load
                if args.before:
                    before.append(measure_worker(root, env, args.idle, args.before.resolve()))
                ours.append(measure_worker(root, env, args.idle, args.tree.resolve()))
            startups, rsses, cpus = (list(column) for column in zip(*ours, strict=True))
            rss, cpu = sorted(rsses)[len(rsses) // 2], max(cpus)
            naive = subprocess.Popen([sys.executable, "-c", NAIVE, str(root)], stdout=subprocess.PIPE, text=True)
            t0 = time.monotonic()
            naive.stdout.readline()
            naive_start = time.monotonic() - t0
            try:
                naive_rss, naive_cpu = idle_figures(naive.pid, args.idle)
            finally:
                naive.kill()
                naive.wait()
        print(f"campaign: {count} posts; idle measured over {args.idle:g} s, {SETTLE:g} s after worker_started")
        report.add(
            f"idle worker RSS, {count} posts",
            spread(rsses, "MB"),
            f"{naive_rss:.0f} MB",
            "<= 60 MB (issue 20)",
            rss <= 60,
            note="peak over the idle time; median (min-max) of the runs",
        )
        report.add("idle worker CPU", f"{cpu:.2f} %", f"{naive_cpu:.2f} %", "~0 %", cpu < 1, note="highest of the runs")
        report.add("worker start-up (to worker_started)", spread(startups, "s", 2), f"{naive_start:.2f} s (load YAML)")
        if before:
            b_startups, b_rsses, _ = (list(column) for column in zip(*before, strict=True))
            report.add(f"idle worker RSS, {count} posts: before ({args.before})", spread(b_rsses, "MB"))
            report.add("worker start-up: before", spread(b_startups, "s", 2))
        if checks:  # not with --no-check
            checks.sort()
            report.add(
                f"bot check, {count} posts (subprocess)",
                f"{checks[len(checks) // 2]:.2f} s",
                "",
                "< 2 s",
                checks[len(checks) // 2] < 2,
                note="median of 3, each without the media-probe cache; bench/check_speed.py has the in-process split",
            )
            warm_checks.sort()
            report.add(
                f"bot check, {count} posts, media probes cached",
                f"{warm_checks[len(warm_checks) // 2]:.2f} s",
                note="median of 3: staff's second and later checks",
            )
    finally:
        servers.shutdown()
    report.emit(args.json)
    if args.json:
        json.loads(args.json.read_text())


if __name__ == "__main__":
    main()
