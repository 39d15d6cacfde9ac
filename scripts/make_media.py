"""Regenerate every media file the sample campaign ships under posts/media/.

    .venv/bin/python scripts/make_media.py            # writes posts/media/
    .venv/bin/python scripts/make_media.py --check    # exit 1 if a shipped file differs

The banners and supporter videos are stand-ins drawn from text (no photos, no
recorded people): real campaign material replaces them file for file. Output is
deterministic, so a reviewer can regenerate and compare byte for byte.
Each video's cards and captions come from the same lines, so they line up.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxes.media import make_banner, make_captions, make_video  # noqa: E402

NAVY = (24, 42, 84)
TAG = "#FreeAndreiandIrina"

# file name -> (headline, size, background)
BANNERS: dict[str, tuple[str, tuple[int, int], tuple[int, int, int] | None]] = {
    "banner-1.png": ("Free Andrei and Irina", (1500, 500), None),
    "banner-2.png": ("Jailed in Belarus since 12 January 2021", (1200, 675), None),
    "banner-3.png": ("Andrei faces up to 15 years in prison. Irina faces up to 3 years.", (1200, 675), NAVY),
    "banner-4.png": ("Irina Zlobina: her courage must not slip from view", (1200, 675), None),
    "banner-5.png": ("Journalism is not a crime. Free Andrei and Irina", (1080, 1080), NAVY),
    "banner-6.png": ("Over 900 political prisoners are held in Belarus", (1200, 675), NAVY),
}

VIDEO_SECONDS = 8.0
VIDEO_SIZE = (640, 360)

# video stem -> lines shown as cards and written as captions, in order
VIDEOS: dict[str, list[str]] = {
    "001-supporter": [
        "A message for Andrei and Irina",
        "Andrei spent his career defending other people's right to speak.",
        "Now he and Irina need us to speak for them.",
        TAG,
    ],
    "002-supporter": [
        "Andrei is accused of paying fines for journalists and protesters.",
        "Helping people who were detained is not treason.",
        "Release Andrei and Irina now.",
    ],
    "003-supporter": [
        "Andrei and Irina are kind and generous people.",
        "In detention they are not allowed to see each other.",
        "We will keep saying their names.",
        TAG,
    ],
    "004-supporter": [
        "Irina Zlobina faces up to three years in prison.",
        "Her courage deserves the world's attention.",
        "Free Irina. Free Andrei.",
    ],
    "005-supporter": [
        "More than 900 political prisoners are held in Belarus.",
        "Andrei and Irina are two of them.",
        "Free them all. " + TAG,
    ],
    "006-supporter": [
        "Andrei loves English football and Depeche Mode.",
        "Friends say he meets detention with irony and humour.",
        "Let's bring him and Irina home. " + TAG,
    ],
}


def generate(media: Path) -> list[Path]:
    """Write every banner, video and captions file under ``media``; return their paths."""
    written = []
    for name, (headline, size, background) in BANNERS.items():
        options = {"background": background} if background else {}
        written.append(make_banner(media / name, headline, size, subtitle=TAG, **options))
    for stem, lines in VIDEOS.items():
        written.append(
            make_video(media / "videos" / f"{stem}.mp4", VIDEO_SECONDS, VIDEO_SIZE, text=lines, tone_hz=None)
        )
        written.append(make_captions(media / "videos" / f"{stem}.vtt", lines, VIDEO_SECONDS))
    return written


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    args = parser.parse_args()
    shipped = ROOT / "posts" / "media"
    if not args.check:
        paths = generate(shipped)
        total = sum(p.stat().st_size for p in paths)
        print(f"wrote {len(paths)} files under {shipped.relative_to(ROOT)} ({total / 1024:.0f} KiB)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [
            p.relative_to(tmp)
            for p in fresh
            if _digest(p) != _digest(shipped / p.relative_to(tmp))
            if (shipped / p.relative_to(tmp)).exists()
        ]
        missing = [p.relative_to(tmp) for p in fresh if not (shipped / p.relative_to(tmp)).exists()]
    for rel in missing:
        print(f"missing: posts/media/{rel}")
    for rel in stale:
        print(f"differs: posts/media/{rel}")
    print("media up to date" if not (stale or missing) else "run scripts/make_media.py to regenerate")
    return 1 if stale or missing else 0


if __name__ == "__main__":
    sys.exit(main())
