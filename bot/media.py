"""What a media file really is, judged by its content, and images shrunk to fit a platform.

``probe`` never trusts the extension: Pillow identifies images, PyAV identifies
videos (container metadata only, no decoding), a ``WEBVTT`` header identifies
captions. Damaged files raise ``MediaError`` with a plain message staff can act
on; content that is none of these comes back as kind ``"unknown"``.
Results are cached on (path, size, mtime), so ``bot check`` on a campaign whose
posts share a few files probes each file once.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from bot.core.errors import BotError

IMAGE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
VIDEO_MIME = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "matroska": "video/x-matroska"}
_ISO_BRANDS = {b"qt  ": "mov", b"M4A ": "m4a", b"mjp2": "mj2"}
_SRT_CUE = re.compile(rb"^\d+\r?\n\d{2}:\d{2}:\d{2},\d{3} --> ", re.MULTILINE)
_CUE_TIME = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")


class MediaError(BotError):
    """A media file is missing, empty, truncated or corrupt."""


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe`` found in a file."""

    kind: str  # "image" | "video" | "captions" | "unknown"
    format: str  # Pillow format name (PNG), PyAV container name (mov,mp4,...), "WEBVTT", or ""
    bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds: videos, and captions (end of the last cue)
    video_codec: str | None = None
    audio_codec: str | None = None
    frames: int | None = None  # images: number of frames (GIF animations); captions: number of cues
    container: str | None = None  # videos: the one simple name ("mp4", "mov", "webm") the content shows

    @property
    def mime(self) -> str:
        if self.kind == "image":
            return IMAGE_MIME.get(self.format, "application/octet-stream")
        if self.kind == "video":
            return VIDEO_MIME.get(self.container or "", "application/octet-stream")
        return "text/vtt" if self.kind == "captions" else "application/octet-stream"


def container_names(format_name: str) -> frozenset[str]:
    """Simple names a PyAV container format name stands for: "mov,mp4,m4a,..." -> {"mov", "mp4", ...}."""
    names = {name.strip() for name in format_name.split(",") if name.strip()}
    if "matroska" in names:
        names.add("mkv")
    return frozenset(names)


def format_allowed(info: MediaInfo, allowed: frozenset[str]) -> bool:
    """Whether a probed video's container is one of a platform's ``Limits.video_formats``."""
    if info.container:
        return info.container in allowed
    return bool(container_names(info.format) & allowed)


def probe(path: Path) -> MediaInfo:
    """Identify ``path`` by its content; raise ``MediaError`` when it is missing or damaged."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise MediaError("file not found") from None
    except OSError as exc:
        raise MediaError(f"cannot read file ({exc.strerror})") from None
    if not S_ISREG(stat.st_mode):
        raise MediaError("not a regular file")
    if stat.st_size == 0:
        raise MediaError("file is empty")
    try:
        return _probe(str(path), stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise MediaError(f"cannot read file ({exc.strerror or exc})") from None


@functools.lru_cache(maxsize=4096)
def _probe(path: str, size: int, mtime_ns: int) -> MediaInfo:
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return _probe_captions(Path(path), size)
    if _SRT_CUE.search(head):
        # The most common captions mistake: a SubRip file renamed .vtt.
        raise MediaError("captions must start with a 'WEBVTT' line (this looks like SubRip .srt: convert it to WebVTT)")
    image = _probe_image(path, size)
    if image is not None:
        return image
    return _probe_video(path, size, head)


def _probe_image(path: str, size: int) -> MediaInfo | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            fmt, (width, height) = image.format or "", image.size
            frames = getattr(image, "n_frames", 1)
            image.verify()  # checks structure and checksums without decoding pixels
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        raise MediaError("image has too many pixels to open safely (over Pillow's decompression-bomb limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"damaged image ({exc})") from None
    if fmt == "JPEG" and not _jpeg_complete(path, size):
        raise MediaError("damaged image (JPEG is truncated)")
    return MediaInfo("image", fmt, size, width, height, frames=frames)


def _jpeg_complete(path: str, size: int) -> bool:
    """Pillow's verify() does not check JPEG data, so look for the end-of-image marker."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 1024))
        if b"\xff\xd9" in handle.read():
            return True
    # Phones append data after the image (motion photos carry an MP4), so no marker at the
    # end is not proof: decode at 1/8 scale, which still reads every byte of image data.
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def _probe_video(path: str, size: int, head: bytes) -> MediaInfo:
    import av

    looks_iso = head[4:8] == b"ftyp"
    try:
        # Everything is read inside the block: PyAV streams must not outlive their container.
        with av.open(path, "r") as container:
            fmt = container.format.name
            duration = container.duration / 1_000_000 if container.duration else None
            video = next((s for s in container.streams if s.type == "video"), None)
            audio = next((s for s in container.streams if s.type == "audio"), None)
            # PyAV's stubs type a stream's codec_context as the base CodecContext; a video stream's has a size.
            width = video.codec_context.width if video else None  # type: ignore[attr-defined]
            height = video.codec_context.height if video else None  # type: ignore[attr-defined]
            video_codec = video.codec_context.name if video else None
            audio_codec = audio.codec_context.name if audio else None
            if duration is None and video is not None and video.duration is not None and video.time_base:
                duration = float(video.duration * video.time_base)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if looks_iso or head.startswith(b"\x1a\x45\xdf\xa3"):
            raise MediaError(f"damaged video ({_plain(exc)})") from None
        return MediaInfo("unknown", "", size)
    # image2 and *_pipe are FFmpeg reading a still image (it trusts the extension): not a video.
    if video_codec is None or fmt == "image2" or fmt.endswith("_pipe"):
        return MediaInfo("unknown", "", size)
    if looks_iso:
        _check_iso_boxes(path, size)
    return MediaInfo(
        "video",
        fmt,
        size,
        width,
        height,
        duration,
        video_codec=video_codec,
        audio_codec=audio_codec,
        container=_container(fmt, head),
    )


def _container(fmt: str, head: bytes) -> str:
    names = container_names(fmt)
    if "mp4" in names:
        if head[4:8] != b"ftyp":
            return "mov"  # QuickTime files from before the ISO standard have no ftyp box
        brand = head[8:12]
        return _ISO_BRANDS.get(brand) or (
            "3gp" if brand.startswith(b"3gp") else "3g2" if brand.startswith(b"3g2") else "mp4"
        )
    if "webm" in names:
        return "webm" if b"webm" in head else "matroska"
    return sorted(names)[0]


def _check_iso_boxes(path: str, size: int) -> None:
    """Walk the top-level MP4/MOV boxes: a box that ends past the end of the file means a cut-off upload."""
    offset = 0
    with open(path, "rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                raise MediaError("damaged video (truncated: incomplete box header)")
            box = int.from_bytes(header[:4], "big")
            if box == 1 and len(header) == 16:
                box = int.from_bytes(header[8:16], "big")
            elif box == 0:  # extends to the end of the file
                return
            if box < 8 or offset + box > size:
                raise MediaError(
                    f"damaged video (truncated: {header[4:8].decode('latin-1')!r} box runs past the end of the file)"
                )
            offset += box


def _plain(exc: Exception) -> str:
    # FFmpeg messages end with the path; staff already know which file it is.
    return getattr(exc, "strerror", None) or str(exc)


def _cue_seconds(stamp: str) -> float | None:
    match = _CUE_TIME.match(stamp)
    if not match:
        return None
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _probe_captions(path: Path, size: int) -> MediaInfo:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise MediaError("captions are not UTF-8 text") from None
    if lines[0] != "WEBVTT" and not lines[0].startswith(("WEBVTT ", "WEBVTT\t")):
        raise MediaError("captions header must be 'WEBVTT' alone on the first line")
    end, cues = 0.0, 0
    for number, line in enumerate(lines[1:], start=2):
        if "-->" not in line:
            continue
        start_stamp, _, rest = line.partition("-->")
        start, stop = _cue_seconds(start_stamp.strip()), _cue_seconds((rest.split() or [""])[0])
        if start is None or stop is None:
            raise MediaError(
                f"captions line {number}: bad cue timing {line.strip()!r} (expected 00:00:01.000 --> 00:00:04.000)"
            )
        if stop < start:
            raise MediaError(f"captions line {number}: cue ends before it starts")
        end, cues = max(end, stop), cues + 1
    if cues == 0:
        raise MediaError("captions have no cues")
    return MediaInfo("captions", "WEBVTT", size, duration=end, frames=cues)


def aspect_ratio(path: Path) -> tuple[int, int]:
    """(width, height) as displayed: EXIF orientation for images, the display matrix for videos."""
    info = probe(path)
    if not info.width or not info.height:
        raise MediaError(f"{info.kind} has no dimensions")
    if info.kind == "image":
        from PIL import Image

        with Image.open(path) as image:
            turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # a quarter turn
    else:
        turned = _video_rotation(path) % 180 == 90
    return (info.height, info.width) if turned else (info.width, info.height)


def _video_rotation(path: Path) -> int:
    # Phones record landscape pixels with a rotation flag; PyAV exposes it only on a
    # decoded frame, so this decodes the first frame (and only that).
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return round(frame.rotation or 0)
    except av.error.FFmpegError as exc:
        raise MediaError(f"damaged video ({_plain(exc)})") from None
    return 0


def fit_image(path: Path, max_bytes: int) -> tuple[bytes, str]:
    """The image as (data, mime) in at most ``max_bytes``: as is when it fits, else re-encoded.

    Re-encoding applies EXIF rotation (and drops the rest of EXIF, GPS included),
    keeps PNG when optimising is enough, else writes JPEG at falling quality on a
    white background, then downscales with the aspect ratio kept. An animated GIF
    that must shrink keeps only its first frame.
    """
    from PIL import Image, ImageOps

    info = probe(path)
    if info.kind != "image":
        raise MediaError(f"not an image ({info.kind})")
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        rotated = image.getexif().get(0x0112, 1) not in (None, 1)
        if len(data) <= max_bytes and not rotated and info.format in IMAGE_MIME:
            return data, IMAGE_MIME[info.format]
        image.seek(0)
        picture = ImageOps.exif_transpose(image.convert("RGBA" if _has_alpha(image) else "RGB"))
    if info.format in ("PNG", "GIF") or picture.mode == "RGBA":
        encoded = _encode(picture, "PNG", optimize=True)
        if len(encoded) <= max_bytes:
            return encoded, "image/png"
    flat = _flatten(picture)
    for quality in (90, 80, 70, 60):
        encoded = _encode(flat, "JPEG", quality=quality, optimize=True)
        if len(encoded) <= max_bytes:
            return encoded, "image/jpeg"
    while min(flat.size) > 16:
        flat = flat.resize((max(1, flat.width * 3 // 4), max(1, flat.height * 3 // 4)), Image.Resampling.LANCZOS)
        encoded = _encode(flat, "JPEG", quality=75, optimize=True)
        if len(encoded) <= max_bytes:
            return encoded, "image/jpeg"
    raise MediaError(f"image cannot be made smaller than {max_bytes} bytes")


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _flatten(picture: Any) -> Any:
    from PIL import Image

    if picture.mode != "RGBA":
        return picture.convert("RGB")
    # JPEG has no transparency: white, not black, is what a transparent logo was drawn against.
    background = Image.new("RGB", picture.size, (255, 255, 255))
    background.paste(picture, mask=picture.getchannel("A"))
    return background


def _encode(picture: Any, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


__all__ = ["MediaError", "MediaInfo", "aspect_ratio", "container_names", "fit_image", "format_allowed", "probe"]
