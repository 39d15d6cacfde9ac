"""X (API v2): tweepy's v2 Client on a configurable host, plus the v2 chunked media upload."""

from __future__ import annotations

from typing import ClassVar

from bot.platforms.base import Limits, Platform

MB = 1024 * 1024


class X(Platform):
    name: ClassVar[str] = "x"
    default_base_url: ClassVar[str] = "https://api.x.com"
    required_credentials: ClassVar[tuple[str, ...]] = (
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    )
    limits: ClassVar[Limits] = Limits(
        max_text=280,
        max_images=4,
        image_max_bytes=5 * MB,
        image_formats=frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        video_max_bytes=512 * MB,
        video_max_seconds=140.0,
        video_formats=frozenset({"mp4", "mov"}),
        alt_max=1000,
        captions=True,
    )

    @classmethod
    def measure_text(cls, text: str) -> int:
        from twitter_text import parse_tweet  # weighted length: CJK/emoji count 2, URLs 23

        return parse_tweet(text).weightedLength
