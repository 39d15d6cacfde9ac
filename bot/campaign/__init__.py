"""The campaign files: loading with line numbers, validation, every ``bot check`` rule.

``load(root)`` returns a ``Campaign`` (the plain model in ``bot.core.model``) or raises
``ConfigError`` listing every problem as ``path:line: message``; ``inspect(root)`` also returns
warnings. The long-running worker loads through ``isolated.load_isolated``: the same ``load`` in a
child process capped in memory and time. May import platforms (their limits), schedule, media,
observability and core.

The loader's names are imported on first use (PEP 562), so importing this package (the worker
does, for ``isolated`` and ``secrets``) does not load the YAML and pydantic stack.
"""

from typing import Any

from bot.campaign.secrets import missing_secrets, secret_problems
from bot.core.model import (
    Account,
    Campaign,
    Consent,
    Media,
    Policy,
    Post,
    ReshareConfig,
    Schedule,
    Slot,
    Supporter,
    Track,
    Video,
)

_LOADER = frozenset({"Inspection", "inspect", "load"})


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from bot.campaign import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'bot.campaign' has no attribute {name!r}")


__all__ = [
    "Account",
    "Campaign",
    "Consent",
    "Inspection",
    "Media",
    "Policy",
    "Post",
    "ReshareConfig",
    "Schedule",
    "Slot",
    "Supporter",
    "Track",
    "Video",
    "inspect",
    "load",
    "missing_secrets",
    "secret_problems",
]
