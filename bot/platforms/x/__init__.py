"""X (API v2): tweepy's ``Client`` for posts, reposts and search; v2 chunked media upload; X's text counting."""

from bot.platforms.x.adapter import X

__all__ = ["X"]
