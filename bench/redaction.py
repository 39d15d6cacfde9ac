"""What redacting secrets costs per log event, with 10, 200 and 2,000 registered secrets (goal: well under 0.1 ms).

Run: ``.venv/bin/python bench/redaction.py [--counts 10,200,2000] [--events 2000]``. Side by side in one
process: the per-secret approach the bot used before (a ``secret in value`` test for every secret and
every string of the event, reconstructed below from the old ``bot/observability/logs.py``) and
``bot.observability.redaction`` (one Aho-Corasick pass over the rendered line). An event is a
``publish_failed`` line of nine fields; the new approach is timed on that event rendered as JSON, the
rendering itself being the same in both pipelines. Also: registering 2,000 secrets one by one,
including the one automaton build the next redaction triggers.
"""

from __future__ import annotations

import argparse
import json
import secrets as random_secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.observability.redaction import SecretRedactor  # noqa: E402

OLD_REDACTED = "[redacted]"


class OldRedactor:
    """The baseline: the bot's redaction processor before this change (git show 45bdd98:bot/observability/logs.py)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str | None) -> None:
        if value and len(value) >= 6:
            with self._lock:
                self._secrets.add(value)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, OLD_REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        return {k: self.scrub(v) for k, v in event.items()}


def tokens(count: int) -> list[str]:
    """Credentials shaped like the platforms' (40 to 60 URL-safe characters)."""
    return [random_secrets.token_urlsafe(30 + i % 15) for i in range(count)]


def event(leak: str | None) -> dict[str, Any]:
    """A publish_failed event as the worker logs it; ``leak`` is a secret a server echoed into the reason."""
    reason = "401 Unauthorized: the access token was rejected by the server, retry after re-authorising"
    if leak:
        reason = f"401 Unauthorized: token {leak} was rejected by the server, retry after re-authorising"
    return {
        "campaign": "free-andrei-and-irina",
        "post": "launch-video-2",
        "account": "mastodon-a19",
        "platform": "mastodon",
        "slot": "2022-01-12T09:00:00+00:00",
        "attempt": 2,
        "reason": reason,
        "response": {"status": 401, "headers": ["content-type: application/json", "x-ratelimit-remaining: 299"]},
        "event": "publish_failed",
        "level": "error",
        "timestamp": "2022-01-12T09:00:03.123456Z",
    }


def per_event_us(call: Callable[[], Any], events: int, repeats: int = 5) -> float:
    """Median over ``repeats`` runs of the CPU microseconds one call costs (CPU time: the host's cores are shared)."""
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(events):
            call()
        runs.append((time.process_time() - start) / events * 1e6)
    return statistics.median(runs)


def measure(count: int, events: int) -> dict[str, float]:
    values = tokens(count)
    old, new = OldRedactor(), SecretRedactor()
    for value in values:
        old.register(value)
        new.register(value)
    clean, leaking = event(None), event(values[count // 2])
    clean_line, leaking_line = json.dumps(clean), json.dumps(leaking)
    assert values[count // 2] not in json.dumps(old(None, "error", leaking))
    assert values[count // 2] not in new(leaking_line)
    return {
        "old_clean": per_event_us(lambda: old(None, "error", clean), events),
        "new_clean": per_event_us(lambda: new(clean_line), events),
        "old_leak": per_event_us(lambda: old(None, "error", leaking), events),
        "new_leak": per_event_us(lambda: new(leaking_line), events),
    }


def registration_ms(count: int) -> tuple[float, float]:
    """Milliseconds to register ``count`` secrets one by one and redact the next line (old, new)."""
    values = tokens(count)
    line = json.dumps(event(values[0]))
    results = []
    for redactor in (OldRedactor(), SecretRedactor()):
        start = time.process_time()
        for value in values:
            redactor.register(value)
        if isinstance(redactor, SecretRedactor):
            redactor(line)  # the lazy build
        else:
            redactor(None, "error", event(values[0]))
        results.append((time.process_time() - start) * 1e3)
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10,200,2000", help="numbers of registered secrets, comma-separated")
    parser.add_argument("--events", type=int, default=2000, help="events per timed run (median of 5 runs)")
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    print("Redaction cost per event, CPU microseconds (median of 5 runs)")
    print(f"{'secrets':>8} | {'old clean':>10} {'new clean':>10} | {'old leak':>10} {'new leak':>10} | {'speed-up':>8}")
    for count in counts:
        r = measure(count, args.events)
        print(
            f"{count:>8} | {r['old_clean']:>10.2f} {r['new_clean']:>10.2f} | {r['old_leak']:>10.2f} "
            f"{r['new_leak']:>10.2f} | {r['old_clean'] / r['new_clean']:>7.1f}x"
        )
    big = max(counts)
    old_ms, new_ms = registration_ms(big)
    print(f"\nRegistering {big} secrets one by one, then the next redaction (CPU milliseconds)")
    print(
        f"  old: {old_ms:8.2f}    new: {new_ms:8.2f}  (new computes every encoded form and builds the automaton once)"
    )
    print("\nclean: no secret in the event; leak: one secret echoed in the event's reason.")


if __name__ == "__main__":
    main()
