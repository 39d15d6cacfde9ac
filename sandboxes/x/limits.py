"""Per-account rate-limit windows of the fake X API v2, and the headers X sends about them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandboxes.x import errors as err

WINDOW = 900
# Per-user limits per 15-minute window, as recorded X answers show them (retweets 50,
# deletes 50, search 180 in user context), except posting: X's 200 is raised to 300 so a
# 200-slot test with retries fits one window. Tests shrink any of them with ``set_limit``.
DEFAULT_LIMITS: dict[str, int] = {
    "POST /2/tweets": 300,
    "DELETE /2/tweets/:id": 50,
    "GET /2/users/me": 75,
    "GET /2/users/:id/tweets": 900,
    "POST /2/users/:id/retweets": 50,
    "GET /2/tweets/search/recent": 180,
    "POST /2/media/upload": 500,
    "POST /2/media/upload/initialize": 500,
    "POST /2/media/upload/:id/append": 5000,
    "POST /2/media/upload/:id/finalize": 500,
    "GET /2/media/upload": 1000,
    "POST /2/media/metadata": 500,
    "POST /2/media/subtitles": 100,
}
DAILY_POSTS = 2400  # x-user-limit-24hour-limit for POST /2/tweets


class RateLimits:
    """Counts requests per (account, endpoint) window; a limit may be set for one account or for all."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """X's default limits again, every window and daily count back to zero."""
        with self.lock:
            self.limits: dict[tuple[str | None, str], tuple[int, int]] = {
                (None, k): (v, WINDOW) for k, v in DEFAULT_LIMITS.items()
            }
            self.windows: dict[tuple[str, str], tuple[int, float]] = {}  # (user, endpoint) -> (used, reset)
            self.daily: dict[str, tuple[int, float]] = {}

    def set(self, endpoint: str, limit: int, window: int = WINDOW, user_id: str | None = None) -> None:
        with self.lock:
            self.limits[(user_id, endpoint)] = (limit, window)

    def charge(self, user_id: str, endpoint: str) -> dict[str, str]:
        """Count one request against the user's window; the rate-limit headers, or 429."""
        now = self._wall()
        with self.lock:
            limit, window = self.limits.get((user_id, endpoint)) or self.limits.get((None, endpoint)) or (1000, WINDOW)
            used, reset = self.windows.get((user_id, endpoint), (0, 0.0))
            if now >= reset:
                used, reset = 0, now + window
            headers = {"x-rate-limit-limit": str(limit), "x-rate-limit-reset": str(int(reset))}
            if used >= limit:
                headers["x-rate-limit-remaining"] = "0"
                raise err.too_many(headers)
            if endpoint == "POST /2/tweets":
                headers.update(self._charge_daily(user_id, now))
            self.windows[(user_id, endpoint)] = (used + 1, reset)
            headers["x-rate-limit-remaining"] = str(limit - used - 1)
            return headers

    def _charge_daily(self, user_id: str, now: float) -> dict[str, str]:
        used, reset = self.daily.get(user_id, (0, 0.0))
        if now >= reset:
            used, reset = 0, now + 86400
        limit = self.limits.get((user_id, "daily"), self.limits.get((None, "daily"), (DAILY_POSTS, 86400)))[0]
        headers = {"x-user-limit-24hour-limit": str(limit), "x-user-limit-24hour-reset": str(int(reset))}
        if used >= limit:
            headers["x-user-limit-24hour-remaining"] = "0"
            raise err.too_many({**headers, "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(reset))})
        self.daily[user_id] = (used + 1, reset)
        headers["x-user-limit-24hour-remaining"] = str(limit - used - 1)
        return headers
