"""How long ``bot check`` takes on a generated campaign of 10,000 posts (goal: under 2 s).

Run: ``.venv/bin/python bench/check_speed.py [--posts N] [--pycache DIR]``. Prints the time
in-process (import excluded) and as a subprocess, as staff would run it: cold (no ``state/``,
so nothing is cached) and warm (a ``state/`` where the worker ran, holding the parse cache
and the media probes of an earlier check).

Where ``PYTHONDONTWRITEBYTECODE`` is set and the installed packages have no ``.pyc`` files,
every start compiles pydantic, PyYAML and the bot from source (about 0.6 s on a slow core);
an ordinary ``pip install`` writes them. ``--pycache DIR`` keeps the subprocesses' bytecode
in DIR (``PYTHONPYCACHEPREFIX``), as after an install, without writing into the venv.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BASE = REPO / "tests/cases/base"
QUEUES = 10
SCHEDULE = """timezone: Europe/London
window: {{start: 2022-01-12, end: 2022-03-12}}
slots:
  - at: 2022-01-12T09:00
    post: launch
    accounts: [x-index, mastodon-a19, bluesky-index]
{queues}"""
QUEUE_SLOT = """  - every: day
    times: ["{hour:02d}:00", "{hour:02d}:30"]
    queue: q{n:02d}
    accounts: [x-index, mastodon-a19, bluesky-index]
"""


def generate(root: Path, posts: int) -> None:
    """A campaign like the base one with ``posts`` posts spread over queues; media shared, as in real life."""
    shutil.copytree(BASE, root)
    per_queue = (posts - 5) // QUEUES
    for n in range(QUEUES):
        folder = root / "posts" / f"q{n:02d}"
        folder.mkdir()
        for i in range(per_queue):
            body = f'text: "Day {i} of queue {n}: Andrei and Irina are still in prison. #FreeAndreiandIrina"\n'
            if i % 3 == 0:
                body += "media:\n  - file: media/banner-1.png\n    alt: Banner with the words Free Andrei and Irina\n"
            elif i % 7 == 0:
                body += (
                    "video: media/videos/001-supporter.mp4\ncaptions: media/videos/001-supporter.vtt\n"
                    "alt: A supporter speaks to camera\nconsent: {given: true, date: 2022-01-05}\n"
                    "supporter: {name: A. Supporter}\n"
                )
            if i % 5 == 0:
                body += f"link: https://example.org/petition/{n}/{i}\n"
            (folder / f"q{n:02d}-{i:05d}.yaml").write_text(body)
    queues = "".join(QUEUE_SLOT.format(hour=8 + n, n=n) for n in range(QUEUES))
    (root / "schedules/launch.yaml").write_text(SCHEDULE.format(queues=queues))


def in_process(root: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``inspect`` (what ``bot check`` runs) per run."""
    from bot.campaign import inspect

    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = inspect(root)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    assert not result.errors, result.errors[:5]
    return wall, cpu


def as_subprocess(root: Path, runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``python -m bot check`` per run, start-up and imports included."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bot", "--campaign", str(root), "check", "--no-warnings"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
        )
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"check failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, cpu


def _line(label: str, wall: list[float], cpu: list[float]) -> str:
    runs = ", ".join(f"{t:.2f}" for t in wall)
    return f"{label:<28} median {statistics.median(wall):.2f} s wall, {statistics.median(cpu):.2f} s CPU  (wall runs: {runs})"


def _bytecode(env: dict[str, str]) -> str:
    """Whether the subprocesses start from compiled bytecode, as after an ordinary install."""
    import pydantic

    if env.get("PYTHONPYCACHEPREFIX"):
        return f"kept in {env['PYTHONPYCACHEPREFIX']} (first run compiles)"
    compiled = any((Path(pydantic.__file__).parent / "__pycache__").glob("*.pyc"))
    if compiled:
        return "from the installed .pyc files"
    writes = "PYTHONDONTWRITEBYTECODE" not in env
    return "written on the first run" if writes else "NONE: every run compiles from source (see --pycache)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pycache", type=Path, help="keep the subprocesses' bytecode here (PYTHONPYCACHEPREFIX)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.pycache:
        env["PYTHONPYCACHEPREFIX"] = str(args.pycache.resolve())
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "campaign"
        generate(root, args.posts)
        count = sum(1 for _ in (root / "posts").rglob("*.yaml"))
        started = time.perf_counter()
        import bot.campaign  # noqa: F401  (what the command imports)

        imported = time.perf_counter() - started
        if args.pycache:
            as_subprocess(root, 1, env)  # compiles into the cache, as an install would have
        inside_cold = in_process(root, args.runs)
        cold = as_subprocess(root, args.runs, env)
        (root / "state").mkdir()  # as where the worker ran: checks then keep their caches there
        as_subprocess(root, 1, env)  # writes the parse cache and the media probes
        inside_warm = in_process(root, args.runs)
        warm = as_subprocess(root, args.runs, env)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"campaign: {count} posts in {QUEUES} queues, {QUEUES * 2 + 1} slots over 60 days")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before} before, {load} after"
        " (wall times grow with load; CPU times much less)"
    )
    print(f"bytecode of the subprocesses: {_bytecode(env)}")
    print(f"import bot.campaign:         {imported:.2f} s wall")
    print("cold: no state/, nothing cached (as `bot check` in a fresh clone)")
    print(_line("  bot check in-process:", *inside_cold))
    print(_line("  bot check as a subprocess:", *cold))
    print("  (subprocess CPU includes the media-probing child, which runs on another core while the posts are read)")
    print("warm: state/ holds the parse cache and the media probes of an earlier check")
    print(_line("  bot check in-process:", *inside_warm))
    print(_line("  bot check as a subprocess:", *warm))
    best = statistics.median(cold[0])
    print(f"goal under 2 s (cold subprocess wall): {'met' if best < 2 else 'MISSED'} ({best:.2f} s)")


if __name__ == "__main__":
    main()
