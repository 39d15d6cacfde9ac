"""Generators of real media files: banners (PNG), supporter videos (H.264/AAC MP4), captions (VTT).

Used by scripts/make_media.py (the shipped campaign), the tests, the demo and the
benchmarks. Output is deterministic for a given Pillow/PyAV version: the font is
Pillow's embedded one, the encoder runs single-threaded and noise comes from a
seeded generator, so regenerating the campaign's media gives the same files.
"""

from __future__ import annotations

import functools
import math
import random
from array import array
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CAMPAIGN_RED = (190, 30, 45)
INK = (255, 255, 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's embedded font, not a system one, so every machine draws the same pixels.
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        words, line = paragraph.split(), ""
        for word in words:
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def draw_card(text: str, size: tuple[int, int], background=CAMPAIGN_RED, foreground=INK) -> Image.Image:
    """An RGB card with ``text`` centred and wrapped, the largest size that fits."""
    width, height = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    margin = max(8, width // 20)
    font_size = max(8, height // 5)
    while True:
        font = _font(font_size)
        lines = _wrap(draw, text, font, width - 2 * margin)
        line_height = int(font_size * 1.25)
        fits = len(lines) * line_height <= height - 2 * margin and all(
            draw.textlength(line, font=font) <= width - 2 * margin for line in lines
        )
        if fits or font_size <= 8:
            break
        font_size = int(font_size * 0.9)
    top = (height - len(lines) * line_height) // 2
    for i, line in enumerate(lines):
        left = (width - draw.textlength(line, font=font)) / 2
        draw.text((left, top + i * line_height), line, font=font, fill=foreground)
    # A thin band along the bottom, so banners read as campaign material even when cropped.
    draw.rectangle((0, height - max(4, height // 40), width, height), fill=foreground)
    return image


def make_banner(
    path: Path, text: str, size: tuple[int, int] = (1500, 500), background=CAMPAIGN_RED, subtitle: str | None = None
) -> Path:
    """Write a PNG banner with ``text`` on a plain background, and an optional smaller line under it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    band = height // 5 if subtitle else 0
    image = draw_card(text, (width, height - band), background=background)
    if subtitle:
        canvas = Image.new("RGB", size, background)
        canvas.paste(image, (0, 0))
        draw = ImageDraw.Draw(canvas)
        font_size = max(8, band // 2)
        while font_size > 8 and draw.textlength(subtitle, font=_font(font_size)) > width * 0.7:
            font_size -= 2
        font = _font(font_size)
        left = (width - draw.textlength(subtitle, font=font)) / 2
        draw.text((left, height - band), subtitle, font=font, fill=INK)
        image = canvas
    image.save(path, format="PNG", optimize=True)
    return path


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def make_captions(path: Path, lines: list[str], seconds: float) -> Path:
    """Write a WebVTT file that spreads ``lines`` evenly over ``seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = seconds / max(1, len(lines))
    cues = ["WEBVTT", ""]
    for i, line in enumerate(lines):
        cues += [str(i + 1), f"{_vtt_time(i * step)} --> {_vtt_time((i + 1) * step)}", line, ""]
    path.write_text("\n".join(cues), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=8)
def _tone(samples: int, rate: int, start: int, hz: float | None) -> bytes:
    if not hz:
        return bytes(4 * samples)  # float32 silence
    # Quiet on purpose: the tone only proves the audio track carries real samples.
    return array("f", (0.1 * math.sin(2 * math.pi * hz * (start + n) / rate) for n in range(samples))).tobytes()


def _noise_frame(av, size: tuple[int, int], rows: int, rng: random.Random):
    """A yuv420p frame whose top ``rows`` luma rows are random: incompressible, to reach a byte target."""
    width, height = size
    frame = av.VideoFrame(width, height, "yuv420p")
    for index, plane in enumerate(frame.planes):
        plane_rows = rows if index == 0 else rows // 2
        noisy = rng.randbytes(plane.line_size * plane_rows)
        flat = bytes([128 if index else 60]) * (plane.line_size * (plane.height - plane_rows))
        plane.update(noisy + flat)
    return frame


def make_video(
    path: Path,
    seconds: float,
    size: tuple[int, int] = (640, 360),
    target_bytes: int | None = None,
    fps: int = 25,
    text: str | Sequence[str] = "#FreeAndreiandIrina",
    tone_hz: float | None = 440.0,
    background=CAMPAIGN_RED,
    seed: int = 0,
    container_format: str = "mp4",
    faststart: bool = True,
    rotation: int = 0,
) -> Path:
    """Write an H.264/AAC MP4 of ``seconds``: text cards with a moving bar, and a tone (or silence).

    ``text`` may be a list: each card then shows for an equal share of the time,
    as ``make_captions`` spreads its lines, so captions and cards line up.

    With ``target_bytes`` the frames carry losslessly coded noise sized so the
    file lands near that many bytes; encoding stays fast (ultrafast preset).
    """
    import av  # lazy: PyAV is only needed when media is generated

    width, height = (size[0] // 2 * 2, size[1] // 2 * 2)  # yuv420p needs even sides
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames = max(1, round(seconds * fps))
    rate = 24_000  # plenty for speech, and half the AAC work of 48 kHz for long test videos
    # faststart puts the index first, as web uploads prefer; "mov" writes a QuickTime file.
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.thread_count = 1  # deterministic output
        if target_bytes:
            video.options = {"preset": "ultrafast", "qp": "0"}
        else:
            video.options = {"preset": "medium", "crf": "30"}
        video.codec_context.time_base = Fraction(1, fps)
        if rotation:
            video.set_display_rotation(rotation)  # as phones do: pixels stay landscape, a flag turns them
        audio = container.add_stream("aac", rate=rate, layout="mono")
        audio.thread_count = 1

        texts = [text] if isinstance(text, str) else list(text)
        cards = [draw_card(t, (width, height), background=background) for t in texts]
        rng = random.Random(seed)
        # Lossless noise costs a bit more than its 1.5 bytes per pixel (luma + chroma); the
        # estimate is corrected from the packets actually written, so the size lands close.
        per_row, written, rows_sent = width * 1.5 * 1.6, 0, 0
        last_look: tuple[int, int] | None = None
        for index in range(n_frames):
            if target_bytes:
                wanted = (target_bytes - written) / (n_frames - index)
                rows = min(height, max(2, int(wanted / per_row) // 2 * 2))
                frame = _noise_frame(av, (width, height), rows, rng)
                rows_sent += rows
            else:
                look = (index * len(cards) // n_frames, int(width * (index + 1) / n_frames))
                if look != last_look:  # converting is the slow part: only when the picture changes
                    image = cards[look[0]].copy()
                    # A progress bar, so frames differ like real footage.
                    ImageDraw.Draw(image).rectangle((0, 0, look[1], max(2, height // 60)), fill=INK)
                    picture, last_look = av.VideoFrame.from_image(image).reformat(format="yuv420p"), look
                frame = picture
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            packets = video.encode(frame)
            container.mux(packets)
            written += sum(p.size for p in packets)
            if target_bytes and written and rows_sent:
                per_row = max(width * 1.0, written / rows_sent)
        container.mux(video.encode())

        # One-second frames: the encoder splits them into its own 1024-sample frames, and far
        # fewer Python objects keep long videos (for duration-limit tests) quick to make.
        total, chunk, sent = round(seconds * rate), rate, 0
        while sent < total:
            count = min(chunk, total - sent)
            frame = av.AudioFrame(format="flt", layout="mono", samples=count)
            # A whole-hertz tone repeats every second, so each one-second chunk is the same (cached).
            frame.planes[0].update(_tone(count, rate, sent % rate, tone_hz).ljust(frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate, frame.pts, frame.time_base = rate, sent, Fraction(1, rate)
            container.mux(audio.encode(frame))
            sent += count
        container.mux(audio.encode())
    return path


def make_image(path: Path, size: tuple[int, int], format: str = "PNG", mode: str = "RGB", **save) -> Path:
    """Write a small test image of the given format and mode (e.g. RGBA PNG, JPEG, GIF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (200, 40, 60, 128) if mode == "RGBA" else (200, 40, 60)
    image = draw_card("test", size).convert(mode) if mode != "RGBA" else Image.new("RGBA", size, colour)
    image.save(path, format=format, **save)
    return path
