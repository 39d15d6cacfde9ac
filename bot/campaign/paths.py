"""Paths written in campaign files must name files inside the campaign folder."""

from __future__ import annotations

import os
from pathlib import Path

from bot.campaign.problems import suggest


class PathProblem(Exception):
    """The written path is unusable; the message is staff-facing and names only what they wrote."""


def inside(path: str | Path, root: Path) -> bool:
    try:
        Path(path).relative_to(root)
        return True
    except ValueError:
        return False


def link_out(root: Path, rel: str) -> str | None:
    """The first part of ``rel`` (``a/b/c``, under the resolved ``root``) that is a symbolic link out of ``root``."""
    parts = rel.split("/")
    for end in range(1, len(parts) + 1):
        here = root.joinpath(*parts[:end])
        if here.is_symlink() and not inside(here.resolve(), root):
            return "/".join(parts[:end])
    return None


def resolve_inside(root: Path, base: Path, written: str) -> Path:
    """The real file that ``written`` (relative to ``base``) names, or PathProblem.

    ``root`` must already be resolved. Lexical ``..`` escapes and symbolic links
    that lead out of the campaign are both refused, so a campaign repository
    cannot make the bot upload ``/etc/passwd``.
    """
    if not written.strip():
        raise PathProblem("the file name is empty (expected a path relative to posts/, like media/banner.png)")
    if os.path.isabs(written) or written.startswith("~"):
        raise PathProblem(
            f"'{written}' is an absolute path (expected a path relative to posts/, like media/banner.png)"
        )
    lexical = Path(os.path.normpath(base / written))
    if not inside(lexical, root):
        raise PathProblem(f"'{written}' leaves the campaign folder (expected a file under posts/)")
    if not os.path.lexists(lexical):
        raise PathProblem(f"'{written}' does not exist{_nearby(lexical, written)}")
    real = lexical.resolve()
    if not inside(real, root):
        raise PathProblem(f"'{written}' is a symbolic link to a file outside the campaign folder")
    if not real.exists():
        raise PathProblem(f"'{written}' is a broken symbolic link")
    if not real.is_file():
        raise PathProblem(f"'{written}' is not a file")
    return real


def _nearby(missing: Path, written: str) -> str:
    """A "did you mean" among the files next to where the missing one was expected."""
    folder = missing.parent
    if not folder.is_dir():
        return " (expected a file under posts/)"
    hint = suggest(missing.name, (p.name for p in folder.iterdir() if p.is_file()))
    if not hint:
        return " (expected a file under posts/)"
    name = hint[len(" (did you mean '") : -len("'?)")]
    prefix = written[: len(written) - len(missing.name)] if written.endswith(missing.name) else ""
    return f" (did you mean '{prefix}{name}'?)"
