"""Logging set-up: JSON lines off a terminal, and secrets never reach the output."""

from __future__ import annotations

import io
import json
import os

import pytest
import structlog

from bot.observability import logs
from bot.platforms.credentials import resolve


class _Account:
    id = "x-index"
    platform = "x"
    base_url = None
    handle = None
    credentials = {"access_token": "X_INDEX_ACCESS_TOKEN"}
    options: dict = {}


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()


def test_json_lines_when_not_a_terminal() -> None:
    """Off a terminal every event is one JSON object with its name, level and time."""
    out = io.StringIO()
    logs.configure(stream=out)
    structlog.get_logger().info("post_published", post="launch", account="x-index")
    line = json.loads(out.getvalue())
    assert line["event"] == "post_published"
    assert line["level"] == "info"
    assert line["post"] == "launch" and "ts" in line


def test_resolved_secrets_are_redacted_everywhere() -> None:
    """A secret read from the environment is scrubbed from messages, nested values and errors."""
    token = "tok-3f9a8c7e5d-very-secret"
    values = resolve(_Account(), {"X_INDEX_ACCESS_TOKEN": token})
    assert values == {"access_token": token}
    out = io.StringIO()
    logs.configure(fmt="json", stream=out)
    log = structlog.get_logger()
    log.error("publish_failed", reason=f"401 for Bearer {token}", extra={"headers": [token]})
    log.warning("platform_call_failed", error=RuntimeError(f"bad token {token}"))
    text = out.getvalue()
    assert token not in text
    assert text.count(logs.REDACTED) == 3


def test_missing_secret_names_the_variable_not_a_value() -> None:
    """A missing credential is reported by its variable name."""
    with pytest.raises(Exception) as raised:
        resolve(_Account(), {})
    assert "X_INDEX_ACCESS_TOKEN" in str(raised.value)


def test_rejects_unknown_format() -> None:
    """A typo in BOT_LOG_FORMAT is an error, not a silent default."""
    with pytest.raises(ValueError, match="json or console"):
        logs.configure(fmt="yaml", stream=io.StringIO())


def test_json_worker_imports_structlog_without_rich_and_rich_stays_importable() -> None:
    """A JSON-logging process loads structlog without rich, still logs tracebacks, and can import rich later."""
    import subprocess
    import sys as _sys

    script = (
        "import sys, json\n"
        "from bot.observability.logs import configure, import_structlog_for_json\n"
        "import_structlog_for_json()\n"
        "import structlog\n"
        "print(json.dumps({'rich_loaded': 'rich' in sys.modules}))\n"
        "configure()\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    structlog.get_logger().exception('thing_failed')\n"
        "import rich.table\n"
        "print(json.dumps({'rich_later': 'rich' in sys.modules}))\n"
    )
    done = subprocess.run(
        [_sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BOT_LOG_FORMAT": "json"},
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"rich_loaded": False}
    assert lines[1]["event"] == "thing_failed" and "ZeroDivisionError" in lines[1]["exception"]
    assert lines[2] == {"rich_later": True}
