"""X API v2 media upload on requests with OAuth 1.0a: images in one request, videos chunked.

Follows X's current documentation: ``POST /2/media/upload`` (images, subtitles),
``/2/media/upload/initialize``, ``/{id}/append`` (chunks of at most 5 MB),
``/{id}/finalize``, then ``GET /2/media/upload?command=STATUS`` until processing
succeeds or fails, waiting ``check_after_secs`` between polls. Alt text goes
through ``/2/media/metadata``, captions through ``/2/media/subtitles``.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.errors import ContentRejected, PlatformUnavailable
from bot.platforms.x_client import XClient

CHUNK = 4 * 1024 * 1024  # under X's 5 MB per APPEND, with room for the multipart envelope
MAX_WAIT = 600.0  # seconds of check_after_secs we accept before calling processing stuck
TYPES = {".vtt": "text/vtt", ".srt": "text/srt", ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
         ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif"}
LANGUAGES = {"en": "English", "ru": "Русский", "be": "Беларуская", "uk": "Українська", "de": "Deutsch",
             "fr": "Français", "es": "Español", "pl": "Polski", "lt": "Lietuvių"}


def media_type(path: Path) -> str:
    return TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class Uploader:
    """One X account's uploads; ``sent`` counts bytes across a post's files for the progress callback."""

    def __init__(
        self,
        client: XClient,
        sleep: Callable[[float], None],
        progress: Callable[[int, int], None] | None,
        total: int,
        log: Any,
    ) -> None:
        self.client, self.sleep, self.progress, self.total, self.log = client, sleep, progress, total, log
        self.sent = 0

    def _advance(self, count: int) -> None:
        self.sent += count
        if self.progress:
            self.progress(self.sent, self.total)

    def image(self, path: Path, alt: str) -> str:
        kind = media_type(path)
        if kind == "image/gif":
            media_id = self.chunked(path, kind, "tweet_gif")  # animated GIFs go through processing like video
        else:
            blob = path.read_bytes()
            answer = self.client.send(
                "POST", "/2/media/upload",
                files={"media": (path.name, blob, kind)}, data={"media_category": "tweet_image", "media_type": kind},
            ).json()
            media_id = str(answer["data"]["id"])
            self._advance(len(blob))
        self.describe(media_id, alt)
        return media_id

    def video(self, path: Path, alt: str, captions: Path | None, lang: str) -> str:
        media_id = self.chunked(path, media_type(path), "tweet_video")
        self.describe(media_id, alt)
        if captions is not None:
            self.subtitles(media_id, captions, lang)
        return media_id

    def chunked(self, path: Path, kind: str, category: str) -> str:
        size = path.stat().st_size
        answer = self.client.send(
            "POST", "/2/media/upload/initialize", json={"media_type": kind, "total_bytes": size, "media_category": category}
        ).json()
        media_id = str(answer["data"]["id"])
        with path.open("rb") as source:
            index = 0
            while chunk := source.read(CHUNK):
                self.client.send(
                    "POST", f"/2/media/upload/{media_id}/append",
                    files={"media": (path.name, chunk, "application/octet-stream")}, data={"segment_index": str(index)},
                )
                index += 1
                self._advance(len(chunk))
        answer = self.client.send("POST", f"/2/media/upload/{media_id}/finalize").json()
        self.wait_processed(media_id, answer["data"].get("processing_info"), path)
        return media_id

    def wait_processed(self, media_id: str, info: dict[str, Any] | None, path: Path) -> None:
        waited, states = 0.0, []
        while info is not None:
            state = info.get("state")
            states.append(state)
            if state == "succeeded":
                break
            if state == "failed":
                reason = (info.get("error") or {}).get("message") or "no reason given"
                raise ContentRejected(f"X could not process {path.name}: {reason}")
            delay = float(info.get("check_after_secs", 1))
            if waited + delay > MAX_WAIT:
                raise PlatformUnavailable(f"X is still processing {path.name} after {waited:.0f}s")
            self.sleep(delay)
            waited += delay
            answer = self.client.send("GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id}).json()
            info = answer["data"].get("processing_info")
        self.log.info("media_processed", media_id=media_id, file=path.name, states=states, waited_s=waited)

    def describe(self, media_id: str, alt: str) -> None:
        if alt:
            self.client.send("POST", "/2/media/metadata", json={"id": media_id, "metadata": {"alt_text": {"text": alt}}})

    def subtitles(self, video_id: str, captions: Path, lang: str) -> None:
        # X takes WebVTT as well as SRT for subtitles, so the campaign's VTT goes up unchanged.
        blob = captions.read_bytes()
        kind = media_type(captions)
        answer = self.client.send(
            "POST", "/2/media/upload",
            files={"media": (captions.name, blob, kind)}, data={"media_category": "subtitles", "media_type": kind},
        ).json()
        code = (lang or "en").split("-")[0].lower()
        self.client.send("POST", "/2/media/subtitles", json={
            "id": video_id,
            "media_category": "TweetVideo",
            "subtitles": {"id": str(answer["data"]["id"]), "language_code": code.upper(), "display_name": LANGUAGES.get(code, code)},
        })
