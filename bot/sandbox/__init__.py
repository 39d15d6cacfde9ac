"""Local sandbox platforms on loopback: what the demo, the tests and the benchmarks talk to.

Each sandbox starts real servers speaking a platform's API (our fake X API v2
server, mastodon-mock, the reference AT Protocol servers) so the bot runs its
production code paths against them; only base URLs differ.
"""

from __future__ import annotations

import importlib

from bot.sandbox.base import Sandbox, SandboxAccount, ServerPost

REGISTRY: dict[str, str] = {
    "x": "bot.sandbox.x:XSandbox",
    "mastodon": "bot.sandbox.mastodon:MastodonSandbox",
    "bluesky": "bot.sandbox.bluesky:BlueskySandbox",
}


def sandbox_class(platform: str) -> type[Sandbox]:
    module, _, name = REGISTRY[platform].partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = ["REGISTRY", "Sandbox", "SandboxAccount", "ServerPost", "sandbox_class"]
