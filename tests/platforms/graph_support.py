"""What the Graph platform tests share: JPEG media, a clock the sandbox and the adapter's sleep both follow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from sandboxes.media import make_banner, make_captions, make_video


class GraphClock:
    """Seconds since the epoch that move only when the adapter sleeps or the test advances them."""

    def __init__(self, start: float = 1_642_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jpeg_folder(root: Path) -> Path:
    """banner-0..3.jpg (1080x1080), wide.jpg (3:1, outside Instagram's ratios), clip.mp4 and clip.vtt (3 s)."""
    for n in range(4):
        make_banner(root / f"banner-{n}.png", f"Free Andrei and Irina ({n + 1}/4)", (1080, 1080))
        Image.open(root / f"banner-{n}.png").convert("RGB").save(root / f"banner-{n}.jpg", "JPEG", quality=80)
    make_banner(root / "wide.png", "Free them", (1500, 500))
    Image.open(root / "wide.png").convert("RGB").save(root / "wide.jpg", "JPEG")
    make_video(root / "clip.mp4", seconds=3, size=(360, 640))
    make_captions(root / "clip.vtt", ["Andrei and Irina", "must be freed"], seconds=3)
    make_video(root / "wide.mp4", seconds=3, size=(640, 360))
    return root


def on_clock(sandbox: Any, host: Any, clock: GraphClock, processing: float = 0.0) -> Iterator[GraphClock]:
    """A fixture's body: the sandbox's containers and the host's URLs age by ``clock``; restored after the test."""
    sandbox.use_clock(clock, processing)
    host.wall = clock
    yield clock
    sandbox.restore_defaults()
    host.reset()
