"""Logging set-up: JSON lines off a terminal, the standard library's records among them, and secrets never reach the output."""

from __future__ import annotations

import base64
import io
import json
import logging
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
def _reset_logging():
    yield
    logs.reset()
    for name in logs.NOISY:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.WARNING)


def test_json_lines_when_not_a_terminal() -> None:
    """Off a terminal every event is one JSON object with its name, level, logger and time."""
    out = io.StringIO()
    logs.configure(stream=out)
    structlog.get_logger().info("post_published", post="launch", account="x-index")
    line = json.loads(out.getvalue())
    assert line["event"] == "post_published"
    assert line["level"] == "info"
    assert line["logger"] == __name__
    assert line["post"] == "launch" and line["timestamp"].endswith("Z")


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


def test_stdlib_warning_with_a_secret_is_one_redacted_json_line() -> None:
    """A client library's warning through ``logging`` comes out as one JSON line with our fields, its secret cut."""
    token = "tok-stdlib-8c1d2e3f4a5b"
    logs.register_secret(token)
    out = io.StringIO()
    logs.configure(fmt="json", stream=out)
    logging.getLogger("urllib3.connectionpool").warning("Retrying after 401 for %s", f"Bearer {token}")
    (raw,) = out.getvalue().splitlines()
    line = json.loads(raw)
    assert token not in raw
    assert line["event"] == f"Retrying after 401 for Bearer {logs.REDACTED}"
    assert line["level"] == "warning"
    assert line["logger"] == "urllib3.connectionpool"
    assert line["timestamp"].endswith("Z")


def test_stdlib_and_structlog_lines_share_their_fields() -> None:
    """Our events and a library's record carry the same field names, so one query reads both."""
    out = io.StringIO()
    logs.configure(fmt="json", stream=out)
    structlog.get_logger("bot.worker").warning("job_missed")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    ours, theirs = (json.loads(raw) for raw in out.getvalue().splitlines())
    assert {"event", "level", "logger", "timestamp"} <= ours.keys()
    assert ours.keys() == theirs.keys()


def test_stdlib_traceback_stays_inside_the_json_line_and_is_redacted() -> None:
    """A library's logged exception is the line's ``exception`` field, not raw lines after it, and is redacted."""
    secret = base64.b64encode(b"oauth-secret-value-1234").decode()
    logs.register_secret(secret)
    out = io.StringIO()
    logs.configure(fmt="json", stream=out)
    try:
        raise ConnectionError(f"server said: token {secret} rejected")
    except ConnectionError:
        logging.getLogger("tweepy.client").exception("request failed")
    (raw,) = out.getvalue().splitlines()
    line = json.loads(raw)
    assert secret not in raw
    assert "ConnectionError: server said: token [redacted] rejected" in line["exception"]


def test_noisy_libraries_stay_at_warning_unless_debug() -> None:
    """Client libraries' INFO lines are dropped at the default level and shown with BOT_LOG_LEVEL=debug."""
    out = io.StringIO()
    logs.configure(fmt="json", stream=out)
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
    logging.getLogger("bot.elsewhere").info("kept")
    assert [json.loads(raw)["event"] for raw in out.getvalue().splitlines()] == ["kept"]
    out = io.StringIO()
    logs.configure(fmt="json", stream=out, level="debug")
    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection")
    assert json.loads(out.getvalue())["event"] == "Starting new HTTPS connection"


def test_configure_twice_keeps_one_handler() -> None:
    """Configuring again replaces our handler, so no line is written twice."""
    first, second = io.StringIO(), io.StringIO()
    logs.configure(fmt="json", stream=first)
    logs.configure(fmt="json", stream=second)
    logging.getLogger("httpx").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_console_lines_are_redacted_too() -> None:
    """On a terminal-style console renderer, a secret is cut the same way."""
    token = "tok-console-77aa88bb99"
    logs.register_secret(token)
    out = io.StringIO()
    logs.configure(fmt="console", stream=out)
    structlog.get_logger().warning("call_failed", reason=f"echo {token}")
    logging.getLogger("httpx").warning("echo %s", token)
    text = out.getvalue()
    assert token not in text and text.count(logs.REDACTED) == 2
    assert "[httpx]" in text


def test_missing_secret_names_the_variable_not_a_value() -> None:
    """A missing credential is reported by its variable name."""
    with pytest.raises(Exception) as raised:
        resolve(_Account(), {})
    assert "X_INDEX_ACCESS_TOKEN" in str(raised.value)


def test_rejects_unknown_format() -> None:
    """A typo in BOT_LOG_FORMAT is an error, not a silent default."""
    with pytest.raises(ValueError, match="json or console"):
        logs.configure(fmt="yaml", stream=io.StringIO())


def test_rejects_unknown_level() -> None:
    """A typo in BOT_LOG_LEVEL is an error, not a silent default."""
    with pytest.raises(ValueError, match="BOT_LOG_LEVEL"):
        logs.configure(fmt="json", stream=io.StringIO(), level="verbose")


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
