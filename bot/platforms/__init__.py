"""Platform adapters, one module per platform, keyed by the ``platform:`` names staff write in YAML.

Platform modules import their client libraries lazily, so ``bot check`` can read
limits without paying for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, MutableMapping

from bot.platforms.base import Platform, surely_fits

# Each platform's adapter class, as "module:Class": imported at its first look-up, so a worker imports
# the adapters of the platforms its campaign uses, not all of them (about 0.1 MB of memory each).
ADAPTERS: dict[str, str] = {
    "x": "bot.platforms.x:X",
    "mastodon": "bot.platforms.mastodon:Mastodon",
    "bluesky": "bot.platforms.bluesky:Bluesky",
    "facebook": "bot.platforms.facebook:Facebook",
    "instagram": "bot.platforms.instagram:Instagram",
    "threads": "bot.platforms.threads:Threads",
    "telegram": "bot.platforms.telegram:Telegram",
    "linkedin": "bot.platforms.linkedin:LinkedIn",
}


class _Registry(MutableMapping[str, type[Platform]]):
    """The platform classes by ``platform:`` name; a class is imported when first looked up."""

    def __init__(self, adapters: dict[str, str]) -> None:
        self._where = dict(adapters)
        self._loaded: dict[str, type[Platform]] = {}

    def __getitem__(self, name: str) -> type[Platform]:
        cls = self._loaded.get(name)
        if cls is None:
            module, _, attr = self._where[name].partition(":")  # KeyError: not a platform
            cls = self._loaded[name] = getattr(importlib.import_module(module), attr)
        return cls

    def __setitem__(self, name: str, cls: type[Platform]) -> None:
        self._where[name] = f"{cls.__module__}:{cls.__qualname__}"
        self._loaded[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where


REGISTRY: MutableMapping[str, type[Platform]] = _Registry(ADAPTERS)


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
        REGISTRY[name]  # the adapter class is imported at its first look-up: here, not in a slot
        for module in CLIENT_MODULES.get(name, ()):
            importlib.import_module(module)
    for platform, text in texts:
        cls = REGISTRY[platform]
        if not surely_fits(text, cls.limits.max_text):
            cls.measure_text(text)
