"""bot.media on real files made by sandboxes.media: probing by content, fitting images, aspect ratios."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from PIL import Image

from bot.media import MediaError, aspect_ratio, container_names, fit_image, format_allowed, probe
from bot.platforms.bluesky import Bluesky
from bot.platforms.x import X
from sandboxes.media import make_banner, make_captions, make_image, make_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4", 3, size=(320, 180))


def _noise_png(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    channels = len(mode)
    data = random.Random(7).randbytes(size[0] * size[1] * channels)
    Image.frombytes(mode, size, data).save(path, format="PNG")
    return path


def test_probe_png_banner(tmp_path: Path) -> None:
    """A PNG is reported as an image with its Pillow format, size in bytes and dimensions."""
    path = make_banner(tmp_path / "banner.png", "Free Andrei and Irina", (1500, 500))
    info = probe(path)
    assert (info.kind, info.format, info.width, info.height) == ("image", "PNG", 1500, 500)
    assert info.bytes == path.stat().st_size
    assert info.mime == "image/png"


def test_probe_jpeg_ignores_extension(tmp_path: Path) -> None:
    """A JPEG saved under a .png name is still reported as JPEG: content wins over the extension."""
    path = make_image(tmp_path / "photo.png", (200, 100), format="JPEG")
    info = probe(path)
    assert (info.kind, info.format, info.mime) == ("image", "JPEG", "image/jpeg")


def test_probe_gif_counts_frames(tmp_path: Path) -> None:
    """An animated GIF reports how many frames it holds."""
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    info = probe(path)
    assert (info.kind, info.format, info.frames) == ("image", "GIF", 3)


def test_probe_mp4_video(clip: Path) -> None:
    """An H.264/AAC MP4 reports container, duration, dimensions and codecs without decoding frames."""
    info = probe(clip)
    assert info.kind == "video"
    assert info.format == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.container == "mp4"
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (320, 180, "h264", "aac")
    assert info.mime == "video/mp4"


def test_quicktime_is_told_apart_from_mp4(tmp_path: Path) -> None:
    """A QuickTime file shares PyAV's format name with MP4 but is reported as "mov" by its brand."""
    path = make_video(tmp_path / "clip.mp4", 1, size=(160, 90), container_format="mov")
    info = probe(path)
    assert info.container == "mov"
    assert format_allowed(info, X.limits.video_formats)
    assert not format_allowed(info, Bluesky.limits.video_formats)


def test_container_names_split_pyav_names() -> None:
    """PyAV's comma-joined container names map to the simple names platform limits use."""
    assert {"mp4", "mov"} <= container_names("mov,mp4,m4a,3gp,3g2,mj2")
    assert container_names("matroska,webm") == {"matroska", "webm", "mkv"}


def test_text_file_renamed_png_is_unknown(tmp_path: Path) -> None:
    """A text file named like an image is neither image nor video."""
    path = tmp_path / "banner.png"
    path.write_text("this is not a picture\n")
    assert probe(path).kind == "unknown"


def test_truncated_mp4_index_at_end_is_damaged(tmp_path: Path, clip: Path) -> None:
    """An MP4 cut off before its index (moov at the end) raises MediaError."""
    path = make_video(tmp_path / "late-index.mp4", 2, size=(160, 90), faststart=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match="damaged video"):
        probe(path)


def test_truncated_mp4_index_first_is_damaged(tmp_path: Path, clip: Path) -> None:
    """An MP4 whose index is intact but whose media data is cut off raises MediaError."""
    path = tmp_path / "cut.mp4"
    path.write_bytes(clip.read_bytes()[: clip.stat().st_size - 2000])
    with pytest.raises(MediaError, match="runs past the end of the file"):
        probe(path)


def test_truncated_png_and_jpeg_are_damaged(tmp_path: Path) -> None:
    """Images cut off mid-file raise MediaError instead of passing as valid."""
    png = make_banner(tmp_path / "b.png", "Free Andrei and Irina", (600, 200))
    jpeg = make_image(tmp_path / "p.jpg", (600, 400), format="JPEG")
    for path in (png, jpeg):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(MediaError, match="damaged image"):
            probe(path)


def test_jpeg_with_data_after_the_image_is_not_damaged(tmp_path: Path) -> None:
    """A phone 'motion photo' (a JPEG followed by other data) is still a valid JPEG, while its cut-off copy is not."""
    photo = make_image(tmp_path / "photo.jpg", (640, 480), format="JPEG")
    jpeg = photo.read_bytes()
    photo.write_bytes(jpeg + b"\0\0\0\x18ftypmp42" + random.Random(1).randbytes(4000))
    assert probe(photo).format == "JPEG"
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(MediaError, match="JPEG is truncated"):
        probe(cut)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    """A missing or empty file raises MediaError with a plain message."""
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "nothing.png")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="file is empty"):
        probe(tmp_path / "empty.mp4")


def test_good_captions(tmp_path: Path) -> None:
    """A WebVTT file is recognised by its header and reports its cues and the end of the last one."""
    path = make_captions(tmp_path / "c.vtt", ["Free Andrei", "Free Irina", "#FreeAndreiandIrina"], 6.0)
    info = probe(path)
    assert (info.kind, info.format, info.frames, info.mime) == ("captions", "WEBVTT", 3, "text/vtt")
    assert info.duration == pytest.approx(6.0)


def test_captions_with_bad_timing_name_the_line(tmp_path: Path) -> None:
    """A cue timing line that does not parse raises MediaError naming its line."""
    path = tmp_path / "bad.vtt"
    path.write_text("WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\nok\n\n2\n00:00:02 --> 00:00:04.000\nbad\n")
    with pytest.raises(MediaError, match="captions line 8: bad cue timing"):
        probe(path)


def test_captions_without_cues_or_header(tmp_path: Path) -> None:
    """A WebVTT file with no cue, or with a mangled header, is rejected."""
    empty = tmp_path / "empty.vtt"
    empty.write_text("WEBVTT\n\n")
    with pytest.raises(MediaError, match="no cues"):
        probe(empty)
    mangled = tmp_path / "mangled.vtt"
    mangled.write_text("WEBVTTX\n\n00:00.000 --> 00:01.000\nhi\n")
    with pytest.raises(MediaError, match="header"):
        probe(mangled)


def test_probe_sees_a_replaced_file(tmp_path: Path) -> None:
    """The probe cache does not hide a file that was replaced with different content."""
    path = make_banner(tmp_path / "b.png", "one", (300, 100))
    assert probe(path).width == 300
    make_image(path, (120, 80), format="JPEG")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert (probe(path).format, probe(path).width) == ("JPEG", 120)


def test_fit_image_returns_small_file_unchanged(tmp_path: Path) -> None:
    """An image already under the limit is returned byte for byte, with its mime type."""
    path = make_banner(tmp_path / "b.png", "Free Andrei and Irina", (1500, 500))
    data, mime = fit_image(path, 1_000_000)
    assert data == path.read_bytes()
    assert mime == "image/png"


def test_fit_image_shrinks_large_png_keeping_aspect(tmp_path: Path) -> None:
    """A 1.6 MB noisy PNG comes back under Bluesky's 1,000,000 bytes with its aspect ratio kept."""
    path = _noise_png(tmp_path / "big.png", (900, 600))
    assert path.stat().st_size > 1_000_000
    data, mime = fit_image(path, 1_000_000)
    assert len(data) <= 1_000_000
    assert mime == "image/jpeg"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.width / image.height == pytest.approx(1.5, rel=0.01)


def test_fit_image_flattens_transparency_on_white(tmp_path: Path) -> None:
    """A transparent PNG that must become JPEG is flattened on white, not black."""
    path = tmp_path / "logo.png"
    image = Image.frombytes("RGB", (400, 400), random.Random(3).randbytes(400 * 400 * 3)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 100, 100))  # fully transparent corner
    image.save(path, format="PNG")
    data, mime = fit_image(path, 150_000)
    assert mime == "image/jpeg" and len(data) <= 150_000
    with Image.open(io.BytesIO(data)) as out:
        assert min(out.convert("RGB").getpixel((5, 5))) > 240


def test_fit_image_keeps_png_when_optimising_is_enough(tmp_path: Path) -> None:
    """A bloated PNG that fits once optimised stays PNG (no lossy JPEG)."""
    path = tmp_path / "flat.png"
    Image.new("RGB", (1000, 1000), (190, 30, 45)).save(path, format="PNG", compress_level=0)
    assert path.stat().st_size > 1_000_000
    data, mime = fit_image(path, 1_000_000)
    assert mime == "image/png" and len(data) <= 1_000_000


def test_fit_image_applies_exif_orientation(tmp_path: Path) -> None:
    """A JPEG tagged 'rotate 90' is re-encoded upright, and aspect_ratio reports it upright."""
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (400, 300), (10, 20, 30)).save(path, format="JPEG", exif=exif)
    assert aspect_ratio(path) == (300, 400)
    data, _ = fit_image(path, 1_000_000)
    with Image.open(io.BytesIO(data)) as out:
        assert out.size == (300, 400)


def test_fit_image_gives_up_with_media_error(tmp_path: Path) -> None:
    """A limit no image can meet raises MediaError instead of looping or sending an oversized blob."""
    path = _noise_png(tmp_path / "big.png", (300, 300))
    with pytest.raises(MediaError, match="cannot be made smaller"):
        fit_image(path, 100)


def test_aspect_ratio_of_video_and_banner(tmp_path: Path, clip: Path) -> None:
    """aspect_ratio gives (width, height) for videos and images alike."""
    assert aspect_ratio(clip) == (320, 180)
    assert aspect_ratio(make_banner(tmp_path / "b.png", "x", (1200, 675))) == (1200, 675)


def test_make_video_reaches_target_bytes(tmp_path: Path) -> None:
    """make_video with target_bytes writes a valid MP4 near that size with the asked duration."""
    path = make_video(tmp_path / "big.mp4", 4, size=(320, 180), target_bytes=3_000_000)
    info = probe(path)
    assert info.bytes == pytest.approx(3_000_000, rel=0.1)
    assert info.duration == pytest.approx(4.0, abs=0.1)
    assert info.video_codec == "h264"


SHIPPED = Path(__file__).resolve().parent.parent / "posts" / "media"


def test_shipped_media_are_real_and_small() -> None:
    """Every shipped banner and supporter video probes as what it claims, captions match, and the set stays small."""
    banners = sorted(SHIPPED.glob("*.png"))
    videos = sorted((SHIPPED / "videos").glob("*.mp4"))
    assert len(banners) >= 3 and len(videos) >= 5
    for banner in banners:
        info = probe(banner)
        assert (info.kind, info.format) == ("image", "PNG") and info.bytes < 300_000
    for video in videos:
        info = probe(video)
        assert (info.container, info.video_codec, info.audio_codec) == ("mp4", "h264", "aac")
        assert info.bytes < 300_000
        captions = probe(video.with_suffix(".vtt"))
        assert captions.kind == "captions"
        assert captions.duration == pytest.approx(info.duration, abs=0.2)
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total < 5_000_000


def test_aspect_ratio_of_rotated_phone_video(tmp_path: Path) -> None:
    """A video stored landscape with a 90-degree display rotation reports its upright (portrait) shape."""
    path = make_video(tmp_path / "phone.mp4", 1, size=(320, 180), rotation=90)
    assert (probe(path).width, probe(path).height) == (320, 180)
    assert aspect_ratio(path) == (180, 320)


def test_subrip_renamed_vtt_is_named(tmp_path: Path) -> None:
    """A SubRip file saved as .vtt is rejected with a message that says what it is."""
    path = tmp_path / "captions.vtt"
    path.write_text("1\n00:00:00,000 --> 00:00:02,000\nFree Andrei and Irina\n")
    with pytest.raises(MediaError, match="looks like SubRip"):
        probe(path)


def test_fit_image_converts_formats_platforms_refuse(tmp_path: Path) -> None:
    """A small BMP, which no platform takes, is re-encoded to a format they do take."""
    path = make_image(tmp_path / "old.bmp", (300, 200), format="BMP")
    data, mime = fit_image(path, 1_000_000)
    assert mime in ("image/png", "image/jpeg")
    with Image.open(io.BytesIO(data)) as out:
        assert out.size == (300, 200)


def test_directory_is_not_media(tmp_path: Path) -> None:
    """A folder where a media file was expected raises MediaError, not an OSError."""
    (tmp_path / "banner.png").mkdir()
    with pytest.raises(MediaError, match="not a regular file"):
        probe(tmp_path / "banner.png")
