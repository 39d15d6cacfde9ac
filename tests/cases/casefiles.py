"""Builds a campaign for one case: the base campaign, the case's files on top, then make.txt.

make.txt holds one instruction a line, for what git should not store:
``delete REL``, ``link REL TARGET``, ``image REL WxH FORMAT [PAD_BYTES]``,
``video REL SECONDS [CONTAINER]``, ``unset VAR``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sandboxes.media import make_image, make_video

CASES = Path(__file__).parent
BASE = CASES / "base"
SPECIAL = {"expected.txt", "make.txt", "README.md"}
BASE_ENV = (
    "X_INDEX_CONSUMER_KEY",
    "X_INDEX_CONSUMER_SECRET",
    "X_INDEX_ACCESS_TOKEN",
    "X_INDEX_ACCESS_TOKEN_SECRET",
    "MASTODON_A19_TOKEN",
    "BLUESKY_INDEX_APP_PASSWORD",
)


def cases(kind: str) -> list[Path]:
    return sorted(p for p in (CASES / kind).iterdir() if p.is_dir())


def build(case: Path, dest: Path) -> tuple[Path, list[str]]:
    """The case's campaign folder under ``dest``, and the env variables it wants unset."""
    root = dest / "campaign"
    shutil.copytree(BASE, root)
    for path in case.rglob("*"):
        rel = path.relative_to(case)
        if path.is_file() and rel.as_posix() not in SPECIAL:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / rel)
    unset = []
    make = case / "make.txt"
    for line in make.read_text().splitlines() if make.exists() else []:
        if not line.strip() or line.startswith("#"):
            continue
        verb, target, *rest = line.split()
        path = root / target
        if verb == "delete":
            os.remove(path)
        elif verb == "link":
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(rest[0], path)
        elif verb == "image":
            width, height = (int(n) for n in rest[0].split("x"))
            make_image(path, (width, height), rest[1])
            if len(rest) > 2:  # trailing bytes make a file big without making git store it
                with open(path, "ab") as handle:
                    handle.write(b"\0" * int(rest[2]))
        elif verb == "video":
            container = rest[1] if len(rest) > 1 else "mp4"
            make_video(path, float(rest[0]), size=(32, 18), fps=1, tone_hz=None, container_format=container)
        elif verb == "unset":
            unset.append(target)
        else:
            raise ValueError(f"{make}: unknown instruction {verb!r}")
    return root, unset
