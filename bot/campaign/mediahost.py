"""config/media_host.yaml: the bucket that serves media to platforms fetching it by URL (Instagram, Threads).

Its own file, optional, so a campaign without such platforms has nothing to write, and the accounts file's
shape stays as it is. The ``media_host`` block names environment variables for the keys, never values::

    media_host:
      bucket: campaign-media
      endpoint_url: https://ACCOUNT.r2.cloudflarestorage.com   # omit for AWS S3
      region: auto
      prefix: freeandreiandirina/
      path_style: false
      url_lifetime: 1h
      credentials: {access_key_id: MEDIA_S3_KEY_ID, secret_access_key: MEDIA_S3_SECRET}

Every problem is reported at its line, like the rest; an account whose platform needs a media host
(``Platform.needs_media_host``) is an error at the account's line when the file is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.campaign.problems import WARNING, Problems, known_list, suggest, validated
from bot.campaign.secrets import ACCOUNTS, MEDIA_HOST, looks_like_secret, media_host_secret_problems
from bot.campaign.slots import parse_duration
from bot.campaign.yamlsrc import Source
from bot.core.model import Account, Campaign, MediaHostSettings

REQUIRED = ("access_key_id", "secret_access_key")
ROLES = (*REQUIRED, "session_token")
LONGEST = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
SHORTEST = 60  # a platform fetches a while after the container is created
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# S3's bucket naming rules (3-63 lower-case letters, digits, dots and hyphens): a typo is caught offline.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""
    path_style: bool = False
    url_lifetime: Any = "1h"
    credentials: dict[str, str] = Field(default_factory=dict)
    note: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_host: dict[str, Any]  # validated on its own, so problems point into the block


def settings(source: Source | None, problems: Problems) -> MediaHostSettings | None:
    """The media host of ``source`` (config/media_host.yaml, None when absent), every problem at its line."""
    if source is None:
        return None
    raw = validated(problems, source, _File, source.data)
    if raw is None:
        return None
    loc = ("media_host",)
    block = validated(problems, source, _Block, raw.media_host, loc)
    if block is None:
        return None
    before = problems.count
    if not _BUCKET.match(block.bucket):
        problems.add(
            source,
            (*loc, "bucket"),
            f"'{block.bucket}' is not a bucket name (3-63 lower-case letters, digits, - and .)",
        )
    if block.endpoint_url is not None and not re.match(r"^https?://[^\s/]+/?$", block.endpoint_url):
        problems.add(
            source,
            (*loc, "endpoint_url"),
            f"'{block.endpoint_url}' is not an endpoint (expected https://host, without the bucket or a path)",
        )
    if block.prefix and (block.prefix.startswith("/") or not block.prefix.endswith("/")):
        problems.add(
            source, (*loc, "prefix"), f"'{block.prefix}' should end with / and not start with one (like campaign/)"
        )
    lifetime = 3600.0
    try:
        lifetime = parse_duration(block.url_lifetime, numbers_are_seconds=True).total_seconds()
        if not SHORTEST <= lifetime <= LONGEST:
            problems.add(
                source,
                (*loc, "url_lifetime"),
                f"{block.url_lifetime!r} is out of range (expected 1m to 7d; 1h suits Instagram)",
            )
    except ValueError as exc:
        problems.add(source, (*loc, "url_lifetime"), str(exc))
    _credentials(source, problems, block.credentials)
    if problems.count != before:
        return None
    return MediaHostSettings(
        bucket=block.bucket,
        endpoint_url=block.endpoint_url.rstrip("/") if block.endpoint_url else None,
        region=block.region,
        prefix=block.prefix,
        path_style=block.path_style,
        url_lifetime=lifetime,
        credentials=dict(block.credentials),
        line=source.line(loc),
    )


def _credentials(source: Source, problems: Problems, credentials: dict[str, str]) -> None:
    loc = ("media_host", "credentials")
    for role in REQUIRED:
        if role not in credentials:
            problems.add(source, loc, f"missing credential '{role}' (needs: {known_list(REQUIRED)})")
    for role, var in credentials.items():
        if role not in ROLES:
            hint = suggest(role, ROLES) or f" (expected: {known_list(ROLES)})"
            problems.add(source, (*loc, role), f"unknown credential role '{role}'{hint}")
        elif looks_like_secret(var) or not _ENV_NAME.match(var):
            # Never echo the value: staff may have pasted the key itself.
            problems.add(
                source,
                (*loc, role),
                "must be the NAME of an environment variable that holds the key (like MEDIA_S3_SECRET), "
                "not the key itself (the value is not shown)",
            )


def missing_host(
    accounts: Mapping[str, Account], host: MediaHostSettings | None, present: bool, problems: Problems
) -> None:
    """An error at each account whose platform fetches media by URL when no media host is configured."""
    if host is not None or present:  # a file with problems has its own messages
        return
    from bot.platforms import REGISTRY

    for account in accounts.values():
        cls = REGISTRY.get(account.platform)
        if cls is not None and getattr(cls, "needs_media_host", False):
            problems.at(
                ACCOUNTS,
                account.line,
                f"accounts.{account.id}: {cls.name} fetches media from a public URL: write {MEDIA_HOST} "
                "(an S3-compatible bucket; see the README's 'Media hosting')",
            )


def unset_variables(campaign: Campaign, problems: Problems) -> None:
    """A warning for each key variable not set here (``bot run`` refuses to start then)."""
    for problem in media_host_secret_problems(campaign):
        rel, line, message = problem.split(":", 2)
        problems.at(rel, int(line), message.strip(), WARNING)


def needing(accounts: Mapping[str, Account]) -> list[str]:
    """The accounts whose platform fetches media by URL (``bot check`` names them)."""
    from bot.platforms import REGISTRY

    return [a.id for a in accounts.values() if getattr(REGISTRY.get(a.platform), "needs_media_host", False)]
