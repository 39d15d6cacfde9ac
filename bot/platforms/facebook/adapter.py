"""Facebook Page: text and links, photos with alt text, video with captions, vertical video as a Reel.

- Text: ``POST /me/feed`` (https://developers.facebook.com/docs/graph-api/reference/page/feed/).
- Photos: each ``POST /me/photos`` with ``published=false`` and ``alt_text_custom``, then one feed post with
  ``attached_media`` (https://developers.facebook.com/docs/graph-api/reference/page/photos/).
- Video: ``POST /me/videos`` resumable (``upload_phase`` start, transfer, finish), captions on
  ``/{video}/captions`` as SRT (https://developers.facebook.com/docs/video-api/guides/publishing).
- A vertical video goes out as a Reel (``/me/video_reels`` start, bytes to the upload URL, finish with
  ``video_state=PUBLISHED``: https://developers.facebook.com/docs/video-api/guides/reels-publishing), and is
  read back: one that did not end published is an error, never a silent draft.

No idempotency key. The time of the attempt (and a video's id) go to the notes before the call; after an unknown
outcome the Page's ``/published_posts`` are read back and matched by text from that time on; a video is looked up
by its id. When nothing can tell, ``OutcomeUnknown``: the publication waits for a person.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from bot.core.errors import ContentRejected, OutcomeUnknown, PermanentError
from bot.core.values import Limits, Mention, MentionPage, Outgoing, Progress, Receipt, VideoAttachment
from bot.platforms.graph.adapter import GraphPlatform
from bot.platforms.graph.client import GraphApiError

MB = 1024 * 1024
INTENT = "intent_at"
VIDEO = "video"
CLOCK_SKEW = 120.0  # seconds between our clock and Facebook's created_time we tolerate when matching
READ_BACK = 50  # recent published posts compared


class Facebook(GraphPlatform):
    name: ClassVar[str] = "facebook"
    default_base_url: ClassVar[str] = "https://graph.facebook.com"
    identity_fields: ClassVar[str] = "id,name"
    supports_tracking: ClassVar[bool] = False  # Pages cannot search public posts by hashtag
    video_alt_text: ClassVar[bool] = False  # videos take captions, not alt text
    limits: ClassVar[Limits] = Limits(
        # Page feed: 63,206 characters a post. Photos: JPEG, PNG, GIF, BMP, TIFF under 4 MB (Page photos
        # reference). Videos: up to 10 GB and 240 minutes (video API publishing guide); Reels 3 to 90 seconds.
        max_text=63206,
        max_images=10,
        image_max_bytes=4 * MB,
        image_formats=frozenset({"JPEG", "PNG", "GIF", "BMP", "TIFF"}),
        video_max_bytes=10 * 1024 * MB,
        video_max_seconds=240 * 60.0,
        video_formats=frozenset({"mp4", "mov"}),
        alt_max=1000,
        captions=True,
        posts_per_day=None,
        # Reels Publishing API (https://developers.facebook.com/docs/video-api/guides/reels-publishing/), Rate Limit:
        # "limited to 30 API-published posts within a 24-hour moving period", enforced on /{page_id}/video_reels.
        # Only vertical videos go out as Reels; the count takes every video post (the plan does not probe files).
        videos_per_day=30,
    )

    @classmethod
    def media_refusals(cls, images: Sequence[Any], video: Any | None) -> list[tuple[tuple[str | int, ...], str]]:
        refusals: list[tuple[tuple[str | int, ...], str]] = []
        if video is not None and _vertical(video.width, video.height) and video.duration is not None:
            # Reels publishing guide: 3 to 90 seconds, 9:16, at least 540x960.
            if not 3 <= video.duration <= 90:
                refusals.append(
                    (("video",), f"is vertical and lasts {video.duration:.0f} s; facebook Reels last 3 to 90 s")
                )
        return refusals

    def _publish(self, out: Outgoing, progress: Progress | None) -> Receipt:
        if out.video is not None:
            return self._video(out, out.video, progress)
        attached = []
        for image in out.images:
            with image.path.open("rb") as file:
                answer = self.client.post(
                    "me/photos",
                    {"published": "false", "alt_text_custom": image.alt},
                    files={"source": (image.path.name, file.read())},
                )
            attached.append(str(answer["id"]))
        fields: dict[str, Any] = {"message": out.text}
        for i, fbid in enumerate(attached):
            fields[f"attached_media[{i}]"] = f'{{"media_fbid":"{fbid}"}}'
        out.notes.put(INTENT, str(self._wall()))  # before the call: a lost answer is read back from this time on
        answer = self.client.post("me/feed", fields, write=True)
        return self._receipt(str(answer["id"]))

    def _receipt(self, post_id: str) -> Receipt:
        page, _, story = post_id.partition("_")
        return Receipt(remote_id=post_id, url=f"https://www.facebook.com/{page}/posts/{story or page}")

    # ---- video ----

    def _video(self, out: Outgoing, video: VideoAttachment, progress: Progress | None) -> Receipt:
        from bot.media import probe

        info = probe(video.path)
        data = video.path.read_bytes()
        if _vertical(info.width, info.height):
            return self._reel(out, data, progress)
        start = self.client.post("me/videos", {"upload_phase": "start", "file_size": str(len(data))})
        video_id, session = str(start["video_id"]), str(start["upload_session_id"])
        out.notes.put(VIDEO, video_id)
        offset, end = int(start["start_offset"]), int(start["end_offset"])
        while offset < len(data):
            part = self.client.post(
                "me/videos",
                {"upload_phase": "transfer", "upload_session_id": session, "start_offset": str(offset)},
                files={"video_file_chunk": (video.path.name, data[offset:end])},
            )
            offset, end = int(part["start_offset"]), int(part["end_offset"])
            if progress is not None:
                progress(offset, len(data))
        if video.captions is not None:
            # Captions are SRT files named ``*.{locale}.srt`` (video captions reference).
            locale = _locale(video.captions_lang)
            self.client.post(
                f"{video_id}/captions",
                {"locale": locale},
                files={"captions_file": (f"captions.{locale}.srt", vtt_to_srt(video.captions.read_text("utf-8")))},
            )
        out.notes.put(INTENT, str(self._wall()))
        self.client.post(
            "me/videos", {"upload_phase": "finish", "upload_session_id": session, "description": out.text}, write=True
        )
        # The Page post the video became is its id on the Page (the video node's post_id field).
        post_id = self.client.get(video_id, {"fields": "id,post_id"}).get("post_id")
        page = self._whoami().id
        return Receipt(remote_id=str(post_id or video_id), url=f"https://www.facebook.com/{page}/videos/{video_id}")

    def _reel(self, out: Outgoing, data: bytes, progress: Progress | None) -> Receipt:
        start = self.client.post("me/video_reels", {"upload_phase": "start"})
        video_id = str(start["video_id"])
        out.notes.put(VIDEO, video_id)
        self.client.post_raw(str(start["upload_url"]), data, {"offset": "0", "file_size": str(len(data))})
        if progress is not None:
            progress(len(data), len(data))
        out.notes.put(INTENT, str(self._wall()))
        self.client.post(
            "me/video_reels",
            {"upload_phase": "finish", "video_id": video_id, "video_state": "PUBLISHED", "description": out.text},
            write=True,
        )
        found = self._video_receipt(video_id)
        if found is None:
            raise ContentRejected(
                f"facebook kept reel {video_id} of account {self.account.id} unpublished (a draft): publish or delete "
                "it in Meta Business Suite; the bot does not post it again"
            )
        return found

    def _video_receipt(self, video_id: str) -> Receipt | None:
        answer = self.client.get(video_id, {"fields": "id,status,published,post_id"})
        if not answer.get("published"):
            return None
        return Receipt(
            remote_id=str(answer.get("post_id") or video_id), url=f"https://www.facebook.com/reel/{video_id}"
        )

    # ---- reconciling ----

    def _find_published(self, out: Outgoing) -> Receipt | None:
        video_id = out.notes.get(VIDEO)
        if video_id is not None:
            try:
                answer = self.client.get(video_id, {"fields": "id,status,published,post_id"})
            except GraphApiError as exc:
                if exc.code == 100 and exc.subcode == 33:
                    return None  # the upload never became a video: nothing is out
                raise
            if answer.get("published"):
                return Receipt(
                    remote_id=str(answer.get("post_id") or video_id), url=f"https://www.facebook.com/reel/{video_id}"
                )
            if out.notes.get(INTENT) is None:
                return None  # the upload never reached its finish call
            status = (answer.get("status") or {}).get("video_status")
            raise OutcomeUnknown(
                f"facebook video {video_id} of account {self.account.id} was finished but is not published "
                f"(status {status!r}): check the Page and resolve it by hand"
            )
        intent = out.notes.get(INTENT)
        if intent is None:
            return None  # the feed call was never made
        try:
            answer = self.client.get(
                "me/published_posts", {"fields": "id,message,created_time,permalink_url", "limit": READ_BACK}
            )
        except GraphApiError as exc:
            if exc.code in (10, 200) or 200 <= exc.code < 300:
                raise OutcomeUnknown(
                    f"facebook post of account {self.account.id} may have gone out and its published posts cannot be "
                    f"read back ({exc.describe()}): check the Page"
                ) from None
            raise
        since = float(intent) - CLOCK_SKEW
        wanted = self._comparable(out.text)
        matches = [
            d
            for d in self._data(answer)
            if self._comparable(str(d.get("message") or "")) == wanted and _epoch(d.get("created_time")) >= since
        ]
        if len(matches) > 1:
            raise OutcomeUnknown(
                f"{len(matches)} posts of account {self.account.id} match this publication's text since the attempt: "
                "check the Page and resolve it by hand"
            )
        if not matches:
            return None
        found = matches[0]
        return Receipt(remote_id=str(found["id"]), url=str(found.get("permalink_url") or ""))

    def _reshare(self, mention: Mention) -> Receipt:
        raise PermanentError("facebook pages do not reshare found posts")

    def _fetch_mentions(self, hashtags: Sequence[str], cursor: str | None) -> MentionPage:
        raise PermanentError("facebook pages cannot search public posts by hashtag")


def _vertical(width: int | None, height: int | None) -> bool:
    return bool(width and height and height > width)


def _locale(lang: str) -> str:
    lang = lang.replace("-", "_")
    return (
        lang
        if "_" in lang
        else {"en": "en_US", "ru": "ru_RU", "fr": "fr_FR", "de": "de_DE"}.get(lang, f"{lang}_{lang.upper()}")
    )


def _epoch(value: Any) -> float:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0


def vtt_to_srt(vtt: str) -> bytes:
    """WebVTT cues as SubRip: numbered, comma before the milliseconds, no header or cue settings."""
    cues, n = [], 0
    for block in re.split(r"\n\s*\n", vtt.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if at is None:
            continue
        n += 1
        start, _, rest = lines[at].partition("-->")
        end = rest.strip().split(" ")[0]
        times = " --> ".join(_srt_time(t.strip()) for t in (start, end))
        cues.append("\n".join([str(n), times, *lines[at + 1 :]]))
    return ("\n\n".join(cues) + "\n").encode("utf-8")


def _srt_time(value: str) -> str:
    if value.count(":") == 1:
        value = "00:" + value
    return value.replace(".", ",")
