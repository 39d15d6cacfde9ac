"""A supporter video's ``cover:`` image: ``bot check`` holds it to what Instagram Reels take, with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from bot.campaign import inspect, load

SHIPPED = Path(__file__).resolve().parents[2]
POST = "posts/videos/001-supporter.yaml"


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the shipped campaign (its supporter video goes to facebook-, instagram- and threads-index)."""
    root = tmp_path / "campaign"
    for part in ("config", "posts", "schedules"):
        shutil.copytree(SHIPPED / part, root / part, ignore=shutil.ignore_patterns("state", ".cache*"))
    return root


def _with_cover(root: Path, cover: str) -> int:
    """Adds ``cover:`` to the supporter video's post; returns its line."""
    post = root / POST
    lines = post.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("captions_lang:")) + 1
    lines.insert(at, f"cover: {cover}")
    post.write_text("\n".join(lines) + "\n")
    return at + 1


def _cover_problems(root: Path) -> list[str]:
    result = inspect(root)
    return [p for p in result.errors + result.warnings if "cover" in p]


def test_a_jpeg_cover_passes_and_reaches_the_post(shipped: Path):
    """A JPEG cover is no problem, and the loaded video carries its path."""
    Image.new("RGB", (1080, 1920), "red").save(shipped / "posts/media/videos/001-cover.jpg", "JPEG")
    _with_cover(shipped, "media/videos/001-cover.jpg")
    assert _cover_problems(shipped) == []
    video = load(shipped).posts["001-supporter"].video
    assert video is not None and video.cover == shipped / "posts/media/videos/001-cover.jpg"


def test_a_png_cover_is_refused_for_instagram_at_its_line(shipped: Path):
    """A PNG cover is an error at the cover's line naming Instagram and JPEG; Facebook and Threads ignore the cover."""
    Image.new("RGB", (1080, 1920), "red").save(shipped / "posts/media/videos/001-cover.png", "PNG")
    line = _with_cover(shipped, "media/videos/001-cover.png")
    assert _cover_problems(shipped) == [
        f"{POST}:{line}: cover: 'media/videos/001-cover.png' is a PNG image, which instagram does not take as a "
        "cover (expected JPEG)"
    ]


def test_a_missing_cover_is_named_at_its_line(shipped: Path):
    """A cover file that is not there is an error at the cover's line."""
    line = _with_cover(shipped, "media/videos/no-such-cover.jpg")
    [problem] = _cover_problems(shipped)
    assert problem.startswith(f"{POST}:{line}: cover: ") and "no-such-cover.jpg" in problem


def test_a_cover_without_a_video_is_refused(shipped: Path):
    """``cover:`` on a post without a video is an error: it is only used with video."""
    post = next(p for p in (shipped / "posts").rglob("*.yaml") if "video:" not in p.read_text())
    post.write_text(post.read_text() + "cover: media/videos/001-cover.jpg\n")
    assert any("cover: is only used with video" in p for p in inspect(shipped).errors)
