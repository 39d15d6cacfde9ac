"""Which credential variables a campaign names and the environment lacks, as ``file:line`` problems.

Apart from the loader so the worker can check a campaign it did not parse itself (it loads in a
child process, see ``isolated``) without importing the YAML and pydantic stack.
"""

from __future__ import annotations

from bot.core.model import Account, Campaign

ACCOUNTS = "config/accounts.yaml"


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
        f"{ACCOUNTS}:{account.line}: {problem}"
        for account in campaign.accounts.values()
        for problem in missing_secrets(account, environ)
    ]
