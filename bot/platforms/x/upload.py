"""X API v2 media upload on requests with OAuth 1.0a: images in one request, videos chunked.

Follows X's current documentation: ``POST /2/media/upload`` (images, subtitles),
``/2/media/upload/initialize``, ``/{id}/append`` (chunks of at most 5 MB),
``/{id}/finalize``, then ``GET /2/media/upload?command=STATUS`` until processing
succeeds or fails, waiting ``check_after_secs`` between polls. Alt text goes
through ``/2/media/metadata``, captions through ``/2/media/subtitles``.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import ContentRejected, PlatformUnavailable
from bot.platforms.x.client import XClient

CHUNK = 4 * 1024 * 1024  # under X's 5 MB per APPEND, with room for the multipart envelope
MAX_WAIT = 600.0  # seconds of check_after_secs we accept before calling processing stuck
TYPES = {
    ".vtt": "text/vtt",
    ".srt": "text/srt",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
}
LANGUAGES = {
    "en": "English",
    "ru": "Русский",
    "be": "Беларуская",
    "uk": "Українська",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "pl": "Polski",
    "lt": "Lietuvių",
}


def file_key(path: Path) -> tuple[str, int, int]:
    """A file as uploads are shared: its path, size and modification time (an edited file is a new upload)."""
    stat = path.stat()
    # abspath, not resolve(): the same post gives every account the same path, and resolve() walks
    # the file system (a measurable share of a 500-account fan-out's CPU).
    return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def upload_media(
    client: XClient,
    out: Any,
    progress: Callable[[int, int], None] | None,
    log: Any,
    sleep: Callable[[float], None],
    host: str,
    share_as: str | None,
    among: Collection[str] | None = None,
) -> tuple[list[str], list[tuple[tuple[Any, ...], str]]]:
    """Media ids for ``out``'s files, and which of them (with their file keys) other accounts uploaded for us.

    ``share_as``: our user id to share uploads with the process's other X accounts (SHARED), or None;
    ``among``: the user ids to share a new upload with (default: any account of the process).
    """
    # Each file is looked at once (its key holds its size): a fan-out does this for every account.
    image_keys = [file_key(i.path) for i in out.images]
    video_key = file_key(out.video.path) if out.video else None
    sizes = [k[1] for k in image_keys] + ([video_key[1]] if video_key else [])
    uploader = Uploader(client, sleep, progress, sum(sizes), log)
    jobs: list[tuple[tuple[Any, ...], Callable[[Sequence[str]], str]]] = [
        (("image", *key, i.alt), functools.partial(uploader.image, i.path, i.alt))
        for i, key in zip(out.images, image_keys)
    ]
    if out.video is not None and video_key is not None:  # one is set when the other is (mypy sees two)
        v = out.video
        captions = file_key(v.captions) if v.captions else None
        jobs.append(
            (
                ("video", *video_key, v.alt, captions, v.captions_lang),
                lambda owners: uploader.video(v.path, v.alt, v.captions, v.captions_lang, owners),
            )
        )
    media_ids, borrowed = [], []
    for (file, upload), size in zip(jobs, sizes):
        if share_as is None:
            media_ids.append(upload(()))
            continue
        media_id, uploaded = SHARED.obtain(host, file, share_as, upload, uploader.keepalive, among)
        if not uploaded:
            uploader.skip(size)
            borrowed.append((file, media_id))
        media_ids.append(media_id)
    return media_ids, borrowed


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

    def skip(self, count: int) -> None:
        """Count a file another account uploaded for us as sent, so progress still reaches its total."""
        self._advance(count)

    def keepalive(self) -> None:
        """Report progress unchanged while waiting for another account's upload (the caller renews its lease)."""
        if self.progress:
            self.progress(self.sent, self.total)

    def image(self, path: Path, alt: str, additional_owners: Sequence[str] = ()) -> str:
        kind = media_type(path)
        if kind == "image/gif" or additional_owners:
            # Animated GIFs go through processing like video. Shared images take the chunked route too:
            # its initialize is JSON, where X's additional_owners is a plain array of user ids.
            media_id = self.chunked(
                path, kind, "tweet_gif" if kind == "image/gif" else "tweet_image", additional_owners
            )
        else:
            blob = path.read_bytes()
            answer = self.client.send(
                "POST",
                "/2/media/upload",
                files={"media": (path.name, blob, kind)},
                # The single-request upload takes no media_type (X's spec v2.167, MediaUploadRequest):
                # X reads the type from the bytes; the part's Content-Type still names it.
                data={"media_category": "tweet_image"},
            ).json()
            media_id = str(answer["data"]["id"])
            self._advance(len(blob))
        self.describe(media_id, alt)
        return media_id

    def video(
        self, path: Path, alt: str, captions: Path | None, lang: str, additional_owners: Sequence[str] = ()
    ) -> str:
        media_id = self.chunked(path, media_type(path), "tweet_video", additional_owners)
        self.describe(media_id, alt)
        if captions is not None:
            self.subtitles(media_id, captions, lang)
        return media_id

    def chunked(self, path: Path, kind: str, category: str, additional_owners: Sequence[str] = ()) -> str:
        size = path.stat().st_size
        body: dict[str, Any] = {"media_type": kind, "total_bytes": size, "media_category": category}
        if additional_owners:
            body["additional_owners"] = list(additional_owners)
        answer = self.client.send("POST", "/2/media/upload/initialize", json=body).json()
        media_id = str(answer["data"]["id"])
        with path.open("rb") as source:
            index = 0
            while chunk := source.read(CHUNK):
                self.client.send(
                    "POST",
                    f"/2/media/upload/{media_id}/append",
                    files={"media": (path.name, chunk, "application/octet-stream")},
                    data={"segment_index": str(index)},
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
                # X's spec (v2.167) gives processing_info no reason; older answers carried an error object.
                reason = (info.get("error") or {}).get("message") or "processing failed"
                raise ContentRejected(f"X could not process {path.name}: {reason}")
            delay = float(info.get("check_after_secs", 1))
            if waited + delay > MAX_WAIT:
                raise PlatformUnavailable(f"X is still processing {path.name} after {waited:.0f}s")
            self.sleep(delay)
            waited += delay
            answer = self.client.send(
                "GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id}
            ).json()
            info = answer["data"].get("processing_info")
        self.log.info("media_processed", media_id=media_id, file=path.name, states=states, waited_s=waited)

    def describe(self, media_id: str, alt: str) -> None:
        if alt:
            self.client.send(
                "POST", "/2/media/metadata", json={"id": media_id, "metadata": {"alt_text": {"text": alt}}}
            )

    def subtitles(self, video_id: str, captions: Path, lang: str) -> None:
        # X takes WebVTT as well as SRT for subtitles, so the campaign's VTT goes up unchanged.
        blob = captions.read_bytes()
        kind = media_type(captions)
        answer = self.client.send(
            "POST",
            "/2/media/upload",
            files={"media": (captions.name, blob, kind)},
            data={"media_category": "subtitles"},  # no media_type here either (see ``image``)
        ).json()
        code = (lang or "en").split("-")[0].lower()
        self.client.send(
            "POST",
            "/2/media/subtitles",
            json={
                "id": video_id,
                "media_category": "TweetVideo",
                "subtitles": {
                    "id": str(answer["data"]["id"]),
                    "language_code": code.upper(),
                    "display_name": LANGUAGES.get(code, code),
                },
            },
        )


# ---- one upload per file for many accounts (X's additional_owners) ----

MAX_OWNERS = 100  # X: up to 100 additional owners per upload
SHARE_FOR = 23 * 3600.0  # X keeps an upload usable for 24 h (expires_after_secs 86400); stop an hour short


@dataclass(eq=False)
class _Upload:
    """One upload shared by its uploader and up to 100 other accounts; ``media_id`` None while in flight."""

    owners: frozenset[str]
    done: threading.Event = field(default_factory=threading.Event)
    media_id: str | None = None
    at: float = 0.0


class SharedMedia:
    """Which X accounts of this process may use which upload; thread-safe.

    A fan-out posts one file from hundreds of accounts. The first account to need the file
    uploads it naming up to 100 peers (accounts of the same host whose user ids we know) as
    ``additional_owners``; those peers then post with its media id instead of uploading the
    file and its alt text again: one request per account instead of three. A peer not covered
    starts the next upload; a failed upload is forgotten and the next account tries its own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._peers: dict[str, set[str]] = {}  # host -> user ids of the accounts that share
        self._uploads: dict[tuple[Any, ...], list[_Upload]] = {}

    def join(self, host: str, user_id: str) -> None:
        with self._lock:
            self._peers.setdefault(host, set()).add(user_id)

    def leave(self, host: str, user_id: str) -> None:
        with self._lock:
            self._peers.get(host, set()).discard(user_id)

    def obtain(
        self,
        host: str,
        file: tuple[Any, ...],
        me: str,
        upload: Callable[[Sequence[str]], str],
        wait: Callable[[], None],
        among: Collection[str] | None = None,
    ) -> tuple[str, bool]:
        """(media id, whether this account uploaded it); ``upload(additional_owners)`` runs at most once.

        ``wait`` is called about every 5 s while another account's upload for us is in flight.
        ``among``: when given, a new upload is shared only with these of our peers (one fan-out's
        accounts, when uploads are staged before a slot in groups of 101).
        """
        key = (host, *file)
        while True:
            with self._lock:
                now = self._clock()
                uploads = self._uploads[key] = [
                    u for u in self._uploads.get(key, []) if u.media_id is None or now - u.at < SHARE_FOR
                ]
                mine = next((u for u in uploads if me in u.owners), None)
                if mine is None:
                    covered = set().union(*(u.owners for u in uploads))
                    peers = self._peers.get(host, set())
                    if among is not None:
                        peers = peers & set(among)
                    others = sorted(peers - covered - {me})[:MAX_OWNERS]
                    mine = _Upload(frozenset([me, *others]))
                    uploads.append(mine)
                    break
            if mine.media_id is not None:
                return mine.media_id, False
            while not mine.done.wait(5.0):
                wait()
            # Done: either its media id is there now, or it failed and was dropped; look again.
        try:
            media_id = upload(sorted(mine.owners - {me}))
        except BaseException:
            self._drop(key, mine)
            raise
        with self._lock:
            mine.media_id, mine.at = media_id, self._clock()
        mine.done.set()
        return media_id, True

    def forget(self, host: str, file: tuple[Any, ...], media_id: str) -> None:
        """X refused a shared media id: accounts stop using it."""
        key = (host, *file)
        with self._lock:
            self._uploads[key] = [u for u in self._uploads.get(key, []) if u.media_id != media_id]

    def _drop(self, key: tuple[Any, ...], upload: _Upload) -> None:
        with self._lock:
            self._uploads[key] = [u for u in self._uploads.get(key, []) if u is not upload]
        upload.done.set()


SHARED = SharedMedia()
"""The process's registry: every X adapter of the worker shares it."""
