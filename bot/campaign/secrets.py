"""Which credential variables a campaign names and the environment lacks, as ``file:line`` problems.

Apart from the loader so the worker can check a campaign it did not parse itself (it loads in a
child process, see ``isolated``) without importing the YAML and pydantic stack.
"""

from __future__ import annotations

import re

from bot.core.model import Account, Campaign

ACCOUNTS = "config/accounts.yaml"
MEDIA_HOST = "config/media_host.yaml"

# Shapes of tokens that staff could paste, whatever their letters' case: AWS key ids, GitHub and
# GitLab tokens, Slack tokens, Stripe keys, JSON web tokens, Bluesky app passwords, X access tokens.
_TOKEN_SHAPES = re.compile(
    r"^(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{20,}"
    r"|glpat-[\w-]{20,}|xox[abposr]-[\w-]+|[rs]k_(?:live|test)_\w+|eyJ[\w-]+\.[\w-]+\.?[\w-]*"
    r"|[a-z0-9]{4}(?:-[a-z0-9]{4}){3}|\d{6,}-[A-Za-z0-9]{20,})$"
)
# The words of a name: runs of capitals, capitalised or lower-case words, runs of digits.
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
LONGEST_NAME = 64


def looks_like_secret(value: str) -> bool:
    """Whether a credential value is a token pasted in place of a variable's name.

    A name is made of words (``X_INDEX_CONSUMER_KEY``, ``MASTODON_A19_TOKEN``, ``BLUESKYAPPPASSWORD``);
    a random token is not, even in capitals: it falls apart into many one- and two-character
    pieces, or its letters and digits alternate, or it runs on for 32 characters without a break,
    or it has a known token's shape, or it is longer than any name (64 characters).
    """
    if len(value) > LONGEST_NAME or _TOKEN_SHAPES.match(value):
        return True
    for part in re.split(r"[_\-.]", value):
        if len(part) >= 32:
            return True
        if len(part) >= 10:
            words = _WORDS.findall(part)
            if sum(len(word) <= 2 for word in words) >= 4 or sum(word.isdigit() for word in words) >= 3:
                return True
    return False


def missing_secrets(account: Account, environ: dict[str, str] | None = None) -> list[str]:
    """One message per credential variable of ``account`` that is not set (values are never read out)."""
    return [problem for _, problem in _missing(account, environ)]


def _missing(account: Account, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    from bot.platforms.credentials import missing

    names = set(missing(account, environ))
    return [
        (role, f"accounts.{account.id}.credentials.{role}: environment variable {var} is not set")
        for role, var in account.credentials.items()
        if var in names
    ]


def secret_problems(campaign: Campaign, environ: dict[str, str] | None = None) -> list[str]:
    """``path:line: message`` for every credential variable not set; ``bot run`` treats these as errors."""
    return [
        f"{account.file}:{account.line}: {problem}"
        for account in campaign.accounts.values()
        for problem in missing_secrets(account, environ)
    ] + media_host_secret_problems(campaign, environ)


def media_host_secret_problems(campaign: Campaign, environ: dict[str, str] | None = None) -> list[str]:
    """``config/media_host.yaml:line: message`` for each of the media host's key variables not set."""
    import os

    host, env = campaign.media_host, os.environ if environ is None else environ
    if host is None:
        return []
    return [
        f"{MEDIA_HOST}:{host.line}: media_host.credentials.{role}: environment variable {var} is not set"
        for role, var in host.credentials.items()
        if not env.get(var)
    ]
