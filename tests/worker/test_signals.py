"""SIGTERM while an upload is in flight: the upload finishes and is recorded, then the worker exits 0."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.ledger.db import open_engine
from bot.ledger.schema import attempts, publications
from sandboxes.media import make_image
from sandboxes.x.sandbox import XSandbox
from tests.worker.campaigns import dump, env_for, events, iso, write_campaign

T0 = datetime(2022, 1, 12, 8, 59, 50, tzinfo=UTC)


@pytest.fixture
def slow_x():
    """An X sandbox that takes 1.5 s to answer every request, like a slow upload link."""
    with XSandbox(latency=1.5) as sandbox:
        yield sandbox


def _image_campaign(root, account, tag: str) -> None:
    write_campaign(
        root,
        [account],
        schedules={
            "launch": {
                "timezone": "UTC",
                "slots": [{"at": "2022-01-12T09:00", "post": "banner", "accounts": [account.id]}],
            }
        },
    )
    make_image(root / "posts" / "media" / "banner.png", (1200, 675))
    dump(
        root / "posts" / "banner.yaml",
        {
            "text": f"Free Andrei and Irina {tag} #FreeAndreiandIrina",
            "media": [{"file": "media/banner.png", "alt": "A red banner asking to free Andrei and Irina"}],
        },
    )


def _start_upload(tmp_path, slow_x, workers):
    """A worker whose 09:00 slot is uploading to the slow server; returns (process, log, ledger engine, tag)."""
    account = slow_x.create_account(f"s{uuid.uuid4().hex[:8]}")
    tag = uuid.uuid4().hex[:6]
    _image_campaign(tmp_path, account, tag)
    log = tmp_path / "worker.log"
    (tmp_path / "state").mkdir()
    engine = open_engine(f"sqlite:///{tmp_path / 'state' / 'bot.db'}")
    proc = workers.spawn(
        tmp_path,
        env_for([account]),
        log,
        "--clock-start",
        iso(T0),
        "--clock-speed",
        "10",
        "--until",
        iso(T0 + timedelta(hours=1)),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # an attempt row without an end: the publish call is under way
        with engine.connect() as conn:
            if conn.execute(sa.select(attempts.c.id).where(attempts.c.ended.is_(None))).first():
                break
        assert proc.poll() is None, log.read_text()
        time.sleep(0.05)
    else:
        raise AssertionError("the upload never started")
    return proc, log, engine, account, tag


@pytest.mark.slow
def test_sigterm_during_a_slow_upload_finishes_records_and_exits_zero(tmp_path, slow_x, workers) -> None:
    """The upload in flight at SIGTERM completes, is recorded as published, and the worker exits 0."""
    proc, log, engine, account, tag = _start_upload(tmp_path, slow_x, workers)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    [post] = slow_x.posts(account)
    assert post.text.startswith(f"Free Andrei and Irina {tag}") and post.media
    with engine.connect() as conn:
        [row] = list(conn.execute(sa.select(publications)))
    assert (row.state, row.remote_id) == ("published", post.remote_id)
    logged = events(log)
    [stopping] = [e for e in logged if e["event"] == "worker_stopping"]
    assert stopping["in_flight"] >= 1  # the warm stop began while the publication was still running
    order = [e["event"] for e in logged if e["event"] in ("worker_stopping", "post_published", "worker_stopped")]
    assert order == ["worker_stopping", "post_published", "worker_stopped"]


@pytest.mark.slow
def test_second_signal_exits_at_once_with_an_error_code(tmp_path, slow_x, workers) -> None:
    """A second SIGTERM does not wait for the upload: the process exits non-zero right away."""
    proc, log, engine, account, tag = _start_upload(tmp_path, slow_x, workers)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # let the first signal's warm stop begin (this is not waiting for a schedule)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 3.0  # the upload still had two 1.5 s answers to wait for
    assert any(e["event"] == "worker_killed" for e in events(log))
