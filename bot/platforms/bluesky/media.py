"""Bluesky embeds: images re-encoded to fit the blob limit, and videos with captions, uploaded as blobs.

Videos go through the account's video service when it has one (``bluesky_video``: the service
transcodes them for playback and stores the result on the PDS), else straight to the PDS with
``uploadBlob`` (its ``PDS_BLOB_UPLOAD_LIMIT`` bounds them). Captions are always plain blobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.errors import ContentRejected
from bot.core.values import Outgoing, Progress
from bot.media import MediaError, aspect_ratio, fit_image

BLOB_IMAGE_MAX = 1_000_000
VIDEO_MIME = "video/mp4"
CAPTIONS_MIME = "text/vtt"


def _upload(client: Any, data: bytes, mime: str) -> dict[str, Any]:
    blob = client.com.atproto.repo.upload_blob(data, headers={"Content-Type": mime}).blob
    return {"$type": "blob", "ref": {"$link": str(blob.ref.link)}, "mimeType": blob.mime_type, "size": blob.size}


def _ratio(path: Path) -> dict[str, int] | None:
    try:
        width, height = aspect_ratio(path)
    except MediaError:
        return None  # aspectRatio is optional: the app then guesses from the media
    return {"width": width, "height": height}


def embed_for(client: Any, out: Outgoing, progress: Progress | None, service: Any = None) -> dict[str, Any] | None:
    """Upload ``out``'s media and return the embed for its post record, or None for text only.

    ``service`` is the account's ``VideoService``, or None to send videos as plain blobs.
    """
    try:
        if out.images:
            return _images(client, out, progress)
        if out.video:
            return _video(client, out, progress, service)
    except MediaError as exc:
        raise ContentRejected(f"{exc}") from exc
    return None


def _images(client: Any, out: Outgoing, progress: Progress | None) -> dict[str, Any]:
    encoded = [(image, *fit_image(image.path, BLOB_IMAGE_MAX)) for image in out.images]
    total, sent = sum(len(data) for _, data, _ in encoded), 0
    items = []
    for image, data, mime in encoded:
        item: dict[str, Any] = {"image": _upload(client, data, mime), "alt": image.alt}
        ratio = _ratio(image.path)
        if ratio:
            item["aspectRatio"] = ratio
        items.append(item)
        sent += len(data)
        if progress:
            progress(sent, total)
    return {"$type": "app.bsky.embed.images", "images": items}


def _video(client: Any, out: Outgoing, progress: Progress | None, service: Any) -> dict[str, Any]:
    video = out.video
    assert video is not None
    data = Path(video.path).read_bytes()
    captions = Path(video.captions).read_bytes() if video.captions else None
    total = len(data) + len(captions or b"")
    if service is not None:
        blob = service.upload(data, Path(video.path).name, progress, total)
    else:
        blob = _upload(client, data, VIDEO_MIME)
    embed: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": blob, "alt": video.alt}
    if progress:
        progress(len(data), total)
    if captions is not None:
        embed["captions"] = [{"lang": video.captions_lang, "file": _upload(client, captions, CAPTIONS_MIME)}]
        if progress:
            progress(total, total)
    ratio = _ratio(Path(video.path))
    if ratio:
        embed["aspectRatio"] = ratio
    return embed
