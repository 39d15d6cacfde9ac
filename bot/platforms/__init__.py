"""Platform adapters, one module per platform, keyed by the ``platform:`` names staff write in YAML.

Platform modules import their client libraries lazily, so ``bot check`` can read
limits without paying for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from bot.platforms.base import Platform, surely_fits
from bot.platforms.bluesky import Bluesky
from bot.platforms.facebook import Facebook
from bot.platforms.instagram import Instagram
from bot.platforms.linkedin import LinkedIn
from bot.platforms.mastodon import Mastodon
from bot.platforms.telegram import Telegram
from bot.platforms.threads import Threads
from bot.platforms.x import X

REGISTRY: dict[str, type[Platform]] = {
    "x": X,
    "mastodon": Mastodon,
    "bluesky": Bluesky,
    "facebook": Facebook,
    "instagram": Instagram,
    "threads": Threads,
    "telegram": Telegram,
    "linkedin": LinkedIn,
}


def platform_class(name: str) -> type[Platform]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown platform {name!r} (known: {known})") from None


# What each adapter imports on first use. Together they take seconds (atproto about 5 s): paid inside a
# slot, the first post is late. twitter-text (2 s, 10 MB) is not here: ``warm_up`` counts the texts that
# need it, which imports it only for a campaign with texts near X's limit.
CLIENT_MODULES: dict[str, tuple[str, ...]] = {
    "x": ("bot.platforms.x.client", "bot.platforms.x.upload"),
    "mastodon": ("mastodon", "mastodon.streaming"),
    "bluesky": ("atproto", "atproto_client", "bot.platforms.bluesky.media", "bot.platforms.bluesky.search"),
    "facebook": ("requests", "bot.platforms.graph.client"),
    "instagram": ("requests", "bot.platforms.graph.client"),
    "threads": ("requests", "bot.platforms.graph.client"),
    "telegram": ("telebot", "telebot.apihelper", "bot.platforms.telegram.errors", "bot.platforms.telegram.pacing"),
    "linkedin": ("requests", "bot.platforms.linkedin.client"),
}


def warm_up(platforms: Iterable[str], texts: Iterable[tuple[str, str]] = ()) -> None:
    """Import these platforms' client libraries now (the worker calls it at start, off the slot path),
    and count the (platform, text) pairs a slot would have to count exactly, so none pays for it late."""
    for name in sorted(set(platforms)):
        for module in CLIENT_MODULES.get(name, ()):
            importlib.import_module(module)
    for platform, text in texts:
        cls = REGISTRY[platform]
        if not surely_fits(text, cls.limits.max_text):
            cls.measure_text(text)
