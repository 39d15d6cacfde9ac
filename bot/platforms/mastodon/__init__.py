"""Mastodon-API servers through Mastodon.py: statuses with ``Idempotency-Key``, media, boosts, tag timelines and streaming."""

from bot.platforms.mastodon.adapter import Mastodon

__all__ = ["Mastodon"]
