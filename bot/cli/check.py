"""``bot check``: validate every campaign file and report all problems at once."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.campaign import Inspection, inspect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-warnings", action="store_true", help="print errors only (warnings still never fail the check)"
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="also ask each Mastodon account's server (credentials from the environment, as the worker reads them) "
        "which posts' media it will refuse, and whether the bot is an administrator allowed to post in each "
        "Telegram channel",
    )
    parser.add_argument(
        "--explain-word",
        metavar="WORD",
        help='show what a blocked word (or phrase, or ="exact form") matches, with disguises it catches, and stop',
    )


def main(args: argparse.Namespace) -> int:
    """Exit 1 listing every problem when there are errors; 0 with a one-line summary otherwise."""
    if args.explain_word is not None:
        from bot.resharing.matching import explain, variants

        print("\n".join(explain(args.explain_word, variants(args.explain_word))))
        return 0
    result = inspect(args.campaign)
    errors, warnings = result.errors, ([] if args.no_warnings else result.warnings)
    if args.online and result.campaign is not None:
        refused, unasked = online(result.campaign)
        errors, warnings = errors + refused, warnings + ([] if args.no_warnings else unasked)
    for line in sorted(errors + warnings, key=_order):
        print(line)
    if errors:
        print(f"{len(errors)} error{_s(errors)}, {len(result.warnings)} warning{_s(result.warnings)}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0


def online(campaign: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) from the accounts' servers: media they will refuse, servers that did not answer."""
    from bot.observability.logs import configure
    from bot.platforms.mastodon.online import refused_media
    from bot.publishing.adapters import build_adapter

    configure(stream=sys.stderr, level="warning")  # the adapters' own notes, redacted, apart from the report
    built: list[Any] = []
    host_problems, host = media_host_online(campaign)

    def adapter_for(account: Any) -> Any:
        built.append(build_adapter(account, timeout=15.0, media_host=host))
        return built[-1]

    try:
        refused, unasked = refused_media(campaign, adapter_for)
        from bot.platforms.telegram.online import unable_to_post

        barred, untried = unable_to_post(campaign, adapter_for)  # the bot is an administrator allowed to post
        from bot.platforms.threads.online import unable_to_track

        untrackable, unsearched = unable_to_track(campaign, adapter_for)  # Threads keyword search allowed
        return host_problems + refused + barred + untrackable, unasked + untried + unsearched
    finally:
        for adapter in built:
            adapter.close()


def media_host_online(campaign: Any) -> tuple[list[str], Any]:
    """(problems, host): the bucket written to, its presigned URL fetched and the object deleted, as platforms will."""
    if campaign.media_host is None:
        return [], None
    from bot.core.errors import MissingSecret
    from bot.mediahost import from_settings, probe

    problems = probe(campaign.media_host)
    try:
        return problems, from_settings(campaign.media_host)
    except MissingSecret:  # probe said so already
        return problems, None


def summary(result: Inspection) -> str:
    c = result.campaign
    assert c is not None  # a campaign without errors was built
    slots = sum(len(s.slots) for s in c.schedules)
    n_warn = len(result.warnings)
    return (
        f"campaign '{c.name}' is valid: {len(c.accounts)} accounts, {len(c.posts)} posts "
        f"({len(c.queues)} queues), {len(c.schedules)} schedules with {slots} slots; "
        f"{n_warn} warning{'' if n_warn == 1 else 's'}"
    ) + _media_host_line(c)


def _media_host_line(campaign: Any) -> str:
    """Which accounts fetch media by URL, and from which bucket (nothing when none does)."""
    from bot.campaign.mediahost import needing

    accounts = needing(campaign.accounts)
    if not accounts:
        return ""
    bucket = campaign.media_host.bucket if campaign.media_host else "none"
    return f"\nmedia host: bucket '{bucket}' serves media to {', '.join(sorted(accounts))}"


def _order(line: str) -> tuple[str, int]:
    path, _, rest = line.partition(":")
    number = rest.partition(":")[0]
    return path, int(number) if number.isdigit() else 0


def _s(items: list[str]) -> str:
    return "" if len(items) == 1 else "s"
