"""Local sandbox platforms on loopback: what the demo, the tests and the benchmarks talk to.

Each sandbox starts real servers speaking a platform's API (our fake X API v2
server, mastodon-mock, the reference AT Protocol servers) so the bot runs its
production code paths against them; only base URLs differ.
"""

from __future__ import annotations

import importlib

from sandboxes.base import Sandbox, SandboxAccount, ServerPost

REGISTRY: dict[str, str] = {
    "x": "sandboxes.x.sandbox:XSandbox",
    "mastodon": "sandboxes.mastodon.sandbox:MastodonSandbox",
    "bluesky": "sandboxes.bluesky.sandbox:BlueskySandbox",
    "facebook": "sandboxes.graph.sandbox:FacebookSandbox",
    "instagram": "sandboxes.graph.sandbox:InstagramSandbox",
    "threads": "sandboxes.graph.sandbox:ThreadsSandbox",
    "telegram": "sandboxes.telegram.sandbox:TelegramSandbox",
    "linkedin": "sandboxes.linkedin.sandbox:LinkedInSandbox",
}


def sandbox_class(platform: str) -> type[Sandbox]:
    module, _, name = REGISTRY[platform].partition(":")
    return getattr(importlib.import_module(module), name)


__all__ = ["REGISTRY", "Sandbox", "SandboxAccount", "ServerPost", "sandbox_class"]
