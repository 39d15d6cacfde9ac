"""``python -m sandboxes.demo`` (``make demo``): the shipped campaign, played in compressed time against local sandbox platforms.

The demo starts the sandbox servers on loopback, copies the campaign into a work folder
with each account's ``base_url`` pointed at its sandbox (credential variable names are
kept; their values come from the sandbox), seeds supporters', partners' and a troll's
hashtag posts, then runs the ordinary worker (``bot run``) with a compressed clock.
Only base URLs and the clock differ from production.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import structlog
import yaml

from bot.observability import logs
from sandboxes import Sandbox, SandboxAccount, sandbox_class

log = structlog.get_logger("sandboxes.demo")
T = TypeVar("T")

CAMPAIGN_DIRS = ("posts", "schedules", "config")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--campaign",
        type=Path,
        default=Path(os.environ.get("BOT_CAMPAIGN_DIR", ".")),
        help="campaign folder to play (default: $BOT_CAMPAIGN_DIR or .)",
    )
    parser.add_argument("--days", type=float, default=3.0, help="campaign days to play (default 3)")
    parser.add_argument("--seconds", type=float, default=45.0, help="wall seconds to play them in (default 45)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the demo campaign and its ledger go (default: state/demo)"
    )
    parser.add_argument(
        "--platforms",
        default="x,mastodon,bluesky,linkedin,telegram,facebook,instagram,threads",
        help="sandboxes to start (default: x,mastodon,bluesky,linkedin,telegram,facebook,instagram,threads)",
    )


def main(args: argparse.Namespace) -> int:
    logs.configure()
    source = args.campaign.resolve()
    workdir = (args.workdir or source / "state" / "demo").resolve()
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    started = time.monotonic()
    with ExitStack() as stack:
        sandboxes = start_sandboxes(platforms, stack)
        media = start_media_host(platforms, stack)
        code, summary = run_demo(
            source, workdir, sandboxes, days=args.days, seconds=args.seconds, started=started, media=media
        )
    problems = demo_problems(summary)
    if problems:
        log.error("demo_incomplete", problems=problems)
    return code or (1 if problems else 0)


def demo_problems(summary: dict[str, Any]) -> list[str]:
    """What a healthy demo must show; anything missing means the newcomer saw a broken product."""
    problems = []
    if not summary["publications"].get("published"):
        problems.append("nothing was published")
    if summary["publications"].get("failed"):
        problems.append(f"{summary['publications']['failed']} publications failed")
    if not summary["reshares"].get("done"):
        problems.append("no hashtag post was reshared")
    if not summary["refused"]:
        problems.append("no post was refused by the reshare policy")
    return problems


def run_demo(
    source: Path,
    workdir: Path,
    sandboxes: dict[str, Sandbox],
    *,
    days: float,
    seconds: float,
    started: float | None = None,
    media: Any = None,
) -> tuple[int, dict[str, Any]]:
    """Play ``days`` of the campaign in ``source`` against running ``sandboxes``; return the exit code and summary.

    ``media``: a running ``sandboxes.s3.S3Sandbox`` the campaign's media host points at (platforms that fetch
    media by URL need one), or None.
    """
    started = time.monotonic() if started is None else started
    copy_campaign(source, workdir)
    if media is not None:
        use_media_host(workdir, media)
    else:  # no platform of this demo fetches media by URL: the shipped bucket settings would only ask for its keys
        (workdir / "config" / "media_host.yaml").unlink(missing_ok=True)
    provision_accounts(workdir, sandboxes)
    stretch_grace(workdir)
    cast = seed_hashtag_posts(workdir, sandboxes)
    start, end = demo_window(workdir, days)
    speed = (end - start).total_seconds() / seconds
    log.info(
        "demo_started",
        campaign_dir=str(workdir),
        campaign_start=start.isoformat(),
        campaign_end=end.isoformat(),
        speed=round(speed),
        sandboxes={p: s.base_url for p, s in sandboxes.items()},
    )
    later = threading.Timer(seconds / 3, lambda: post_live_mentions(sandboxes, cast))
    later.daemon = True
    later.start()
    # The status page while the demo plays, on a free port: the worker's http_started line gives its address.
    own_port = "BOT_HTTP_PORT" not in os.environ
    if own_port:
        os.environ["BOT_HTTP_PORT"] = "0"
    try:
        from bot.cli import main as cli_main

        code = cli_main(
            [
                "--campaign",
                str(workdir),
                "run",
                "--clock-start",
                start.isoformat(),
                "--clock-speed",
                f"{speed:.3f}",
                "--until",
                end.isoformat(),
                # One heartbeat per campaign quarter-day keeps the log readable at this speed.
                "--heartbeat",
                "21600",
                "--no-watch",
            ]
        )
    finally:
        later.cancel()
        if own_port:
            os.environ.pop("BOT_HTTP_PORT", None)
    from sandboxes.demo_summary import print_summary

    return code, print_summary(workdir, sandboxes, elapsed=time.monotonic() - started)


def start_sandboxes(platforms: list[str], stack: ExitStack) -> dict[str, Sandbox]:
    """Start every sandbox at once (the AT Protocol network takes longest); ``stack`` stops them all at once."""
    sandboxes = {p: sandbox_class(p)() for p in platforms}
    started: dict[str, Sandbox] = {}
    stack.callback(stop_sandboxes, started)
    with ThreadPoolExecutor(len(sandboxes)) as pool:
        futures = {p: pool.submit(s.start) for p, s in sandboxes.items()}
    errors = []
    for platform, future in futures.items():
        if future.exception() is not None:
            errors.append(future.exception())
            continue
        started[platform] = sandboxes[platform]
        log.info("sandbox_started", platform=platform, base_url=sandboxes[platform].base_url)
    if errors:
        raise errors[0]
    return sandboxes


def start_media_host(platforms: list[str], stack: ExitStack) -> Any:
    """A local S3-compatible bucket when a demo platform fetches media by URL (Instagram, Threads), else None."""
    from bot.platforms import REGISTRY

    if not any(getattr(REGISTRY.get(p), "needs_media_host", False) for p in platforms):
        return None
    from sandboxes.s3 import S3Sandbox

    media = S3Sandbox()
    stack.callback(media.stop)
    media.start()
    log.info("sandbox_started", platform="s3", base_url=media.endpoint_url)
    return media


def use_media_host(workdir: Path, media: Any) -> None:
    """Point the demo campaign's config/media_host.yaml at the local bucket and export its key variables."""
    path = workdir / "config" / "media_host.yaml"
    path.write_text(
        "# Written by `bot demo`: media served from a local S3-compatible bucket.\n"
        + yaml.safe_dump({"media_host": media.media_host_block()}, sort_keys=False),
        encoding="utf-8",
    )
    os.environ.update(media.env)


def stop_sandboxes(sandboxes: dict[str, Sandbox]) -> None:
    """Stop them side by side: the Bluesky network, PostgreSQL and redis each take a moment to close."""
    with ThreadPoolExecutor(max(1, len(sandboxes))) as pool:
        futures = {p: pool.submit(s.stop) for p, s in sandboxes.items()}
    for platform, future in futures.items():
        if future.exception() is not None:
            log.warning("sandbox_stop_failed", platform=platform, error=str(future.exception()))


def copy_campaign(source: Path, workdir: Path) -> None:
    """A fresh copy of the campaign files; the previous demo's ledger goes with the old copy."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for name in CAMPAIGN_DIRS:
        shutil.copytree(source / name, workdir / name)


def sandbox_name(account_id: str) -> str:
    return re.sub(r"\W", "_", account_id)[:15]


def provision_accounts(workdir: Path, sandboxes: dict[str, Sandbox]) -> dict[str, SandboxAccount]:
    """Create each campaign account on its sandbox; point accounts.yaml at it and export its secrets."""
    path = workdir / "config" / "accounts.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for account_id, entry in list(config["accounts"].items()):
        if entry["platform"] not in sandboxes:
            del config["accounts"][account_id]  # a platform the demo does not run
    made_by_id = per_platform(
        sandboxes,
        lambda platform, sandbox: {
            account_id: sandbox.create_account(sandbox_name(account_id))
            for account_id, entry in config["accounts"].items()
            if entry["platform"] == platform
        },
    )
    created: dict[str, SandboxAccount] = {}
    for account_id, entry in config["accounts"].items():
        made = created[account_id] = made_by_id[entry["platform"]][account_id]
        entry["base_url"] = made.entry["base_url"]
        entry["handle"] = made.entry.get("handle") or made.handle
        if made.entry.get("options"):  # e.g. the Bluesky sandbox's video service
            entry["options"] = {**entry.get("options", {}), **made.entry["options"]}
        for role, var in entry["credentials"].items():
            # Production reads the same variable names; only their values come from the sandbox.
            os.environ[var] = made.env[made.entry["credentials"][role]]
    path.write_text(
        "# Written by `bot demo`: the shipped accounts, pointed at local sandboxes.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    _drop_missing_accounts(workdir, set(created))
    return created


def per_platform(sandboxes: dict[str, Sandbox], work: Callable[[str, Sandbox], T]) -> dict[str, T]:
    """Run ``work`` on every sandbox at once (each waits on its own server); results by platform, in order."""
    with ThreadPoolExecutor(max(1, len(sandboxes))) as pool:
        futures = {platform: pool.submit(work, platform, sandbox) for platform, sandbox in sandboxes.items()}
        return {platform: future.result() for platform, future in futures.items()}


def stretch_grace(workdir: Path, grace: str = "12h") -> None:
    """Give each schedule a grace of ``grace`` campaign time.

    At thousands of times real speed, an hour of campaign time is under a wall second: a
    sandbox that stalls for a second under load would push retries past an hour's grace.
    Durations scale with the clock; nothing else in the schedules changes.
    """
    for path in (workdir / "schedules").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["grace"] = grace
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _drop_missing_accounts(workdir: Path, kept: set[str]) -> None:
    """Remove references to accounts whose platform the demo does not run (``--platforms``)."""
    for path in [*(workdir / "schedules").glob("*.yaml"), workdir / "config" / "reshare.yaml"]:
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for item in [*data.get("slots", []), *data.get("track", [])]:
            item["accounts"] = [a for a in item.get("accounts", []) if a in kept]
        for key in ("slots", "track"):
            if key in data:
                data[key] = [item for item in data[key] if item["accounts"]]
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def demo_window(workdir: Path, days: float) -> tuple[datetime, datetime]:
    """From a few minutes before the campaign's first slot, for ``days`` of campaign time."""
    from bot.campaign import load
    from bot.schedule.occurrences import occurrences

    campaign = load(workdir)
    far = datetime(2100, 1, 1).astimezone()
    early = datetime(1970, 1, 2).astimezone()
    first = occurrences(campaign, early, far)[0].at
    start = first - timedelta(minutes=5)
    return start, start + timedelta(days=days)


# ---- the hashtag cast: partners, supporters and a troll ----

SUPPORTERS = [
    ("press_freedom_now", "Press Freedom Now", "Free Andrei and Irina! Journalism is not a crime. #FreeAndreiandIrina"),
    (
        "lena_reports",
        "Lena, reporter",
        "One year behind bars for paying fines of protesters. Free them. #FreeAndreiandIrina",
    ),
    (
        "football_fan_lfc",
        "A Liverpool fan",
        "Andrei, Liverpool won the league, come home and celebrate! #FreeAndreiandIrina",
    ),
]
LIVE_SUPPORTERS = [
    ("depeche_mode_fan", "DM fan", "Playing 'Useless' loud tonight for Andrei. #FreeAndreiandIrina"),
]


def seed_hashtag_posts(workdir: Path, sandboxes: dict[str, Sandbox]) -> dict[str, Any]:
    """Partners, supporters and a troll post under the hashtag on every sandbox before the worker starts."""
    reshare_path = workdir / "config" / "reshare.yaml"
    config = yaml.safe_load(reshare_path.read_text(encoding="utf-8")) if reshare_path.exists() else None
    cast: dict[str, Any] = {"live": {}}
    if not config:
        return cast
    policy = config.setdefault("policy", {})
    blocked = [w for w in policy.get("blocked_words", [])] or ["traitors"]
    policy["blocked_words"] = blocked
    partners = [h.lstrip("@") for h in policy.get("always_from", [])]

    def seed(platform: str, sandbox: Sandbox) -> tuple[list[str], list[tuple[SandboxAccount, str]]]:
        handles = []
        for name in partners[:1]:
            partner = sandbox.create_account(sandbox_name(name))
            handles.append("@" + partner.handle.lstrip("@"))
            sandbox.post_as(partner, "A year since Andrei and Irina were detained. Join us: #FreeAndreiandIrina")
        for name, display, text in SUPPORTERS:
            sandbox.post_as(sandbox.create_account(sandbox_name(name), display_name=display), text)
        troll = sandbox.create_account("regime_voice", display_name="Regime voice")
        sandbox.post_as(troll, f"They are {blocked[0]} and deserve prison #FreeAndreiandIrina")
        sandbox.index()
        return handles, [(sandbox.create_account(sandbox_name(n), display_name=d), t) for n, d, t in LIVE_SUPPORTERS]

    for platform, (handles, live) in per_platform(sandboxes, seed).items():
        policy.setdefault("always_from", []).extend(handles)
        cast["live"][platform] = live
    # Compressed time: poll every campaign hour, which is well under a wall second.
    for track in config.get("track", []):
        track["interval"] = 3600
    reshare_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return cast


def post_live_mentions(sandboxes: dict[str, Sandbox], cast: dict[str, Any]) -> None:
    """A supporter posts while the worker runs: tracking picks it up live."""
    for platform, posts in cast.get("live", {}).items():
        for account, text in posts:
            try:
                sandboxes[platform].post_as(account, text)
                sandboxes[platform].index()
            except Exception as exc:  # noqa: BLE001  (the demo goes on; the summary shows what was reshared)
                log.warning("demo_live_post_failed", platform=platform, error=str(exc))


if __name__ == "__main__":
    import sys

    _parser = argparse.ArgumentParser(prog="python -m sandboxes.demo", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
