"""The one Graph API version setting, and how long Meta keeps it.

Versioning policy (https://developers.facebook.com/docs/graph-api/guides/versioning): a version stays usable for
two years after the next version is released; with no successor yet, at least two years after its own release.
Release dates from the changelog (https://developers.facebook.com/docs/graph-api/changelog). Threads has its own
version (``v1.0``, https://developers.facebook.com/docs/threads) with no announced end.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

GRAPH_VERSION = "v24.0"
THREADS_VERSION = "v1.0"
SETTING = "BOT_GRAPH_VERSION"
WARN_BEFORE = timedelta(days=90)

RELEASED = {
    "v19.0": date(2024, 1, 23),
    "v20.0": date(2024, 5, 21),
    "v21.0": date(2024, 10, 2),
    "v22.0": date(2025, 1, 21),
    "v23.0": date(2025, 5, 29),
    "v24.0": date(2025, 10, 8),
}


def graph_version() -> str:
    """The Graph API version for Facebook and Instagram: ``BOT_GRAPH_VERSION`` or the pinned one."""
    return os.environ.get(SETTING, "").strip() or GRAPH_VERSION


def end_of_life(version: str) -> date | None:
    """The earliest day Meta may retire ``version`` (None for a version this table does not know)."""
    if version not in RELEASED:
        return None
    later = sorted(d for v, d in RELEASED.items() if d > RELEASED[version])
    start = later[0] if later else RELEASED[version]
    return start.replace(year=start.year + 2)


def version_warning(version: str, today: date | None = None) -> str | None:
    """A sentence for the log when ``version`` is unknown, retired or within 90 days of retirement; else None."""
    today = today or datetime.now(UTC).date()
    end = end_of_life(version)
    if end is None:
        return f"Graph API {version} is not one this bot was tested with (pinned: {GRAPH_VERSION}); set {SETTING}"
    if end - today <= WARN_BEFORE:
        verb = "was" if end <= today else "will be"
        return f"Graph API {version} {verb} retired on {end.isoformat()}: move {SETTING} to a newer version"
    return None
