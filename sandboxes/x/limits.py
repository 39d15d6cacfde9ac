"""Rate limits of the fake X API v2 as X publishes them, and the headers X sends about them.

From X's rate-limit table (docs.x.com, x-api/fundamentals/rate-limits, read December 2026)
and the manage-posts and retweets integration guides:

- per user, per endpoint, per 15 minutes (``USER_LIMITS``): ``POST /2/tweets`` 100, retweets 50,
  recent search 300, media upload 500 (1,875 for the initialize/append/finalize routes), ...;
- per user, posts and reposts together: 300 per 3 hours (``SHARED``);
- per user, posts: 2,400 per 24 hours (X's published daily posting limit), sent as
  ``x-user-limit-24hour-*``;
- per app (all its users together), per 24 hours (``APP_DAILY``): ``POST /2/tweets`` 10,000,
  media upload 50,000, ...; sent as ``x-app-limit-24hour-*``.

Every answer carries ``x-rate-limit-limit/-remaining/-reset`` of its 15-minute window; past a
limit X answers 429 and ``x-rate-limit-reset`` tells when the binding window reopens.
Windows start with their first request. Tests tighten a limit with ``set``/``set_app``,
exempt an account that must post more than a person could (``exempt``), and benchmarks that
measure the bot rather than X turn limits off (``enabled = False``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandboxes.x import errors as err

WINDOW = 900
DAY = 86400
USER_LIMITS: dict[str, int] = {
    "POST /2/tweets": 100,
    "DELETE /2/tweets/:id": 50,
    "GET /2/users/me": 75,
    "GET /2/users/:id/tweets": 900,
    "POST /2/users/:id/retweets": 50,
    "DELETE /2/users/:id/retweets/:tweet_id": 50,
    "GET /2/tweets/search/recent": 300,
    "POST /2/media/upload": 500,
    "GET /2/media/upload": 1000,
    "POST /2/media/upload/initialize": 1875,
    "POST /2/media/upload/:id/append": 1875,
    "POST /2/media/upload/:id/finalize": 1875,
    "POST /2/media/metadata": 500,
    "POST /2/media/subtitles": 100,
}
APP_DAILY: dict[str, int] = {
    "POST /2/tweets": 10_000,
    "POST /2/media/upload": 50_000,
    "GET /2/media/upload": 100_000,
    "POST /2/media/upload/initialize": 180_000,
    "POST /2/media/upload/:id/append": 180_000,
    "POST /2/media/upload/:id/finalize": 180_000,
    "POST /2/media/metadata": 50_000,
    "POST /2/media/subtitles": 10_000,
}
SHARED_NAME = "posts_and_reposts"
SHARED = (("POST /2/tweets", "POST /2/users/:id/retweets"), 300, 3 * 3600)
DAILY_NAME = "daily"
DAILY_POSTS = 2400  # x-user-limit-24hour-limit of POST /2/tweets
# Kept for older callers: the per-user 15-minute limits.
DEFAULT_LIMITS = USER_LIMITS

Window = tuple[int, float]  # (used, reset epoch)


class RateLimits:
    """Counts requests per (user, endpoint), per user for posts and reposts, per app per day; thread-safe."""

    def __init__(self, wall: Callable[[], float], *, enabled: bool = True) -> None:
        self._wall = wall
        self.enabled = enabled
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """X's published limits again, every window back to zero, no account exempt."""
        with self.lock:
            self.limits: dict[tuple[str | None, str], tuple[int, int]] = {
                (None, k): (v, WINDOW) for k, v in USER_LIMITS.items()
            }
            self.limits[(None, SHARED_NAME)] = (SHARED[1], SHARED[2])
            self.limits[(None, DAILY_NAME)] = (DAILY_POSTS, DAY)
            self.app_limits: dict[str, tuple[int, int]] = {k: (v, DAY) for k, v in APP_DAILY.items()}
            self.windows: dict[tuple[str, str], Window] = {}  # (user or app, limit name) -> window
            self.exempt_users: set[str] = set()

    def set(self, endpoint: str, limit: int, window: int = WINDOW, user_id: str | None = None) -> None:
        """A per-user limit: an endpoint, ``daily`` (posts a day) or ``posts_and_reposts`` (per 3 hours)."""
        if endpoint == DAILY_NAME and window == WINDOW:
            window = DAY
        if endpoint == SHARED_NAME and window == WINDOW:
            window = SHARED[2]
        with self.lock:
            self.limits[(user_id, endpoint)] = (limit, window)

    def set_app(self, endpoint: str, limit: int, window: int = DAY) -> None:
        """The per-app cap of an endpoint (all the app's users together)."""
        with self.lock:
            self.app_limits[endpoint] = (limit, window)

    def exempt(self, user_id: str) -> None:
        """This user is never limited nor counted (a test account standing in for many people)."""
        with self.lock:
            self.exempt_users.add(user_id)

    def _limit(self, user_id: str, name: str) -> tuple[int, int] | None:
        return self.limits.get((user_id, name)) or self.limits.get((None, name))

    def _window(self, owner: str, name: str, length: int, now: float) -> Window:
        used, reset = self.windows.get((owner, name), (0, 0.0))
        return (0, now + length) if now >= reset else (used, reset)

    def charge(self, user_id: str, endpoint: str, app_id: str = "") -> dict[str, str]:
        """Count one request of ``user_id`` (of app ``app_id``); X's rate-limit headers, or 429 with them."""
        if not self.enabled:
            return {}
        now = self._wall()
        with self.lock:
            if user_id in self.exempt_users:
                return {}
            # Every cap this request counts against: (window key, limit, used, reset, header prefix).
            caps: list[tuple[tuple[str, str], int, int, float, str | None]] = []
            limit, length = self._limit(user_id, endpoint) or (1000, WINDOW)
            caps.append(((user_id, endpoint), limit, *self._window(user_id, endpoint, length, now), "x-rate-limit"))
            if endpoint in SHARED[0]:
                shared, shared_length = self._limit(user_id, SHARED_NAME) or (SHARED[1], SHARED[2])
                window = self._window(user_id, SHARED_NAME, shared_length, now)
                caps.append(((user_id, SHARED_NAME), shared, *window, None))  # X sends no header of its own for it
            if endpoint == "POST /2/tweets":
                daily, daily_length = self._limit(user_id, DAILY_NAME) or (DAILY_POSTS, DAY)
                window = self._window(user_id, DAILY_NAME, daily_length, now)
                caps.append(((user_id, DAILY_NAME), daily, *window, "x-user-limit-24hour"))
            if endpoint in self.app_limits:
                cap, cap_length = self.app_limits[endpoint]
                window = self._window(f"app:{app_id}", endpoint, cap_length, now)
                caps.append(((f"app:{app_id}", endpoint), cap, *window, "x-app-limit-24hour"))
            headers: dict[str, str] = {}
            for _, cap_limit, used, reset, prefix in caps:
                if prefix:
                    headers.update(_headers(prefix, cap_limit, used, reset))
            binding = next((c for c in caps if c[2] >= c[1]), None)
            if binding is not None:
                # x-rate-limit-* tell when the binding window reopens (the 3-hour one has no headers of its own).
                _, cap_limit, _, reset, prefix = binding
                if prefix is None:
                    headers["x-rate-limit-limit"] = str(cap_limit)
                headers.update({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(reset))})
                raise err.too_many(headers)
            for key, _, used, reset, _ in caps:
                self.windows[key] = (used + 1, reset)
            return headers


def _headers(prefix: str, limit: int, used: int, reset: float) -> dict[str, str]:
    return {
        f"{prefix}-limit": str(limit),
        f"{prefix}-remaining": str(max(0, limit - used - 1)),
        f"{prefix}-reset": str(int(reset)),
    }
