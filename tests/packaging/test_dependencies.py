"""What a production install brings: the worker's dependencies, never the sandboxes' web stack."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

WEB_STACK = {"fastapi", "uvicorn", "starlette", "mastodon-mock"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def runtime_closure(dist_name: str) -> set[str]:
    """Every distribution ``pip install <dist_name>`` (no extras) pulls in, read from the installed metadata."""
    seen: set[str] = set()
    todo = [dist_name]
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # an optional platform-specific requirement that is not installed here
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_a_production_install_pulls_no_web_framework_nor_mastodon_mock() -> None:
    """The runtime closure of campaign-bot holds the worker's libraries and none of the sandboxes' web stack."""
    closure = runtime_closure("campaign-bot")
    assert {"sqlalchemy", "structlog", "tweepy", "apscheduler", "alembic"} <= closure
    assert not closure & WEB_STACK, closure & WEB_STACK


def test_the_demo_extra_is_where_the_sandboxes_web_stack_comes_from() -> None:
    """mastodon-mock (and through it the web framework) is declared, but only under the demo extra."""
    requires = [Requirement(line) for line in distribution("campaign-bot").requires or []]
    demo = {_name(r.name) for r in requires if r.marker is not None and r.marker.evaluate({"extra": "demo"})}
    assert "mastodon-mock" in demo
