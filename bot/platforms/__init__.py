"""Platform adapters, one module per platform, keyed by the ``platform:`` names staff write in YAML.

Platform modules import their client libraries lazily, so ``bot check`` can read
limits without paying for them.
"""

from __future__ import annotations

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
