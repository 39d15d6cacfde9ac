"""Issue 13.6: a ledger deleted, replaced, corrupt or full never makes the worker publish wrongly or fail silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.ledger.db import LedgerUnavailable, lost_marker
from bot.worker.runtime import LEDGER_LOST, Worker
from tests.worker.campaigns import REPO, env_for, write_campaign


@pytest.fixture
def account(x_sandbox, monkeypatch):
    """A fresh X account on the shared sandbox, its credentials in the environment."""
    acc = x_sandbox.create_account(f"l{uuid.uuid4().hex[:8]}")
    for name, value in acc.env.items():
        monkeypatch.setenv(name, value)
    return acc


def _campaign(root: Path, account) -> None:
    write_campaign(
        root,
        [account],
        posts={"launch": f"Launch {uuid.uuid4().hex[:6]}"},
        schedules={
            "main": {
                "timezone": "UTC",
                "slots": [{"at": "2022-01-12T09:00", "post": "launch", "accounts": [account.id]}],
            }
        },
    )


def _bot(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "--campaign", str(root), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_ledger_lost_under_a_running_worker_stops_publishing(tmp_path, x_sandbox, account, how) -> None:
    """A ledger file deleted (or replaced by a copy) before a slot: nothing is published, ledger_lost is logged,
    the worker stops with exit code 3, and the next start refuses instead of making a new ledger."""
    _campaign(tmp_path, account)
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    clock = FakeClock(datetime(2022, 1, 12, 8, 0, tzinfo=UTC))
    worker = Worker(tmp_path, clock=clock, database_url=url, threads=4)
    worker.start()
    try:
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        else:
            shutil.copy(db, tmp_path / "copy.db")
            os.replace(tmp_path / "copy.db", db)
        clock.set(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
        with capture_logs() as logs:
            worker.run_pending()
        assert x_sandbox.posts(account) == []
        [lost] = [e for e in logs if e["event"] == "ledger_lost"]
        assert str(db) in lost["error"] and how in lost["error"]
        assert worker.exit_code == LEDGER_LOST and worker.stopping.is_set()
    finally:
        worker.close()
    assert lost_marker(db).exists()
    with pytest.raises(LedgerUnavailable, match="deleted or replaced"):
        Worker(tmp_path, clock=clock, database_url=url, threads=4)
    assert x_sandbox.posts(account) == []


def test_corrupt_ledger_gives_one_readable_message(tmp_path, account) -> None:
    """`bot status` and `bot run` on a ledger that is not a database: one line naming the file and the remedy."""
    _campaign(tmp_path, account)
    db = tmp_path / "state" / "bot.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not a database, " * 200)
    env = env_for([account])
    status = _bot(tmp_path, env, "status")
    assert status.returncode == 2
    assert "Traceback" not in status.stderr and "sqlalchemy" not in status.stderr.lower()
    [line] = status.stderr.strip().splitlines()
    assert str(db) in line and "backup" in line
    run = _bot(tmp_path, env, "run", "--once", "--no-watch")
    assert run.returncode == 2
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    assert "worker_refused" in output and str(db) in output and "backup" in output


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs mounted for the test (root only), unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_publication_refused_by_a_full_disk_is_shown_and_retried_when_space_returns(
    tmp_path, small_disk, x_sandbox, account
) -> None:
    """The ledger's disk fills before a slot: nothing is sent, `bot status` lists it as failed for lack of space,
    and once space returns the retry publishes it and status no longer lists it."""
    root = tmp_path / "campaign"
    _campaign(root, account)
    url = f"sqlite:///{small_disk / 'bot.db'}"
    clock = FakeClock(datetime(2022, 1, 12, 8, 59, tzinfo=UTC))
    worker = Worker(root, clock=clock, database_url=url, threads=4)
    worker.start()
    env = env_for([account], BOT_DATABASE_URL=url)
    try:
        filler = _fill(small_disk)
        clock.set(datetime(2022, 1, 12, 9, 0, tzinfo=UTC))
        with capture_logs() as logs:
            worker.run_pending()
        assert x_sandbox.posts(account) == []
        [failed] = [e for e in logs if e["event"] == "publish_failed"]
        assert failed["reason"] == "ledger_full" and "full" in failed["error"]
        status = _bot(root, env, "status")
        assert status.returncode == 0, status.stderr
        assert "the ledger had no space" in status.stdout and account.id in status.stdout

        clock.advance(30)
        worker.run_pending()  # still full: tried again, still nothing sent
        assert x_sandbox.posts(account) == []

        filler.unlink()
        clock.advance(30)
        worker.run_pending()
        assert len(x_sandbox.posts(account)) == 1
        status = _bot(root, env, "status")
        assert "the ledger had no space" not in status.stdout
        assert "Published 1" in status.stdout
    finally:
        worker.close()
