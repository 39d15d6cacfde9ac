"""What the platform test files share: a campaign account made from a sandbox account, and its adapter."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.platforms import platform_class
from bot.platforms.base import Outgoing, Platform
from bot.sandbox.base import SandboxAccount

_names = itertools.count()


@dataclass
class Account:
    """The slice of a campaign account an adapter reads (the campaign model has the same fields)."""

    id: str
    platform: str
    base_url: str | None
    handle: str | None
    credentials: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)


def adapter_for(acct: SandboxAccount, *, secrets: dict[str, str] | None = None,
                options: dict[str, Any] | None = None, **kwargs: Any) -> Platform:
    """The adapter of ``acct`` with its sandbox secrets (``secrets`` overrides some, e.g. a wrong one)."""
    entry = acct.entry
    account = Account(acct.id, entry["platform"], entry.get("base_url"), entry.get("handle"),
                      dict(entry["credentials"]), {**entry.get("options", {}), **(options or {})})
    values = {role: acct.env[var] for role, var in account.credentials.items()}
    kwargs.setdefault("timeout", 10)
    return platform_class(account.platform)(account, {**values, **(secrets or {})}, **kwargs)


def fresh_name(prefix: str) -> str:
    return f"{prefix}{next(_names)}{uuid.uuid4().hex[:4]}"


def outgoing(text: str, **kwargs: Any) -> Outgoing:
    return Outgoing(key=f"test:{uuid.uuid4().hex}", text=text, **kwargs)


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
