"""The Mastodon adapter's contract against any Mastodon-API server, with a table of what worked.

Run against a real server (Mastodon, Takahē, GoToSocial, Akkoma...) with an account made for it:

    CONFORMANCE_BASE_URL=https://social.example CONFORMANCE_TOKEN=... .venv/bin/python bench/conformance.py

The token needs the scopes ``read write`` (or ``read:accounts read:statuses write:statuses
write:media``). Every step goes through the bot's own adapter (``bot.platforms.mastodon``), as
the worker would: instance detection, identity, a text post (then the same key again, which must
not post twice), an image with alt text, a video, a boost, reading back what was posted
(reconcile), the tag timeline. At the end everything it posted is deleted (``--keep`` leaves it).
Posts are unlisted-looking test texts tagged with a random tag; run it on a test account.

``--sandbox [FAMILY]`` runs it against the project's own Mastodon sandbox instead, optionally
answering as ``takahe``, ``gotosocial`` or ``akkoma`` (what ``make conformance`` is checked with here).
Exit status: 0 when no step failed, 1 otherwise. A server refusing what it does not list (a video
on Takahē) is "refused", and one working otherwise in a way the bot covers (Takahē posting a key
twice) "differs": neither is a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Account:
    """The slice of a campaign account the adapter reads."""

    id: str
    base_url: str
    platform: str = "mastodon"
    handle: str | None = None
    credentials: dict[str, str] = field(default_factory=lambda: {"access_token": "CONFORMANCE_TOKEN"})
    options: dict[str, Any] = field(default_factory=dict)


class Differs(Exception):
    """The server works otherwise than Mastodon in a way the bot covers (reported, not failed)."""


@dataclass
class Row:
    step: str
    result: str  # ok, refused, differs, failed
    detail: str
    ms: int


class Run:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def step(self, name: str, call: Callable[[], str]) -> bool:
        from bot.core.errors import ContentRejected

        started = time.monotonic()
        try:
            detail, result = call(), "ok"
        except ContentRejected as exc:
            detail, result = str(exc), "refused"
        except Differs as exc:
            detail, result = str(exc), "differs"
        except Exception as exc:  # noqa: BLE001  (every step is reported, whatever it raised)
            detail, result = f"{type(exc).__name__}: {exc}", "failed"
        self.rows.append(Row(name, result, detail, round((time.monotonic() - started) * 1000)))
        return result == "ok"

    def table(self) -> str:
        width = max(len(r.step) for r in self.rows)
        lines = [f"{'step'.ljust(width)}  result   ms      detail", f"{'-' * width}  -------  ------  ------"]
        for r in self.rows:
            detail = r.detail if len(r.detail) <= 110 else r.detail[:109] + "…"
            lines.append(f"{r.step.ljust(width)}  {r.result.ljust(7)}  {r.ms:>6}  {detail}")
        return "\n".join(lines)


def contract(base_url: str, token: str, media: Path, keep: bool) -> Run:
    from bot.core.values import ImageAttachment, Outgoing, VideoAttachment
    from bot.platforms.mastodon import Mastodon

    run = Run()
    adapter = Mastodon(Account("conformance", base_url), {"access_token": token}, timeout=60.0, processing_wait=300.0)
    tag = f"BotConformance{uuid.uuid4().hex[:6]}"
    posted: list[str] = []

    def out(text: str, **kwargs: Any) -> Outgoing:
        return Outgoing(key=f"conformance-{uuid.uuid4().hex}", text=f"{text} #{tag}", language="en", **kwargs)

    def instance() -> str:
        info = adapter.server()
        kinds = ", ".join(sorted(info.mime_types)) if info.mime_types is not None else "not listed"
        return (
            f"{info.label} via {info.source}; max_characters {info.max_characters}; media types: {kinds}; "
            f"video limit {info.video_size_limit}; streams: {'yes' if info.streams else 'no, polls'}"
        )

    def whoami() -> str:
        me = adapter.whoami()
        return f"{me.handle} (id {me.id})"

    text = out("Conformance check: a text post")

    def publish(item: Outgoing) -> Callable[[], str]:
        def call() -> str:
            receipt = adapter.publish(item)
            posted.append(receipt.remote_id)
            return f"id {receipt.remote_id} {receipt.url}"

        return call

    def same_key_again() -> str:
        again = adapter.publish(text)
        if again.remote_id in posted:
            return f"same status {again.remote_id}: Idempotency-Key honoured"
        posted.append(again.remote_id)
        raise Differs(f"a second status {again.remote_id}: the server ignores Idempotency-Key (the bot reconciles)")

    def reconcile() -> str:
        found = adapter.find_published(text)
        if found is None or found.remote_id not in posted:
            raise AssertionError("the text post was not found by reading the account's statuses")
        return f"found {found.remote_id} by reading the account's statuses"

    def boost() -> str:
        status = adapter.client.status(posted[0])
        receipt = adapter.reshare(adapter._mention(status))
        own = "own id" if receipt.remote_id != posted[0] else "the original's id (boost id not found)"
        posted.insert(0, receipt.remote_id)  # deleted first
        return f"boost {receipt.remote_id} ({own})"

    def timeline() -> str:
        page = adapter.fetch_mentions([tag], None)
        return f"{len(page.mentions)} statuses tagged #{tag}"

    def delete() -> str:
        gone = 0
        for remote_id in posted:
            adapter.client.status_delete(remote_id)
            gone += 1
        return f"{gone} statuses deleted"

    run.step("instance", instance)
    run.step("whoami", whoami)
    if run.step("publish text", publish(text)):
        run.step("same key again", same_key_again)
        run.step("find published", reconcile)
        run.step("boost", boost)
    banner = ImageAttachment(media / "banner.png", "A red banner: Free Andrei and Irina")
    run.step("image with alt text", publish(out("Conformance check: an image", images=(banner,))))
    clip = VideoAttachment(media / "clip.mp4", "Two seconds of a red title card")
    run.step("video", publish(out("Conformance check: a video", video=clip)))
    run.step("tag timeline", timeline)
    if not keep:
        run.step("delete", delete)
    adapter.close()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", nargs="?", const="mastodon", metavar="FAMILY", help="run against our sandbox")
    parser.add_argument("--keep", action="store_true", help="leave the posts on the server")
    args = parser.parse_args(argv)
    from bot.observability.logs import configure
    from sandboxes.media import make_banner, make_video

    configure(stream=sys.stderr, level="warning")  # the adapter's notes apart from the table, redacted

    with tempfile.TemporaryDirectory(prefix="conformance-") as folder:
        media = Path(folder)
        make_banner(media / "banner.png", "Free Andrei and Irina", (600, 300))
        make_video(media / "clip.mp4", seconds=2, size=(320, 240))
        if args.sandbox:
            from sandboxes.mastodon.sandbox import MastodonSandbox

            with MastodonSandbox() as sandbox:
                sandbox.impersonate(args.sandbox)  # type: ignore[attr-defined]
                account = sandbox.create_account(f"conformance{uuid.uuid4().hex[:4]}")
                (token,) = account.env.values()
                run = contract(sandbox.base_url, token, media, args.keep)
                where = f"sandbox answering as {args.sandbox}"
        else:
            base_url, token = os.environ.get("CONFORMANCE_BASE_URL"), os.environ.get("CONFORMANCE_TOKEN")
            if not base_url or not token:
                parser.error("set CONFORMANCE_BASE_URL and CONFORMANCE_TOKEN, or pass --sandbox")
            run = contract(base_url, token, media, args.keep)
            where = base_url
    print(f"Mastodon adapter contract against {where}\n")
    print(run.table())
    failed = [r.step for r in run.rows if r.result == "failed"]
    print(f"\n{len(run.rows) - len(failed)} of {len(run.rows)} steps did not fail")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
