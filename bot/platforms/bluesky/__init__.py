"""Bluesky (AT Protocol) through the atproto SDK: records with deterministic keys, blobs, the video service, search."""

from bot.platforms.bluesky.adapter import Bluesky

__all__ = ["Bluesky"]
