"""mastodon-mock behind our gateway: the Mastodon API the bot talks to in the demo and tests."""

from sandboxes.mastodon.sandbox import MastodonSandbox

__all__ = ["MastodonSandbox"]
