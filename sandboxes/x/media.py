"""Media uploads of the fake X API v2: one-shot upload, chunked initialize/append/finalize,
STATUS polling through X's processing states, alt text metadata and subtitles."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandboxes.x import errors as err

MB = 1024 * 1024
CHUNK_MAX = 5 * MB
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/pjpeg", "image/tiff"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm", "video/mp2t"}
SUBTITLE_TYPES = {"text/vtt", "text/srt"}
CATEGORIES = {"tweet_image", "tweet_gif", "tweet_video", "amplify_video", "subtitles", "dm_image", "dm_gif", "dm_video"}
SIZE_CAP = {
    "tweet_image": 5 * MB,
    "tweet_gif": 15 * MB,
    "tweet_video": 512 * MB,
    "amplify_video": 512 * MB,
    "subtitles": MB,
}
EXPIRES = 86400
MAX_ADDITIONAL_OWNERS = 100  # X: "Up to 100 additional owners may be specified"


@dataclass
class Media:
    id: str
    owner: str
    category: str
    media_type: str
    total_bytes: int
    chunks: dict[int, bytes] = field(default_factory=dict)
    state: str = "uploading"  # uploading, pending, in_progress, succeeded, failed
    polls: int = 0
    alt: str = ""
    subtitles: list[dict[str, str]] = field(default_factory=list)
    doomed: bool = False  # processing will fail
    data: bytes = b""
    appends: int = 0
    additional_owners: frozenset[str] = frozenset()  # may attach it to their posts; only ``owner`` edits it

    @property
    def key(self) -> str:
        prefix = {"tweet_video": "7", "amplify_video": "13", "tweet_gif": "16"}.get(self.category, "3")
        return f"{prefix}_{self.id}"

    @property
    def kind(self) -> str:
        if self.category in ("tweet_video", "amplify_video", "dm_video"):
            return "video"
        if self.category == "subtitles":
            return "subtitles"
        return "gif" if self.category in ("tweet_gif", "dm_gif") else "image"

    def usable(self) -> bool:
        return self.state == "succeeded"


ONE_SHOT_FIELDS = frozenset({"media", "media_category", "additional_owners"})  # MediaUploadRequest, spec v2.167


def sniff(data: bytes) -> str:
    """The media type of an upload from its bytes, as X reads it when no media_type is given."""
    for kind in ("image/png", "image/jpeg", "image/gif", "image/webp", "text/vtt", "video/mp4"):
        if _looks_like(kind, data):
            return kind
    if data[:1].isdigit() and b"-->" in data[:200]:
        return "text/srt"
    return "application/octet-stream"


def _looks_like(media_type: str, data: bytes) -> bool:
    """A cheap content check standing in for X's transcoder: wrong bytes fail processing."""
    if media_type in ("video/mp4", "video/quicktime"):
        return data[4:8] == b"ftyp"
    if media_type == "image/png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type in ("image/jpeg", "image/pjpeg"):
        return data.startswith(b"\xff\xd8")
    if media_type == "image/gif":
        return data.startswith(b"GIF8")
    if media_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if media_type == "text/vtt":
        return data.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT")
    return True


class MediaStore:
    """Every upload, by id; thread-safe. Video processing advances one step per STATUS poll."""

    def __init__(
        self,
        next_id: Callable[[], str],
        wall: Callable[[], float],
        *,
        processing_polls: int = 2,
        check_after_secs: int = 1,
    ) -> None:
        self._next_id, self._wall = next_id, wall
        self.processing_polls = processing_polls
        self.check_after_secs = check_after_secs
        self.fail_processing = 0  # how many upcoming videos fail processing
        self.items: dict[str, Media] = {}
        self._lock = threading.RLock()

    def get(self, user_id: str, media_id: str) -> Media:
        """Media ``user_id`` may attach to a post: its own, or uploaded naming it in ``additional_owners``."""
        media = self.items.get(str(media_id))
        if media is None or (media.owner != user_id and user_id not in media.additional_owners):
            raise err.invalid(f"The media id {media_id} was not found.", "media_id", media_id)
        return media

    def _owned(self, user_id: str, media_id: str) -> Media:
        """Media ``user_id`` uploaded itself: only the uploader appends, finalizes, polls or describes it."""
        media = self.items.get(str(media_id))
        if media is None or media.owner != user_id:
            raise err.invalid(f"The media id {media_id} was not found.", "media_id", media_id)
        return media

    @staticmethod
    def _additional_owners(value: Any) -> frozenset[str]:
        # v2 takes a JSON array of user ids; the older form-encoded INIT a comma-separated string.
        ids = [str(v).strip() for v in (value.split(",") if isinstance(value, str) else value or [])]
        ids = [i for i in ids if i]
        if len(ids) > MAX_ADDITIONAL_OWNERS:
            raise err.invalid(
                f"Up to {MAX_ADDITIONAL_OWNERS} additional owners may be specified; got {len(ids)}.",
                "additional_owners",
                len(ids),
            )
        bad = [i for i in ids if not i.isdigit()]
        if bad:
            raise err.invalid(f"additional_owners must be user ids; got {bad[0]!r}", "additional_owners", bad[0])
        return frozenset(ids)

    def _new(self, user_id: str, category: str, media_type: str, total_bytes: int, owners: Any = None) -> Media:
        if category not in CATEGORIES:
            raise err.invalid(f"Invalid media_category: {category}", "media_category", category)
        known = IMAGE_TYPES | VIDEO_TYPES | SUBTITLE_TYPES
        if media_type not in known:
            raise err.invalid(f"Unsupported media_type: {media_type}", "media_type", media_type)
        cap = SIZE_CAP.get(category, 5 * MB)
        if total_bytes <= 0 or total_bytes > cap:
            raise err.invalid(
                f"total_bytes {total_bytes} is out of range for {category} (max {cap})", "total_bytes", total_bytes
            )
        additional = self._additional_owners(owners)
        with self._lock:
            media = Media(self._next_id(), user_id, category, media_type, total_bytes, additional_owners=additional)
            self.items[media.id] = media
            return media

    def _answer(self, media: Media, *, with_size: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"id": media.id, "media_key": media.key, "expires_after_secs": EXPIRES}
        if with_size:
            data["size"] = media.total_bytes
        if media.state in ("pending", "in_progress", "failed") or (
            media.kind == "video" and media.state == "succeeded"
        ):
            data["processing_info"] = self._processing_info(media)
        return {"data": data}

    def _processing_info(self, media: Media) -> dict[str, Any]:
        info: dict[str, Any] = {"state": media.state}
        if media.state in ("pending", "in_progress"):
            info["check_after_secs"] = self.check_after_secs
        if media.state != "pending":
            done = media.state in ("succeeded", "failed")
            info["progress_percent"] = (
                100 if done else min(99, round(100 * media.polls / max(1, self.processing_polls)))
            )
        # The spec's processing_info has state, check_after_secs and progress_percent only: a failed
        # upload says no more than "failed".
        return info

    # ---- simple upload (images, subtitles) ----

    def upload(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        blob = fields.get("media")
        if not isinstance(blob, bytes) or not blob:
            raise err.invalid("The media field is required.", "media", "")
        unknown = sorted(set(fields) - ONE_SHOT_FIELDS)
        if unknown:
            # The single-request upload names no media_type (nor anything else beyond its three fields).
            raise err.invalid(f"Unknown field {unknown[0]!r}: the upload reads the type from the bytes", unknown[0], "")
        if "media_category" not in fields:
            raise err.invalid("The media_category field is required.", "media_category", "")
        category = str(fields["media_category"])
        if category not in ("tweet_image", "dm_image", "subtitles"):
            raise err.invalid(f"{category} needs the chunked upload", "media_category", category)
        media = self._new(user_id, category, sniff(blob), len(blob), fields.get("additional_owners"))
        if not _looks_like(media.media_type, blob):
            raise err.invalid("media type unrecognized.", "media", media.media_type)
        media.data, media.state = blob, "succeeded"
        return self._answer(media, with_size=True)

    # ---- chunked upload ----

    def initialize(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            total = int(body.get("total_bytes", 0))
        except (TypeError, ValueError):
            raise err.invalid("total_bytes must be an integer", "total_bytes", body.get("total_bytes")) from None
        media_type = str(body.get("media_type") or "")
        default = "tweet_video" if media_type in VIDEO_TYPES else "tweet_image"
        media = self._new(
            user_id, str(body.get("media_category") or default), media_type, total, body.get("additional_owners")
        )
        return self._answer(media)

    def append(self, user_id: str, media_id: str, segment_index: Any, chunk: bytes) -> dict[str, Any]:
        media = self._owned(user_id, media_id)
        try:
            index = int(segment_index)
        except (TypeError, ValueError):
            raise err.invalid("segment_index must be an integer", "segment_index", segment_index) from None
        if not 0 <= index <= 999:
            raise err.invalid("segment_index must be between 0 and 999", "segment_index", index)
        if len(chunk) > CHUNK_MAX:
            raise err.too_large(f"A chunk must be at most {CHUNK_MAX} bytes; got {len(chunk)}.")
        if media.state != "uploading":
            raise err.invalid("The upload was already finalized.", "media_id", media_id)
        with self._lock:
            media.chunks[index] = chunk
            media.appends += 1
        return {"data": {"expires_at": int(self._wall()) + EXPIRES}}

    def finalize(self, user_id: str, media_id: str) -> dict[str, Any]:
        media = self._owned(user_id, media_id)
        with self._lock:
            if media.state != "uploading":
                return self._answer(media, with_size=True)
            indexes = sorted(media.chunks)
            if indexes != list(range(len(indexes))):
                raise err.invalid(f"Segments are missing: got {indexes}", "segment_index", indexes)
            data = b"".join(media.chunks[i] for i in indexes)
            if len(data) != media.total_bytes:
                raise err.invalid(
                    f"File size mismatch: declared {media.total_bytes} bytes, received {len(data)}.",
                    "total_bytes",
                    len(data),
                )
            media.data, media.chunks = data, {}
            media.doomed = not _looks_like(media.media_type, data)
            if media.kind in ("video", "gif"):
                if self.fail_processing > 0:
                    self.fail_processing -= 1
                    media.doomed = True
                media.state = "pending"
            elif media.doomed:
                raise err.invalid("media type unrecognized.", "media", media.media_type)
            else:
                media.state = "succeeded"
        return self._answer(media, with_size=True)

    def status(self, user_id: str, media_id: str) -> dict[str, Any]:
        media = self._owned(user_id, media_id)
        with self._lock:
            if media.state in ("pending", "in_progress"):
                media.polls += 1
                if media.polls >= self.processing_polls:
                    media.state = "failed" if media.doomed else "succeeded"
                else:
                    media.state = "in_progress"
        return self._answer(media, with_size=True)

    # ---- metadata ----

    def set_alt(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        media = self._owned(user_id, str(body.get("id") or body.get("media_id") or ""))
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or not alt:
            raise err.invalid("metadata.alt_text.text is required", "metadata", alt)
        if len(alt) > 1000:
            raise err.invalid("alt text must be at most 1000 characters", "metadata.alt_text.text", len(alt))
        media.alt = alt
        return {"data": {"id": media.id, "associated_metadata": {"alt_text": {"text": alt}}}}

    def add_subtitles(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        video = self._owned(user_id, str(body.get("id") or ""))
        sub = body.get("subtitles") or {}
        track = self._owned(user_id, str(sub.get("id") or ""))
        if video.kind != "video" or track.kind != "subtitles" or not track.usable():
            raise err.invalid(
                "subtitles must be an uploaded subtitles file attached to a video", "subtitles", sub.get("id")
            )
        if str(body.get("media_category")) not in ("TweetVideo", "AmplifyVideo"):
            raise err.invalid(
                "media_category must be TweetVideo or AmplifyVideo", "media_category", body.get("media_category")
            )
        entry = {
            "id": track.id,
            "language_code": str(sub.get("language_code") or ""),
            "display_name": str(sub.get("display_name") or ""),
        }
        if not entry["language_code"]:
            raise err.invalid("subtitles.language_code is required", "subtitles.language_code", "")
        video.subtitles.append(entry)
        return {
            "data": {"id": video.id, "media_category": body["media_category"], "associated_subtitles": video.subtitles}
        }
