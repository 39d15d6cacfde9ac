"""What the platform test files share: a campaign account made from a sandbox account, its adapter, test media."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.core.errors import AuthFailed, ContentRejected, PlatformUnavailable, RateLimited
from bot.core.values import Outgoing
from bot.platforms import platform_class
from bot.platforms.base import Platform
from sandboxes.base import Sandbox, SandboxAccount
from sandboxes.media import make_banner, make_captions, make_video

_names = itertools.count()
S = TypeVar("S", bound=Sandbox)

FAULT_ERRORS = [
    ("rate_limited", RateLimited),
    ("unavailable", PlatformUnavailable),
    ("auth", AuthFailed),
    ("rejected", ContentRejected),
]
"""Each sandbox fault every platform answers, and the bot error it becomes at the adapter boundary."""


@dataclass
class Account:
    """The slice of a campaign account an adapter reads (the campaign model has the same fields)."""

    id: str
    platform: str
    base_url: str | None
    handle: str | None
    credentials: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)


def adapter_for(
    acct: SandboxAccount, *, secrets: dict[str, str] | None = None, options: dict[str, Any] | None = None, **kwargs: Any
) -> Platform:
    """The adapter of ``acct`` with its sandbox secrets (``secrets`` overrides some, e.g. a wrong one)."""
    entry = acct.entry
    account = Account(
        acct.id,
        entry["platform"],
        entry.get("base_url"),
        entry.get("handle"),
        dict(entry["credentials"]),
        {**entry.get("options", {}), **(options or {})},
    )
    values = {role: acct.env[var] for role, var in account.credentials.items()}
    kwargs.setdefault("timeout", 10)
    return platform_class(account.platform)(account, {**values, **(secrets or {})}, **kwargs)


def restored(sandbox: S) -> Iterator[S]:
    """A fixture's body: the session's sandbox, put back to its defaults after the test."""
    yield sandbox
    sandbox.restore_defaults()


def opened(acct: SandboxAccount, **kwargs: Any) -> Iterator[Platform]:
    """A fixture's body: the adapter of ``acct`` (as ``adapter_for``), closed after the test."""
    platform = adapter_for(acct, **kwargs)
    yield platform
    platform.close()


def media_folder(
    root: Path,
    *,
    banner_size: tuple[int, int],
    clip: str,
    seconds: int,
    clip_size: tuple[int, int],
    captions: list[str],
) -> Path:
    """Four banners ``banner-0.png`` .. ``banner-3.png``, and a video ``<clip>.mp4`` with captions ``<clip>.vtt``."""
    for n in range(4):
        make_banner(root / f"banner-{n}.png", f"Free Andrei and Irina ({n + 1}/4)", banner_size)
    make_video(root / f"{clip}.mp4", seconds=seconds, size=clip_size)
    make_captions(root / f"{clip}.vtt", captions, seconds=seconds)
    return root


def fresh_name(prefix: str = "idx") -> str:
    return f"{prefix}{next(_names)}{uuid.uuid4().hex[:4]}"


def outgoing(text: str, **kwargs: Any) -> Outgoing:
    return Outgoing(key=f"test:{uuid.uuid4().hex}", text=text, **kwargs)


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
