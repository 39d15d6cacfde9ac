"""Media staged before a slot, so that at the slot each account makes one request: the post itself.

An anniversary post at 09:00 to hundreds of accounts is a post with a banner or a video. Its
upload (on X: initialize, append, finalize, alt text, and for video the processing) takes a
second or more, and at the slot every account of the fan-out would wait for it. A few minutes
before the slot the worker asks each platform that can (``Platform.stage_group`` > 0; today X,
whose uploads are shared with up to 100 other accounts) to upload the post's media for its
accounts of the slot, one call per group of ``stage_group`` accounts, in parallel.

Staging posts nothing and records nothing in the ledger: it only warms what publishing would do
at the slot. When it fails, or the post changed, or the worker restarted, publishing uploads at
the slot as before (``media_stage_failed`` says why). X keeps an upload usable for 24 hours.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog

from bot.core.errors import BotError
from bot.ledger.publications import PublicationKey
from bot.schedule import occurrence_of

log = structlog.get_logger("bot.publishing.staging")

AHEAD = timedelta(minutes=10)  # how long before a slot its media is staged
EVERY = 60.0  # clock seconds between looks at the slots coming up


def lanes(publisher: Any, occ: Any) -> list[Callable[[], None]]:
    """One call per group of accounts whose platform stages: each uploads ``occ``'s media for its group."""
    campaign = publisher.campaign
    post = _post_with_media(campaign, occ.post)
    if post is None:
        return []
    groups: dict[tuple[str, str | None], list[tuple[Any, Any]]] = {}
    for account, adapter in publisher.adapters.ready(campaign.accounts, occ.accounts):
        if adapter.stage_group > 0:
            groups.setdefault((account.platform, getattr(adapter, "base_url", None)), []).append((account, adapter))
    found: list[Callable[[], None]] = []
    for members in groups.values():
        size = members[0][1].stage_group
        for start in range(0, len(members), size):
            group = members[start : start + size]
            found.append(functools.partial(_stage, campaign, post, occ, group))
    return found


def _stage(campaign: Any, post: Any, occ: Any, group: list[tuple[Any, Any]]) -> None:
    (account, adapter), others = group[0], [a for _, a in group[1:]]
    key = PublicationKey(campaign.name, occ.at, occ.target, account.id)
    context = dict(
        campaign=campaign.name,
        post=post.id,
        account=account.id,
        platform=account.platform,
        slot=key.slot_iso,
        accounts=len(group),
    )
    started = time.monotonic()
    try:
        staged = adapter.stage(post.outgoing(account.platform, key.token(), account.language), others)
    except BotError as err:
        log.warning("media_stage_failed", reason=type(err).__name__, error=str(err), **context)
        return
    except Exception as exc:
        log.exception("media_stage_failed", reason="internal_error", error=f"{type(exc).__name__}: {exc}", **context)
        return
    if staged:
        log.info("media_staged", duration_ms=round((time.monotonic() - started) * 1000), **context)


def _post_with_media(campaign: Any, post_id: str | None) -> Any:
    """The post ``post_id`` when it has media to stage; None for a text post or a queue slot (chosen at the slot)."""
    post = campaign.posts.get(post_id) if post_id else None
    return post if post is not None and (post.media or post.video) else None


class Stager:
    """Finds the slots due within ``ahead`` (``AHEAD``, or more under a fast clock) and hands their staging to the worker's pool, once per slot time."""

    def __init__(
        self, publisher: Any, clock: Any, submit: Callable[[Callable[[], None]], None], *, every: float = EVERY
    ) -> None:
        self.publisher = publisher
        self.clock = clock
        self.submit = submit
        self.every = every
        # Looks come every ``every`` clock seconds: look far enough ahead that no slot falls between two.
        self.ahead = max(AHEAD, timedelta(seconds=2 * every))
        self._lock = threading.Lock()
        self._staged: set[tuple[str, Any]] = set()  # (slot job id, run time) already handed over

    def look(self, slots: dict[str, Any], next_run: Callable[[str], Any]) -> int:
        """Stage every slot of ``slots`` whose next run (``next_run(job_id)``) is within ``ahead``; lanes handed over."""
        handed = 0
        with self._lock:
            now = self.clock.now()
            self._staged = {seen for seen in self._staged if seen[1] > now}
            for job_id, slot in slots.items():
                at = next_run(job_id)
                if at is None or not now < at <= now + self.ahead or (job_id, at) in self._staged:
                    continue
                if _post_with_media(self.publisher.campaign, slot.slot.post) is None:
                    continue  # nothing to stage, and no occurrence built for it
                self._staged.add((job_id, at))
                for lane in lanes(self.publisher, occurrence_of(slot.schedule, slot.slot, at)):
                    self.submit(lane)
                    handed += 1
        return handed
