"""The demo's closing summary: what the ledger says happened, and what the sandbox servers hold."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
import structlog
from rich.console import Console
from rich.table import Table

from bot.ledger.db import open_engine
from bot.ledger.publications import Ledger
from bot.ledger.schema import decisions
from sandboxes import Sandbox

log = structlog.get_logger("sandboxes.demo")


def gather(workdir: Path) -> dict:
    """Publications per state with reasons, reshare decisions per status with reasons, from the ledger."""
    engine = open_engine(f"sqlite:///{workdir / 'state' / 'bot.db'}")
    try:
        ledger = Ledger(engine)
        published = ledger.recent(limit=1000)
        with engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(
                        decisions.c.status,
                        decisions.c.reason,
                        decisions.c.platform,
                        decisions.c.author,
                        decisions.c.url,
                        decisions.c.reshare_url,
                    )
                )
            )
        return {
            "publications": ledger.counts(),
            "not_published": ledger.skip_reasons(),
            "published": [
                {"post": r.post, "account": r.account, "platform": r.platform, "url": r.url, "remote_id": r.remote_id}
                for r in published
            ],
            "reshares": dict(Counter(r.status for r in rows)),
            "reshare_reasons": dict(Counter(f"{r.status}:{r.reason}" for r in rows)),
            "reshared": [
                {"platform": r.platform, "author": r.author, "url": r.url, "reshare_url": r.reshare_url}
                for r in rows
                if r.status == "done"
            ],
            # The campaign's own posts under the tag are skipped too; they are counted, not listed.
            "refused": [
                {"platform": r.platform, "author": r.author, "reason": r.reason, "url": r.url}
                for r in rows
                if r.status == "skipped" and r.reason != "own"
            ],
        }
    finally:
        engine.dispose()


def server_counts(sandboxes: dict[str, Sandbox]) -> dict[str, dict[str, int]]:
    """Posts and reshares the sandbox servers really hold, per platform."""
    counts = {}
    for platform, sandbox in sandboxes.items():
        posts = sandbox.posts()
        counts[platform] = {
            "posts": sum(1 for p in posts if not p.reshare_of),
            "reshares": sum(1 for p in posts if p.reshare_of),
            "videos": sum(1 for p in posts if any(m.get("kind") == "video" for m in p.media)),
        }
    return counts


def campaign_counts(sandboxes: dict[str, Sandbox], published: list[dict]) -> dict[str, dict[str, int]]:
    """The campaign accounts' own posts on each server (not the supporters' the demo seeded): text only, with
    images that carry alt text, with a video."""
    # Posts: the ids the ledger recorded for its publications (the servers name authors each their own way:
    # matching handles found none of Bluesky's or LinkedIn's). Reshares: by the demo's sandbox handles.
    ids = {(row["platform"], row["remote_id"]) for row in published}

    def handle(name: str) -> str:  # "x-index", "@x_index", "bluesky-index.test" -> "x_index", "bluesky_index"
        return re.sub(r"\W", "_", name.lstrip("@").split("@")[0].split(".")[0])[:15]

    ours = {handle(row["account"]) for row in published}
    counts = {}
    for platform, sandbox in sandboxes.items():
        held = sandbox.posts()
        posts = [p for p in held if (platform, p.remote_id) in ids]
        reshares = [p for p in held if p.reshare_of and handle(p.author) in ours]
        counts[platform] = {
            "texts": sum(1 for p in posts if not p.media),
            "images_with_alt": sum(1 for p in posts if any(m.get("kind") == "image" and m.get("alt") for m in p.media)),
            "videos": sum(1 for p in posts if any(m.get("kind") == "video" for m in p.media)),
            "reshares": len(reshares),
        }
    return counts


def print_summary(workdir: Path, sandboxes: dict[str, Sandbox], elapsed: float) -> dict:
    """Log the summary as one event (for tools) and print it as tables (for people)."""
    summary = gather(workdir)
    summary["servers"] = server_counts(sandboxes)
    summary["campaign_posts"] = campaign_counts(sandboxes, summary["published"])
    log.info(
        "demo_finished",
        elapsed_s=round(elapsed, 1),
        publications=summary["publications"],
        not_published=summary["not_published"],
        reshares=summary["reshares"],
        reshare_reasons=summary["reshare_reasons"],
        servers=summary["servers"],
        campaign_posts=summary["campaign_posts"],
        ledger=str(workdir / "state" / "bot.db"),
    )
    console = Console(stderr=True)
    table = Table(title="Published (latest first)")
    for column in ("post", "account", "platform", "url"):
        table.add_column(column)
    for row in summary["published"][:25]:
        table.add_row(row["post"] or "", row["account"], row["platform"] or "", row["url"] or "")
    console.print(table)
    servers = Table(title="The campaign's posts on each platform's server")
    for column in ("platform", "text posts", "with images (alt text)", "with video", "reshares"):
        servers.add_column(column)
    for platform, held in sorted(summary["campaign_posts"].items()):
        servers.add_row(platform, *(str(held[k]) for k in ("texts", "images_with_alt", "videos", "reshares")))
    console.print(servers)
    refused = Table(title="Reshares refused by the policy")
    for column in ("platform", "author", "reason"):
        refused.add_column(column)
    for row in summary["refused"]:
        refused.add_row(row["platform"], row["author"], row["reason"])
    console.print(refused)
    console.print(
        f"published {summary['publications'].get('published', 0)}, "
        f"skipped/failed {summary['not_published'] or 'none'}, "
        f"reshares {summary['reshares'] or 'none'}; "
        f"`bot --campaign {workdir} status` reads the same ledger."
    )
    return summary
