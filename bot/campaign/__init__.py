"""The campaign files: content model, loading with line numbers, validation.

``load(root)`` returns a ``Campaign`` or raises ``ConfigError`` listing every
problem as ``path:line: message``; ``inspect(root)`` also returns warnings.
"""

from bot.campaign.loader import Inspection, inspect, load, missing_secrets, secret_problems
from bot.core.model import (
    Account,
    Campaign,
    Consent,
    Media,
    Policy,
    Post,
    ReshareConfig,
    Schedule,
    Slot,
    Supporter,
    Track,
    Video,
)

__all__ = [
    "Account",
    "Campaign",
    "Consent",
    "Inspection",
    "Media",
    "Policy",
    "Post",
    "ReshareConfig",
    "Schedule",
    "Slot",
    "Supporter",
    "Track",
    "Video",
    "inspect",
    "load",
    "missing_secrets",
    "secret_problems",
]
