"""``bot plan --ics``: one iCalendar event per slot and platform, readable by an iCalendar parser."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from icalendar import Calendar

from bot import cli
from bot.campaign import load
from bot.cli.plan import build

REPO = Path(__file__).resolve().parents[2]


def test_ics_has_one_event_per_slot_and_platform_with_the_platform_text(tmp_path: Path, capsys) -> None:
    """The shipped campaign's first two days: as many events as (slot, platform) pairs, each at the slot in UTC,
    summary naming post, platform and accounts, description holding that platform's whole text."""
    out = tmp_path / "plan.ics"
    assert cli.main(["--campaign", str(REPO), "plan", "--from", "2022-01-12", "--days", "2", "--ics", str(out)]) == 0
    campaign = load(REPO)
    entries = build(campaign, date(2022, 1, 12), 2, datetime(2022, 1, 12, tzinfo=UTC), None)
    expected = sum(len({campaign.accounts[a].platform for a in e.accounts}) for e in entries)
    events = Calendar.from_ical(out.read_bytes()).walk("VEVENT")
    assert len(events) == expected > 0
    assert f"wrote {expected} events to {out}" in capsys.readouterr().out
    launch_x = next(e for e in events if str(e["summary"]).startswith("launch on x "))
    assert str(launch_x["summary"]) == "launch on x (x-index, x-article19)"
    assert launch_x.decoded("dtstart") == datetime(2022, 1, 12, 9, 0, tzinfo=UTC)
    assert campaign.posts["launch"].text_for("x") in str(launch_x["description"])
    assert len({str(e["uid"]) for e in events}) == len(events)
    assert all(len(line) <= 75 for line in out.read_bytes().split(b"\r\n"))  # RFC 5545 folding


def test_ics_uids_are_stable_across_runs(tmp_path: Path) -> None:
    """Writing the calendar twice gives the same event UIDs, so a subscribed calendar updates in place."""
    uids = []
    for name in ("a.ics", "b.ics"):
        path = tmp_path / name
        cli.main(["--campaign", str(REPO), "plan", "--from", "2022-01-12", "--days", "1", "--ics", str(path)])
        uids.append([str(e["uid"]) for e in Calendar.from_ical(path.read_bytes()).walk("VEVENT")])
    assert uids[0] == uids[1] and uids[0]
