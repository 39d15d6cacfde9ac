"""Upload progress: rate-limited upload_progressed lines in JSON mode, rich bars on a terminal, wired into the worker."""

from __future__ import annotations

import io
import time
import uuid
from datetime import UTC, datetime

import pytest
from rich.console import Console
from structlog.testing import capture_logs

from bot.core.clock import FakeClock
from bot.observability.progress import MIN_BYTES, LogProgress, TerminalProgress
from bot.worker.runtime import Worker
from sandboxes.media import make_video
from tests.worker.campaigns import dump, write_campaign

MB = 1024 * 1024


def ctx(post: str = "v1", attempt: int = 1) -> dict:
    return {
        "campaign": "free",
        "post": post,
        "account": "x-article19",
        "platform": "x",
        "slot": "2022-01-12T09:00:00+00:00",
        "target": f"post:{post}",
        "attempt": attempt,
    }


class Ticks:
    """A settable monotonic time source."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progressed(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "upload_progressed"]


def test_json_progress_logs_at_most_every_five_seconds_plus_the_final_line() -> None:
    """Within one upload a line is logged only when 5 s passed since the last one, and the 100% line always once."""
    ticks = Ticks()
    report = LogProgress(monotonic=ticks)
    total = 20 * MB
    with capture_logs() as events:
        for at, sent in [
            (0.0, 1 * MB),
            (1.0, 2 * MB),
            (4.9, 3 * MB),
            (5.0, 4 * MB),
            (7.0, 5 * MB),
            (10.5, 6 * MB),
            (11.0, 7 * MB),
            (11.2, total),
            (11.3, total),
        ]:
            ticks.now = at
            report(ctx(), sent, total)
    lines = progressed(events)
    assert [(e["sent"], e["percent"]) for e in lines] == [(1 * MB, 5.0), (4 * MB, 20.0), (6 * MB, 30.0), (total, 100.0)]
    assert {k: lines[0][k] for k in ("campaign", "post", "account", "platform", "total")} == {
        "campaign": "free",
        "post": "v1",
        "account": "x-article19",
        "platform": "x",
        "total": total,
    }


def test_json_progress_limits_each_upload_on_its_own() -> None:
    """Two uploads in flight at once each get their own 5-second budget; a retried attempt starts afresh."""
    ticks = Ticks()
    report = LogProgress(monotonic=ticks)
    with capture_logs() as events:
        report(ctx("a"), MB, 10 * MB)
        report(ctx("b"), MB, 10 * MB)
        ticks.now = 1.0
        report(ctx("a"), 2 * MB, 10 * MB)
        report(ctx("a", attempt=2), MB, 10 * MB)
    assert [(e["post"], e["sent"]) for e in progressed(events)] == [("a", MB), ("b", MB), ("a", MB)]


def test_small_uploads_log_no_progress() -> None:
    """A post whose files total under about 1 MB logs no progress at all, not even its 100% line."""
    report = LogProgress(monotonic=Ticks())
    with capture_logs() as events:
        report(ctx(), MIN_BYTES // 2, MIN_BYTES - 1)
        report(ctx(), MIN_BYTES - 1, MIN_BYTES - 1)
    assert progressed(events) == []


def test_terminal_bars_come_and_go_with_their_uploads() -> None:
    """Each large upload in flight has a bar; it is removed at 100% and the display stops when none is left."""
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    bars = TerminalProgress(console=console)
    bars(ctx("a"), MB, 10 * MB)
    bars(ctx("b"), 2 * MB, 20 * MB)
    bars(ctx("small"), 10, 100)
    assert sorted(t.description for t in bars.bars.tasks) == ["x-article19 a", "x-article19 b"]
    assert bars.bars.live.is_started
    bars(ctx("a"), 10 * MB, 10 * MB)
    assert [t.description for t in bars.bars.tasks] == ["x-article19 b"]
    bars(ctx("b"), 20 * MB, 20 * MB)
    assert bars.bars.tasks == [] and not bars.bars.live.is_started


@pytest.mark.slow
def test_worker_logs_progress_of_a_twenty_mb_video_on_x(tmp_path, x_sandbox, monkeypatch) -> None:
    """A worker uploading a 20 MB video to the X sandbox logs upload_progressed lines ending at 100%, at the sane rate."""
    account = x_sandbox.create_account(f"p{uuid.uuid4().hex[:8]}")
    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    size = (
        make_video(tmp_path / "posts" / "media" / "big.mp4", seconds=2, size=(640, 360), target_bytes=20 * MB)
        .stat()
        .st_size
    )
    write_campaign(
        tmp_path,
        [account],
        schedules={
            "launch": {
                "timezone": "UTC",
                "window": {"start": "2022-01-12", "end": "2022-01-20"},
                "slots": [{"at": "2022-01-12T09:00", "post": "film", "accounts": [account.id]}],
            }
        },
    )
    dump(
        tmp_path / "posts" / "film.yaml",
        {
            "text": "Twenty megabytes of solidarity #FreeAndreiandIrina",
            "video": "media/big.mp4",
            "alt": "Red title cards with white text",
            "supporter": {"name": "E. Supporter"},
            "consent": {"given": True, "date": "2022-01-08", "recorded_by": "team"},
        },
    )
    worker = Worker(
        tmp_path,
        clock=FakeClock(datetime(2022, 1, 12, 9, 0, tzinfo=UTC)),
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        threads=2,
    )
    started = time.monotonic()
    try:
        with capture_logs() as events:
            worker.start()
            worker.run_pending()
    finally:
        worker.close()
    elapsed = time.monotonic() - started
    assert [e["event"] for e in events if e["event"] == "post_published"] == ["post_published"], events
    lines = progressed(events)
    assert lines[-1]["sent"] == lines[-1]["total"] == size and lines[-1]["percent"] == 100.0
    assert all(
        e["campaign"] and e["post"] == "film" and e["account"] == account.id and e["platform"] == "x" for e in lines
    )
    assert [e["sent"] for e in lines] == sorted(e["sent"] for e in lines)
    # One line when the upload starts, then at most one per 5 wall seconds, then the final one.
    assert 2 <= len(lines) <= 2 + int(elapsed // 5)
