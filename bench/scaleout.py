"""Scale-out: fan-out of one post with an image to 2,000 accounts by 1, 2 and 4 workers on one PostgreSQL ledger.

Run: ``.venv/bin/python bench/scaleout.py [--accounts 2000] [--workers 1,2,4] [--latency 0.2]``.
Each run gets a fresh X sandbox and a fresh database. The workers are ``bot run`` processes
started together on a DemoClock that reaches the slot a few seconds after each is ready; the
ledger's claims decide which worker publishes to which account. Throughput is posts per second
from the first request the server saw to the last post created (server-side times, so the
workers' start-up skew counts against us). The naive baseline is the sequential loop of
bench/fanout.py on a sample of accounts, in this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from common import REPO, Report, machine, new_database, parser
from fanout import SLOT, campaign_for, run_naive
from servers import cpu_seconds, start_servers

LEAD = 8.0  # wall seconds from a worker being ready to the slot


def run(servers, pg, workers: int, accounts_n: int, latency: float, tmp: Path) -> dict:
    host = servers.Host("x", latency)
    accounts = host.create_accounts([f"s{i:04d}" for i in range(accounts_n)])
    root = campaign_for(tmp / f"campaign-{workers}", "x", accounts)
    url = new_database(pg, f"scaleout_{workers}")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BOT_LOG_FORMAT": "json", "BOT_LOG_LEVEL": "warning"}
    for account in accounts:
        env.update(account.env)
    start = (SLOT - timedelta(seconds=LEAD)).isoformat()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "--campaign",
                str(root),
                "run",
                "--no-watch",
                "--database-url",
                url,
                "--clock-start",
                start,
                "--clock-speed",
                "1",
            ],
            cwd=REPO,
            env=env,
            stdout=(tmp / f"worker-{workers}-{i}.err").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    deadline = time.monotonic() + 150
    server_cpu0, wall0 = cpu_seconds(servers), time.monotonic()
    cpu_start = None  # each worker's CPU seconds when the first post appeared: start-up is not the fan-out's
    try:
        while (count := host.post_count()) < accounts_n and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            if cpu_start is None and count > 0:
                cpu_start = [process_cpu(p.pid) for p in procs]
            time.sleep(0.5)
        cpu_fanout = [process_cpu(p.pid) - c for p, c in zip(procs, cpu_start or [0.0] * len(procs))]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for i, proc in enumerate(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.returncode not in (0, -signal.SIGTERM):
                print(
                    f"worker {i} of {workers} exited {proc.returncode}:\n"
                    + (tmp / f"worker-{workers}-{i}.err").read_text()[-3000:]
                )
    server_cpu = (cpu_seconds(servers) - server_cpu0) / (time.monotonic() - wall0) * 100
    log = host.requests()
    posts = host.posts()
    host.stop()
    created = sorted(e["at"] for e in log if e["path"] == "/2/tweets" and e["status"] == 201)
    first = min(e["at"] for e in log) if log else float("nan")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        per_owner = conn.execute(sa.text("SELECT owner, count(*) FROM publication_attempts GROUP BY owner")).all()
    engine.dispose()
    span = (created[-1] - first) if created else float("nan")
    return {
        "published": len(created),
        "on_server": len(posts),
        "span": span,
        "throughput": len(created) / span if created else 0.0,
        "throttled": sum(1 for e in log if e["status"] == 429),
        "per_worker": sorted(n for _, n in per_owner),
        "texts": len({p.text for p in posts}),
        "server_cpu": server_cpu,
        "worker_cpu": cpu_fanout,
        "duplicates": len(posts) - len({p.author for p in posts}),
    }


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--naive-sample", type=int, default=10)
    args = p.parse_args()
    servers = start_servers()
    from sandboxes.postgres import Postgres

    print(f"machine: {machine()}")
    report = Report("scale-out")
    pg = Postgres().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
            results = {}
            for n in [int(w) for w in args.workers.split(",")]:
                r = results[n] = run(servers, pg, n, args.accounts, args.latency, Path(tmp))
                print(
                    f"{n} worker(s): {r['published']}/{args.accounts} published in {r['span']:.1f} s, "
                    f"{r['throughput']:.0f} posts/s; attempts per worker {r['per_worker']}; 429: {r['throttled']}; "
                    f"accounts posted to more than once: {r['duplicates']}; X sandbox process CPU {r['server_cpu']:.0f} %; "
                    f"workers' CPU during the fan-out {', '.join(f'{c:.1f}' for c in r['worker_cpu'])} s "
                    f"({sum(r['worker_cpu']) / max(1, r['published']) * 1000:.1f} ms per post)"
                )
            host = servers.Host("x", args.latency)
            sample = host.create_accounts([f"naive{i:02d}" for i in range(args.naive_sample)])
            naive = run_naive(campaign_for(Path(tmp) / "naive", "x", sample), sample, len(sample))
            host.stop()
        naive_rate = len(naive) / sum(naive)
        for n, r in results.items():
            ok = r["published"] == args.accounts and r["duplicates"] == 0
            report.add(
                f"{args.accounts} accounts, {n} worker(s): throughput",
                f"{r['throughput']:.0f} posts/s",
                f"{naive_rate:.1f} posts/s",
                met=None if ok else False,
                note="" if ok else f"published {r['published']}, duplicates {r['duplicates']}",
            )
            report.add(
                f"{args.accounts} accounts, {n} worker(s): slot to all published",
                f"{r['span']:.1f} s",
                f"{args.accounts / naive_rate:.0f} s (extrapolated)",
            )
    finally:
        pg.stop()
        servers.shutdown()
    report.emit(args.json)


if __name__ == "__main__":
    main()
