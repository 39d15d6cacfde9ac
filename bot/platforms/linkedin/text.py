"""LinkedIn's "little text" format for a post's ``commentary``.

https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/little-text-format
says characters reserved for little elements must be backslash-escaped to read as plain text; the list is
``\\ | { } @ [ ] ( ) < > # * _ ~``. Unescaped, LinkedIn reads a mention, hashtag or template where there is
none and cuts or mangles the rest of the post. Our decisions:

- a hashtag ``#word`` (``#`` at the start or after a space, then letters and digits) stays a HashtagElement,
  so the campaign hashtag is a clickable hashtag on LinkedIn as on the other platforms;
- every other reserved character is escaped, ``@`` included: a mention needs the member's or organization's
  URN (``@[Name](urn:li:organization:1)``), which campaign texts do not carry, so none is ever inferred;
- links are escaped like any text: LinkedIn unescapes before it finds links, so they still link.
"""

from __future__ import annotations

import re

RESERVED = frozenset("\\|{}@[]()<>#*_~")
# A hashtag as LinkedIn renders one: letters and digits only (an underscore is reserved and escaped).
_HASHTAG = re.compile(r"(?:(?<=\s)|^)#(?=[^\W_])")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def escape(text: str) -> str:
    """``text`` as commentary: every reserved character escaped, except the ``#`` that starts a hashtag."""
    keep = {m.start() for m in _HASHTAG.finditer(text)}
    return "".join(f"\\{ch}" if ch in RESERVED and i not in keep else ch for i, ch in enumerate(text))


def unescape(commentary: str) -> str:
    """The plain text a reader sees for commentary written by ``escape`` (hashtags read as their text)."""
    return _ESCAPED.sub(lambda m: m.group(1), commentary)
