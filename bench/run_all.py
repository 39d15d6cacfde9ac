"""Run every benchmark, one subprocess each, and print one table of figures (``make bench``).

Run: ``.venv/bin/python bench/run_all.py [--latency 0.2] [--only fanout,punctuality] [--out bench/latest.md]``.
Each benchmark writes its rows as JSON; the table goes to stdout and, as Markdown with the
machine it ran on, to ``--out`` (default bench/latest.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import REPO, Row, machine, print_table, verdict

BENCHES = {
    "punctuality": ["bench/punctuality.py"],
    "fanout": ["bench/fanout.py"],
    "reshare": ["bench/reshare_latency.py"],
    "footprint": ["bench/footprint.py"],
    "scaleout": ["bench/scaleout.py"],
    "channels": ["bench/channels.py"],
}


def markdown(rows: list[Row], took: dict[str, float]) -> str:
    lines = [
        f"Ran {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "| benchmark | metric | ours | naive loop | goal | |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.bench} | {r.metric} | {r.ours} | {r.naive} | {r.goal} | {verdict(r.met)} |" for r in rows]
    notes = [f"- {r.bench}, {r.metric}: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    lines += ["", "Wall time per benchmark: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()), ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "latest.md")
    args = p.parse_args()
    rows: list[Row] = []
    took: dict[str, float] = {}
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-run-all-") as tmp:
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            out = Path(tmp) / f"{name}.json"
            print(f"== {name}", flush=True)
            started = time.monotonic()
            errors = Path(tmp) / f"{name}.stderr"
            with errors.open("w") as err:  # the product's warnings (JSON lines) and any traceback
                done = subprocess.run(
                    [sys.executable, *BENCHES[name], "--latency", str(args.latency), "--json", str(out)],
                    cwd=REPO,
                    stderr=err,
                )
            took[name] = time.monotonic() - started
            if done.returncode != 0 or not out.exists():
                failed.append(name)
                print("".join(errors.read_text().splitlines(keepends=True)[-30:]), file=sys.stderr)
                rows.append(Row(name, "(benchmark failed)", f"exit {done.returncode}", met=False))
                continue
            rows += [Row(**r) for r in json.loads(out.read_text())]
    print()
    print_table(rows)
    args.out.write_text(markdown(rows, took))
    print(f"\nwritten: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
