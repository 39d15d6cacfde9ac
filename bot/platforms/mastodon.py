"""Mastodon: Mastodon.py against the account's instance."""

from __future__ import annotations

import re
from typing import ClassVar

from bot.platforms.base import AccountLike, Limits, Platform

MB = 1024 * 1024
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w", re.UNICODE)


class Mastodon(Platform):
    name: ClassVar[str] = "mastodon"
    required_credentials: ClassVar[tuple[str, ...]] = ("access_token",)
    supports_streaming: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        max_text=500,  # the instance may say otherwise: accounts.yaml `max_characters`, or /api/v2/instance
        max_images=4,
        image_max_bytes=16 * MB,
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=99 * MB,
        video_max_seconds=3600.0,
        video_formats=frozenset({"mp4", "mov", "webm"}),
        alt_max=1500,
        captions=False,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        # Mastodon counts every URL as 23 characters and a remote mention by its local part.
        text = _URL.sub("x" * 23, text)
        text = _REMOTE_MENTION.sub(r"\1", text)
        return len(text)

    @classmethod
    def max_text_for(cls, account: AccountLike | None) -> int:
        if account is not None and account.options.get("max_characters"):
            return int(account.options["max_characters"])
        return cls.limits.max_text
