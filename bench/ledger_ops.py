"""Ledger CPU per publication: ``claim_and_begin`` and ``record_published`` alone, without any platform.

The fan-out benchmark is CPU-bound and the ledger is a good part of the worker's CPU per
publication. This prints the process CPU (all threads; SQLite runs inside the process, the
PostgreSQL server does not) spent per call, as the median of a few runs on a fresh database
each, for N keys claimed then recorded one after the other, and the same split over 64 threads.

    .venv/bin/python bench/ledger_ops.py                      # SQLite
    .venv/bin/python bench/ledger_ops.py --ledger postgres    # a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.core.clock import SystemClock  # noqa: E402
from bot.ledger.db import open_engine  # noqa: E402
from bot.ledger.publications import Ledger, PublicationKey  # noqa: E402

LEASE = timedelta(minutes=5)
SLOT = datetime(2022, 1, 12, 9, 0, tzinfo=UTC)


def keys(n: int) -> list[PublicationKey]:
    return [PublicationKey("free", SLOT, "post:launch", f"x-{i:05d}") for i in range(n)]


def split(items: list, threads: int) -> list[list]:
    return [items[i::threads] for i in range(threads)]


def timed(chunks: list[list], each: Callable) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) to call ``each`` on every item, one thread per chunk."""
    go = threading.Barrier(len(chunks) + 1)

    def loop(chunk: list) -> None:
        go.wait()
        for item in chunk:
            each(item)

    workers = [threading.Thread(target=loop, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    cpu, wall = time.process_time(), time.perf_counter()
    go.wait()
    for w in workers:
        w.join()
    return time.process_time() - cpu, time.perf_counter() - wall


def one_run(url: str, n: int, threads: int) -> dict[str, tuple[float, float]]:
    """Claim-and-begin then publish ``n`` keys on a fresh ledger at ``url``; seconds per phase."""
    engine = open_engine(url)
    ledger = Ledger(engine, SystemClock())
    claimed: dict[PublicationKey, tuple[int, int]] = {}

    def claim(key: PublicationKey) -> None:
        row, attempt, _ = ledger.claim_and_begin(
            key, "bench", LEASE, post="launch", schedule="launch", slot=0, platform="x"
        )
        claimed[key] = (row.id, attempt)

    def publish(key: PublicationKey) -> None:
        pub_id, attempt = claimed[key]
        ledger.record_published(pub_id, f"r{pub_id}", f"https://x.com/i/status/{pub_id}", attempt=attempt)

    ks = keys(n)
    ledger.counts()  # connect (and warm the pool) outside the timed phases
    figures = {
        "claim_and_begin": timed(split(ks, threads), claim),
        "record_published": timed(split(ks, threads), publish),
    }
    counts = ledger.counts()
    engine.dispose()
    if counts["published"] != n:
        raise SystemExit(f"expected {n} published rows, found {counts}")
    return figures


def fresh_url(kind: str, pg, tmp: Path, run: int, threads: int) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'ledger-{threads}-{run}.db'}"
    return pg.new_database(f"bench_{threads}_{run}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ledger", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("-n", type=int, default=2000, help="keys per run (default 2000)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the median is printed (default 3)")
    p.add_argument("--threads", default="1,64", help="thread counts to measure (default 1,64)")
    args = p.parse_args()
    pg = None
    if args.ledger == "postgres":
        from sandboxes.postgres import Postgres

        pg = Postgres().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            print(f"ledger={args.ledger} n={args.n} runs={args.runs} (CPU: this process, all threads)")
            print(f"{'threads':>7}  {'operation':<17} {'CPU ms/op':>9} {'wall ms/op':>10}  runs (CPU ms/op)")
            for threads in (int(t) for t in args.threads.split(",")):
                runs = [
                    one_run(fresh_url(args.ledger, pg, Path(tmp), r, threads), args.n, threads)
                    for r in range(args.runs)
                ]
                for op in ("claim_and_begin", "record_published"):
                    cpu = [run[op][0] * 1000 / args.n for run in runs]
                    wall = [run[op][1] * 1000 / args.n for run in runs]
                    print(
                        f"{threads:>7}  {op:<17} {statistics.median(cpu):>9.3f} {statistics.median(wall):>10.3f}"
                        f"  {' '.join(f'{c:.3f}' for c in cpu)}"
                    )
    finally:
        if pg is not None:
            pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
