"""Bluesky (AT Protocol): the atproto SDK against the account's PDS."""

from __future__ import annotations

from typing import ClassVar

import regex

from bot.platforms.base import Limits, Platform

MB = 1024 * 1024
_GRAPHEME = regex.compile(r"\X")


class Bluesky(Platform):
    name: ClassVar[str] = "bluesky"
    default_base_url: ClassVar[str] = "https://bsky.social"
    required_credentials: ClassVar[tuple[str, ...]] = ("app_password",)
    needs_handle: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        max_text=300,  # graphemes
        max_images=4,
        image_max_bytes=50 * MB,  # source cap: images are re-encoded to fit the 1,000,000-byte blob limit
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=100 * MB,
        video_max_seconds=180.0,
        video_formats=frozenset({"mp4"}),
        alt_max=2000,
        captions=True,
        images_reencoded=True,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        return len(_GRAPHEME.findall(text))
