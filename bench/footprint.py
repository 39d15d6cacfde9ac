"""Footprint: the idle worker's memory and CPU with a 10,000-post campaign, its start-up time, ``bot check``.

Run: ``.venv/bin/python bench/footprint.py [--posts 10000] [--idle 20]``.
The campaign is bench/check_speed.py's generated one (10 queues, two slots a day each, shipped
media); its accounts point at an X sandbox (with ``--latency``) and the clock is the system
clock, before the campaign's window, so the worker has nothing to do. ``bot run`` is started
as staff start it (a subprocess); start-up is the time until its ``worker_started`` line; RSS
and CPU are read from /proc while it idles. ``bot check`` on the same folder is timed as a
subprocess. The naive baseline: a script that loads the same YAML files into dicts and sleeps
in a loop until the next slot (no ledger, no scheduler).
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


def start_worker(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    """``bot run`` as a subprocess; the process and its start-up time (until worker_started)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--campaign", str(root), "run", "--no-watch"],
        cwd=REPO,
        env={**os.environ, **env, "BOT_LOG_FORMAT": "json", "PYTHONPATH": str(REPO)},
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
            checks = check_time(root, env)
            warm_checks = check_time(root, env, cold=False)  # the probe cache from the runs before
            proc, startup = start_worker(root, env)
            try:
                time.sleep(SETTLE)
                rss, cpu = idle_figures(proc.pid, args.idle)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
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
        report.add(f"idle worker RSS, {count} posts", f"{rss:.0f} MB", f"{naive_rss:.0f} MB", "< 80 MB", rss < 80)
        report.add("idle worker CPU", f"{cpu:.2f} %", f"{naive_cpu:.2f} %", "~0 %", cpu < 1)
        report.add("worker start-up (to worker_started)", f"{startup:.2f} s", f"{naive_start:.2f} s (load YAML)")
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
