"""Bluesky rich text and record keys: facets with UTF-8 byte offsets, deterministic TIDs, post URLs."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

_LINK_TRAILING = ".,;:!?)]}'\""


@functools.cache
def patterns() -> SimpleNamespace:
    """The compiled patterns, on first use: a worker without Bluesky accounts never loads ``regex`` (~2 MB)."""
    import regex

    return SimpleNamespace(
        # A tag starts after a space or at the start, runs to the next space, and is not only digits.
        tag=regex.compile(r"(?:^|(?<=\s))[#＃]([^\s#＃]+)"),
        trailing_punct=regex.compile(r"[[\p{P}\p{S}]--[_\-]]+$", regex.V1),
        link=regex.compile(r"(?:^|(?<=[\s(]))(https?://[^\s<>\"]+)"),
        mention=regex.compile(r"(?:^|(?<=[\s(]))@([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z][a-zA-Z0-9-]*)"),
        grapheme=regex.compile(r"\X"),
    )


MAX_TAG_CHARS = 64
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_TID_EPOCH_US = 1_672_531_200_000_000  # 2023-01-01: derived TIDs read as plausible past times
_TID_SPAN_US = 2 * 365 * 24 * 3600 * 1_000_000


def _byte_index(text: str, char_index: int) -> int:
    return len(text[:char_index].encode("utf-8"))


def _facet(text: str, start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": _byte_index(text, start), "byteEnd": _byte_index(text, end)},
        "features": [feature],
    }


def build_facets(text: str, resolve_handle: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """Facets for #tags, http(s) links and @mentions (mentions only when ``resolve_handle`` finds a DID)."""
    facets: list[tuple[int, dict[str, Any]]] = []
    for match in patterns().link.finditer(text):
        uri = match.group(1).rstrip(_LINK_TRAILING)
        start = match.start(1)
        facets.append(
            (start, _facet(text, start, start + len(uri), {"$type": "app.bsky.richtext.facet#link", "uri": uri}))
        )
    taken = [(f["index"]["byteStart"], f["index"]["byteEnd"]) for _, f in facets]
    for match in patterns().tag.finditer(text):
        tag = patterns().trailing_punct.sub("", match.group(1))
        if not tag or tag.isdigit() or len(tag) > MAX_TAG_CHARS:
            continue
        start, end = match.start(), match.start(1) + len(tag)
        byte_start = _byte_index(text, start)
        if any(lo <= byte_start < hi for lo, hi in taken):  # a '#' inside a link is the link's fragment
            continue
        facets.append((start, _facet(text, start, end, {"$type": "app.bsky.richtext.facet#tag", "tag": tag})))
    if resolve_handle is not None:
        for match in patterns().mention.finditer(text):
            handle = match.group(1).rstrip(".-")
            did = resolve_handle(handle)
            if did:
                start = match.start()
                end = match.start(1) + len(handle)
                facets.append(
                    (start, _facet(text, start, end, {"$type": "app.bsky.richtext.facet#mention", "did": did}))
                )
    return [facet for _, facet in sorted(facets, key=lambda item: item[0])]


def tags_in(record: dict[str, Any]) -> set[str]:
    """Lower-cased hashtags of a post record: tag facets, the record's ``tags`` field, and #words in its text."""
    found = {str(t).lower() for t in record.get("tags") or ()}
    for facet in record.get("facets") or ():
        for feature in facet.get("features") or ():
            if feature.get("$type", "").endswith("#tag") and feature.get("tag"):
                found.add(str(feature["tag"]).lower())
    for match in patterns().tag.finditer(record.get("text") or ""):
        found.add(patterns().trailing_punct.sub("", match.group(1)).lower())
    return found


def tid_for(seed: str) -> str:
    """A record key in TID syntax derived only from ``seed``: the same seed always gives the same key."""
    digest = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:16], "big")
    micros = _TID_EPOCH_US + digest % _TID_SPAN_US
    clock_id = (digest >> 64) & 0x3FF
    value = (micros << 10) | clock_id  # the top bit stays 0, as the TID syntax requires
    return "".join(_S32[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_url(handle: str, uri: str) -> str:
    """The bsky.app web address of a post from its at:// URI."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"
