"""Platform adapters, one module per platform, keyed by the ``platform:`` names staff write in YAML.

Platform modules import their client libraries lazily, so ``bot check`` can read
limits without paying for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from bot.platforms.base import Platform
from bot.platforms.bluesky import Bluesky
from bot.platforms.mastodon import Mastodon
from bot.platforms.x import X

REGISTRY: dict[str, type[Platform]] = {
    "x": X,
    "mastodon": Mastodon,
    "bluesky": Bluesky,
}


def platform_class(name: str) -> type[Platform]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown platform {name!r} (known: {known})") from None


# What each adapter imports on first use. Together they take seconds (atproto about 5 s,
# twitter_text compiles its regexes in about 2 s): paid inside a slot, the first post is late.
CLIENT_MODULES: dict[str, tuple[str, ...]] = {
    "x": ("bot.platforms.x.text", "bot.platforms.x.client", "bot.platforms.x.upload"),
    "mastodon": ("mastodon", "mastodon.streaming"),
    "bluesky": ("atproto", "atproto_client", "bot.platforms.bluesky.media", "bot.platforms.bluesky.search"),
}


def warm_up(platforms: Iterable[str]) -> None:
    """Import these platforms' client libraries now (the worker calls it at start, off the slot path)."""
    for name in sorted(set(platforms)):
        for module in CLIENT_MODULES.get(name, ()):
            importlib.import_module(module)
