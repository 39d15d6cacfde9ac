"""What a Mastodon-API server says about itself: its family, text limit and the media it takes.

Mastodon, Takahē, GoToSocial and Akkoma/Pleroma all answer the Mastodon API, each a little
differently. The instance document (``/api/v2/instance``, else ``/api/v1/instance``) names the
family in its version string (``4.0.0 (compatible; Takahe 0.11)``) and lists what uploads it
takes (``configuration.media_attachments``). Nothing here is required to publish: a server that
answers neither document gets Mastodon's documented defaults.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.values import ImageAttachment, VideoAttachment

_COMPATIBLE = re.compile(r"\(compatible;\s*([^\s;)]+)", re.IGNORECASE)
_KNOWN = ("gotosocial", "akkoma", "pleroma", "takahe", "sharkey", "misskey", "iceshrimp", "firefish", "friendica")
# Mastodon streams over server-sent events, which Mastodon.py reads; the others stream over
# WebSocket only (GoToSocial, Akkoma/Pleroma) or not at all (Takahē): poll them.
SSE_FAMILIES = frozenset({"mastodon", "unknown"})


def family_of(version: str) -> str:
    """``mastodon``, ``takahe``, ``gotosocial``, ``akkoma``, ``pleroma``... from an instance's version string."""
    found = _COMPATIBLE.search(version)
    if found:
        return found.group(1).casefold().replace("ē", "e")
    lowered = version.casefold()
    for name in _KNOWN:
        if name in lowered:
            return name
    return "mastodon" if re.match(r"\d+\.\d+", version) else "unknown"


@dataclass(frozen=True)
class ServerInfo:
    """What the bot uses of an instance document; None where the server did not say."""

    family: str = "unknown"
    version: str = ""
    source: str = "defaults"  # "v2", "v1" or "defaults" (neither document could be read)
    max_characters: int | None = None
    max_media: int | None = None
    mime_types: frozenset[str] | None = None
    image_size_limit: int | None = None
    video_size_limit: int | None = None

    @property
    def streams(self) -> bool:
        return self.family in SSE_FAMILIES

    @property
    def label(self) -> str:
        shown = _COMPATIBLE.search(self.version)
        if shown:
            return self.version[shown.start() + 1 :].removeprefix("compatible;").strip(" )")
        return f"{self.family} {self.version}".strip() if self.version else self.family

    def refusal(self, items: Sequence[ImageAttachment | VideoAttachment]) -> str | None:
        """Why this server will refuse these attachments, or None when it should take them."""
        if self.max_media and len(items) > self.max_media:
            return f"{len(items)} attachments, the server ({self.label}) takes {self.max_media}"
        for item in items:
            mime = mimetypes.guess_type(item.path.name)[0] or "application/octet-stream"
            if self.mime_types is not None and mime not in self.mime_types:
                kinds = ", ".join(sorted(self.mime_types)) or "none"
                return f"{item.path.name}: the server ({self.label}) takes no {mime} (it takes {kinds})"
            limit = self.video_size_limit if isinstance(item, VideoAttachment) else self.image_size_limit
            try:
                size = item.path.stat().st_size
            except OSError:
                continue  # a missing file is the campaign check's and the upload's to report
            if limit and size > limit:
                return f"{item.path.name}: {size:,} bytes, the server ({self.label}) takes at most {limit:,}"
        return None


def parse_instance(data: Mapping[str, Any], source: str) -> ServerInfo:
    """An instance document (v2 or v1; Pleroma's v1 keys too) as ``ServerInfo``."""
    version = str(data.get("version") or "")
    configuration = data.get("configuration") or {}
    statuses = configuration.get("statuses") or {}
    media = configuration.get("media_attachments") or {}
    types = media.get("supported_mime_types")
    return ServerInfo(
        family=family_of(version),
        version=version,
        source=source,
        max_characters=_positive(statuses.get("max_characters") or data.get("max_toot_chars")),
        max_media=_positive(statuses.get("max_media_attachments")),
        mime_types=frozenset(str(t) for t in types) if isinstance(types, list) else None,
        image_size_limit=_positive(media.get("image_size_limit") or data.get("upload_limit")),
        video_size_limit=_positive(media.get("video_size_limit") or data.get("upload_limit")),
    )


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
