"""A reload that drops an account retires its credentials from redaction; the accounts kept stay redacted."""

from __future__ import annotations

from types import SimpleNamespace

from bot.observability import redaction
from bot.worker.runtime import _retire_dropped_secrets


def campaign(*accounts: tuple[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        accounts={name: SimpleNamespace(credentials={"access_token": var}) for name, var in accounts}
    )


def test_dropped_accounts_secret_is_retired_and_expires_kept_ones_stay(monkeypatch) -> None:
    """Only the value no account of the new campaign uses is retired; after the retention it is gone from the registry."""
    kept, dropped = "kept-secret-value-0123456789", "dropped-secret-value-9876543210"
    monkeypatch.setenv("KEPT_TOKEN", kept)
    monkeypatch.setenv("DROPPED_TOKEN", dropped)
    registry = redaction.SecretRedactor(retention=0.0)
    monkeypatch.setattr(redaction, "secrets", registry)
    redaction.register_secret(kept)
    redaction.register_secret(dropped)
    _retire_dropped_secrets(campaign(("a", "KEPT_TOKEN"), ("b", "DROPPED_TOKEN")), campaign(("a", "KEPT_TOKEN")))
    registry.expire()
    assert kept in registry and dropped not in registry
    assert redaction.redact(f"token {kept}") == f"token {redaction.REDACTED}"
