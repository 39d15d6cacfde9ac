"""Instagram: images (JPEG, with alt text), carousels of 2 to 10 images, Reels; never a text-only post.

Publishing (https://developers.facebook.com/docs/instagram-platform/content-publishing/): ``POST /me/media``
makes a container from a public URL Instagram downloads itself (our media host's expiring URL), ``GET
/{container}?fields=status_code`` until FINISHED, ``POST /me/media_publish?creation_id=``. Exactly once through the
container id kept in the publication's notes (``bot.platforms.graph.containers``). There is no repost API and
hashtag search needs app review, so Instagram accounts publish and do not track.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from bot.core.errors import ContentRejected, PermanentError
from bot.core.values import Identity, Limits, Mention, MentionPage, Outgoing, Receipt
from bot.platforms.graph.containers import INSTAGRAM, ContainerPlatform, Product

MB = 1024 * 1024
HASHTAG = re.compile(r"(?<!\w)#\w+")
MENTION = re.compile(r"(?<![\w@])@[\w.]+")


def aspect_refusal(width: int | None, height: int | None, low: float, high: float, what: str) -> str | None:
    if not width or not height:
        return None
    ratio = width / height
    if low - 0.005 <= ratio <= high + 0.005:
        return None
    return f"is {width}x{height} (aspect ratio {ratio:.2f}:1); instagram takes {what}"


class Instagram(ContainerPlatform):
    name: ClassVar[str] = "instagram"
    default_base_url: ClassVar[str] = "https://graph.instagram.com"
    refresh_grant: ClassVar[str | None] = "ig_refresh_token"  # long-lived tokens of Instagram Login, 60 days
    product: ClassVar[Product] = INSTAGRAM
    carousel_refusal: ClassVar[type[PermanentError]] = ContentRejected
    supports_tracking: ClassVar[bool] = False  # no repost API; hashtag search needs app review
    video_alt_text: ClassVar[bool] = False  # alt_text is documented for images only
    needs_media: ClassVar[bool] = True
    # IG User Media reference, Reels: ``cover_url``, a public URL of the cover image (Reels cover photo
    # specifications on the same page: JPEG, up to 8 MB, like feed images); ``bot check`` holds a post's
    # ``cover:`` to ``limits.image_formats`` and ``image_max_bytes``.
    video_cover: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits(
        # IG User Media reference (https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/
        # reference/ig-user/media): captions up to 2,200 characters, images JPEG up to 8 MB, carousels up to 10
        # items, Reels MP4/MOV up to 300 MB and 15 minutes.
        max_text=2200,
        max_images=10,
        image_max_bytes=8 * MB,
        image_formats=frozenset({"JPEG"}),
        video_max_bytes=300 * MB,
        video_max_seconds=900.0,
        video_formats=frozenset({"mp4", "mov"}),
        alt_max=1000,  # no published limit for alt_text; the bot keeps to the common 1,000
        captions=False,
        # content_publishing_limit (content publishing guide: 100 posts in 24 hours); read at run time too.
        posts_per_day=100,
        # No Reels-only cap: the content publishing guide's 100 posts in 24 hours counts Reels with the rest, and
        # the documented 30 Reels in 24 hours is Facebook Pages' (Reels Publishing API), set on the facebook adapter.
        videos_per_day=None,
    )

    @classmethod
    def text_refusals(cls, text: str) -> list[str]:
        # IG User Media reference, caption: "Maximum 30 hashtags" and "Maximum 20 @ tags".
        refusals = []
        tags = len(HASHTAG.findall(text))
        if tags > 30:
            refusals.append(f"has {tags} hashtags (expected at most 30 on instagram)")
        mentions = len(MENTION.findall(text))
        if mentions > 20:
            refusals.append(f"has {mentions} @ mentions (expected at most 20 on instagram)")
        return refusals

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        refusals: list[tuple[tuple[str | int, ...], str]] = []
        if not images and video is None:
            refusals.append((("media",), "instagram takes no text-only post: add an image or a video"))
        for i, info in enumerate(images):
            # IG User Media reference, image specifications: aspect ratio between 4:5 and 1.91:1.
            if info is not None and (why := aspect_refusal(info.width, info.height, 0.8, 1.91, "4:5 to 1.91:1")):
                refusals.append((("media", i, "file"), why))
        if video is not None:
            # Reels specifications (same page): aspect ratio 0.01:1 to 10:1 (9:16 recommended), 3 s to 15 minutes,
            # H.264 or HEVC video, AAC audio.
            if why := aspect_refusal(video.width, video.height, 0.01, 10.0, "Reels from 0.01:1 to 10:1 (9:16 best)"):
                refusals.append((("video",), why))
            if video.duration is not None and video.duration < 3:
                refusals.append((("video",), f"lasts {video.duration:.1f} s; instagram Reels last at least 3 s"))
            if video.video_codec and video.video_codec not in ("h264", "hevc"):
                refusals.append((("video",), f"is {video.video_codec} video; instagram takes H.264 or HEVC"))
            if video.audio_codec and video.audio_codec != "aac":
                refusals.append((("video",), f"has {video.audio_codec} audio; instagram takes AAC"))
        return refusals

    def validate(self, out: Outgoing) -> None:
        super().validate(out)
        if not out.images and out.video is None:
            raise ContentRejected("instagram takes no text-only post: add an image or a video")

    def _reshare(self, mention: Mention) -> Receipt:
        raise PermanentError("instagram has no repost API")

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        raise PermanentError("instagram hashtag search needs app review; the bot does not track on instagram")

    def _whoami(self) -> Identity:
        return super()._whoami()
