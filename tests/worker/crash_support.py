"""The kill tests' shared loop: run `bot run` workers on a fast clock, end each at a random moment (SIGKILL, or the
fault hook's exit right after a publish call returned), let an outage pass, and finish with an undisturbed run.

Each kill test (tests/worker/test_crash*.py, tests/platforms/test_linkedin_crash.py) brings its campaign, its
sandbox's faults (``before_run``) and its assertions; ``report`` prints its counts where pytest shows them.
"""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.ledger.db import open_engine
from bot.publishing.faults import EXIT_CODE
from tests.worker.campaigns import Workers, env_for, events, iso, wait_for_event


@dataclass(frozen=True)
class Clock:
    """The workers' command-line clock: ``speed`` campaign seconds per wall second, a heartbeat every
    ``heartbeat`` campaign seconds (its events tell where campaign time got to), short leases, 16 threads."""

    speed: float = 1000.0  # 200 one-minute slots take 12 s
    heartbeat: int = 300

    def args(self, position: datetime, end: datetime) -> list[str]:
        # --until bounds every run, so a worker a failed test forgot still ends by itself.
        return [
            "--clock-start",
            iso(position),
            "--clock-speed",
            str(self.speed),
            "--heartbeat",
            str(self.heartbeat),
            "--lease",
            "0.3",
            "--threads",
            "16",
            "--until",
            iso(end + timedelta(minutes=30)),
        ]


@dataclass
class Kills:
    """What the disturbed runs did: how many ran, died by SIGKILL, or exited by the fault hook."""

    runs: int = 0
    kills: int = 0
    faults: int = 0
    position: datetime | None = None  # campaign time the next run starts at

    def __str__(self) -> str:
        return f"runs={self.runs} kills={self.kills} exits after publish={self.faults}"


def kill_at_random(
    workers: Workers,
    root: Path,
    accounts: list,
    *,
    start: datetime,
    end: datetime,
    seed: int,
    clock: Clock = Clock(),
    env: Mapping[str, str] | None = None,
    max_runs: int = 5,
    margin: timedelta = timedelta(minutes=20),
    exit_rate: str = "0.1",
    outage_minutes: float = 10,
    before_run: Callable[[], None] | None = None,
    may_finish: bool = False,
) -> Kills:
    """Workers started one after another from ``start`` until ``end - margin`` (or ``max_runs`` of them): even runs
    exit by the fault hook (``exit_rate``) right after a publish call returned, odd runs are SIGKILLed 0.1 to 1 s
    after they first published; between runs campaign time goes on by an outage of 1 to ``outage_minutes``.
    ``may_finish``: a run whose fault never drew may end the campaign cleanly (then the loop stops)."""
    rng = random.Random(seed)
    log = root / "worker.log"
    done = Kills(position=start)
    position = start
    while position < end - margin and done.runs < max_runs:
        done.runs += 1
        if before_run is not None:
            before_run()
        fault = (
            {"BOT_FAULT_EXIT_AFTER_PUBLISH": exit_rate, "BOT_FAULT_SEED": str(done.runs)} if done.runs % 2 == 0 else {}
        )
        before = sum(e["event"] == "post_published" for e in events(log)) if log.exists() else 0
        proc = workers.spawn(root, env_for(accounts, **(env or {}), **fault), log, *clock.args(position, end))
        started = wait_for_event(log, "worker_started", done.runs, proc)
        publishing = wait_for_event(log, "post_published", before + 1, proc) if started else None
        if publishing is None:  # the fault fired before this run logged anything
            assert proc.wait() == EXIT_CODE
            done.faults += 1
        else:
            try:
                code = proc.wait(timeout=rng.uniform(0.1, 1.0) if not fault else 30)
                assert code == EXIT_CODE or (may_finish and code == 0), f"worker exited {code} on its own"
                done.faults += code == EXIT_CODE
                if code == 0:
                    break  # the fault never drew: the worker ran the campaign to its end
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done.kills += 1
        # Campaign time went on meanwhile; an outage (within grace) leaves slots to publish late.
        heartbeats = [datetime.fromisoformat(e["now"]) for e in events(log) if e["event"] == "worker_heartbeat"]
        position = max([position, *heartbeats]) + timedelta(minutes=rng.uniform(1, outage_minutes))
    done.position = position
    return done


def run_to_end(
    workers: Workers,
    root: Path,
    accounts: list,
    kills: Kills,
    end: datetime,
    *,
    clock: Clock = Clock(),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> None:
    """A last, undisturbed run from where the killed ones left off takes over what they left claimed."""
    assert kills.position is not None
    position = kills.position
    final = workers.spawn(
        root,
        env_for(accounts, **(env or {})),
        root / "worker.log",
        *clock.args(position, max(end, position) + timedelta(minutes=30)),
    )
    assert final.wait(timeout=timeout) == 0


def ledger(root: Path, *columns: sa.ColumnElement) -> list[tuple]:
    """``columns`` of every row of the campaign's ledger query (its SQLite file under ``root``)."""
    engine = open_engine(f"sqlite:///{root / 'state' / 'bot.db'}")
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(*columns))]


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print a kill test's counts to the terminal, past pytest's capture (a passing test's output is not shown)."""
    with capsys.disabled():
        print(f"\n{line}")
