"""A local X API v2 server: posts, media upload, search, retweets, rate limits, faults."""

from sandboxes.x.sandbox import XSandbox

__all__ = ["XSandbox"]
