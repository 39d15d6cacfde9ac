"""Reads a campaign folder into a ``Campaign``, collecting every problem of every file.

Files are validated piece by piece (each account, post and slot on its own), so
one mistake neither hides the others nor makes correct references look wrong.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from bot.campaign import content, mediahost, posts, window
from bot.campaign.files import AccountEntry, AccountsFile, ReshareFile, ScheduleFile, SlotEntry
from bot.campaign.languages import language_problem
from bot.campaign.paths import link_out
from bot.campaign.problems import WARNING, Problems, known_list, suggest, validated
from bot.campaign.secrets import ACCOUNTS, MEDIA_HOST, _missing, looks_like_secret
from bot.campaign.slots import build_schedule, parse_duration
from bot.campaign.yamlsrc import Loc, Source, YamlProblem, read
from bot.core.errors import ConfigError
from bot.core.model import Account, Campaign, MediaHostSettings, Policy, ReshareConfig, Schedule, Track
from bot.platforms import REGISTRY

RESHARE = "config/reshare.yaml"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACCOUNT_PARTS = "config/accounts"
"""More of the campaign's accounts, in files of their own (``Scan.account_parts``)."""
_A_FOLDER = "expected a folder holding config/accounts.yaml, posts/ and schedules/; see --campaign or BOT_CAMPAIGN_DIR"
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass
class Inspection:
    """What ``bot check`` reports: the campaign as far as it could be built, and every problem."""

    campaign: Campaign | None
    problems: Problems = field(default_factory=Problems)

    @property
    def errors(self) -> list[str]:
        return [str(p) for p in self.problems.errors]

    @property
    def warnings(self) -> list[str]:
        return [str(p) for p in self.problems.warnings]


def load(root: Path) -> Campaign:
    """The campaign in ``root``; ConfigError listing every problem when any file is wrong."""
    result = inspect(root, warnings=False)
    if result.errors or result.campaign is None:
        raise ConfigError(result.errors or [f"{root}: no campaign found"])
    _give_back_memory()
    return result.campaign


def _give_back_memory() -> None:
    """Hand the loading's freed heap back to the system: a worker loads once and then idles for days.

    glibc keeps freed memory for reuse unless asked; ``malloc_trim`` returns what it can.
    Elsewhere (musl, macOS) there is nothing to call and nothing is done.
    """
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def inspect(root: Path, *, warnings: bool = True) -> Inspection:
    """Every error (and, with ``warnings``, every warning) of the campaign in ``root``."""
    # Loading allocates many small objects and frees none of them: the cyclic
    # collector would rescan the growing heap again and again for nothing.
    if not Path(root).is_dir():
        # Named as given: the accounts file it lacks is not what staff should be told about.
        problems = Problems()
        what = "is a file, not a campaign folder" if Path(root).exists() else "the campaign folder does not exist"
        problems.at(str(root), 0, f"{what} ({_A_FOLDER})")
        return Inspection(None, problems)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Loader(Path(root).resolve()).run(warnings)
    finally:
        if enabled:
            gc.enable()


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems = Problems()
        self.accounts_source: Source | None = None
        self.language = "en"  # the campaign's default language, from config/accounts.yaml

    def read(self, rel: str, required: bool = True) -> Source | None:
        if self.leaves(rel):
            return None
        path = self.root / rel
        if not path.is_file():
            if path.is_symlink() and not path.exists():
                self.problems.at(rel, 1, "is a broken symbolic link")
            elif os.path.lexists(path):
                self.problems.at(rel, 1, "is not a file (expected YAML text)")
            elif required:
                self.problems.at(rel, 1, "file is missing (expected the campaign's accounts)")
            return None
        try:
            return read(path, rel)
        except YamlProblem as exc:
            self.problems.at(rel, exc.line, exc.message)
        except OSError as exc:
            self.problems.at(rel, 1, f"cannot be read ({exc.strerror})")
        return None

    def leaves(self, rel: str) -> bool:
        """Whether ``rel`` is reached through a link out of the campaign (reported once): never read, never quoted."""
        out = link_out(self.root, rel)
        if out is None:
            return False
        kind = "folder" if (self.root / out).is_dir() else "file"
        problem = f"is a symbolic link to a {kind} outside the campaign folder"
        if not any(p.rel == out and p.message == problem for p in self.problems.items):
            self.problems.at(out, 1, problem)
        return True

    def validate(self, source: Source, model: type[M], data: Any, prefix: Loc = ()) -> M | None:
        return validated(self.problems, source, model, data, prefix)

    def run(self, with_warnings: bool) -> Inspection:
        known, accounts, name = self.accounts()
        media_host = self.media_host(accounts)
        found = posts.scan(self.root, self.problems)
        schedules = self.schedules(found, known)
        reshare = self.reshare(known, accounts)
        checker = content.Checker(accounts, found.queues, [s for s, _ in schedules], self.problems)
        loaded = posts.build_all(self.root, found, self.problems, checker.text, self.language)
        campaign = Campaign(
            root=self.root,
            name=name,
            media_host=media_host,
            accounts=accounts,
            posts=loaded.posts,
            queues=found.queues,
            schedules=[s for s, _ in schedules],
            reshare=reshare,
            language=self.language,
        )
        checker.media(loaded.posts, loaded.sources, loaded.prober)
        window.check(campaign, {s.name: src for s, src in schedules}, self.problems, with_warnings)
        if with_warnings:  # the worker's loads skip it: a warning never stops a campaign
            from bot.campaign import quotas

            quotas.check(campaign, {s.name: src for s, src in schedules}, self.problems)
        if with_warnings and self.accounts_source is not None:
            for account in accounts.values():
                for role, problem in _missing(account):
                    loc = ("accounts", account.id, "credentials", role)
                    self.problems.at(ACCOUNTS, self.accounts_source.line(loc), problem, WARNING)
                # Settings that age (LinkedIn's pinned API version): judged on today's date.
                aging = getattr(REGISTRY.get(account.platform), "option_warnings", None)
                for key, problem in (aging(account.options, date.today()) if aging else {}).items():
                    loc = ("accounts", account.id, "options", key)
                    self.problems.at(ACCOUNTS, self.accounts_source.line(loc), problem, WARNING)
        if with_warnings:
            mediahost.unset_variables(campaign, self.problems)
        return Inspection(campaign, self.problems)

    def media_host(self, accounts: dict[str, Account]) -> MediaHostSettings | None:
        """config/media_host.yaml (optional), and an error at each account that needs it when it is absent."""
        host = mediahost.settings(self.read(MEDIA_HOST, required=False), self.problems)
        present = os.path.lexists(self.root / MEDIA_HOST)
        mediahost.missing_host(accounts, host, present, self.problems)
        return host

    # ---- config/accounts.yaml ----

    def accounts(self) -> tuple[list[str] | None, dict[str, Account], str]:
        """Known account ids (None when the file is unusable: references are then not checked).

        A campaign file holds at most 256 KB (about 1,600 accounts): a coalition with more puts the rest in
        ``config/accounts/*.yaml`` (read in name order), each with the same ``accounts:`` mapping; an id in
        two files is a problem naming both. ``campaign`` and ``language`` are config/accounts.yaml's only.
        """
        source = self.accounts_source = self.read(ACCOUNTS)
        name = self.root.name
        if source is None:
            return None, {}, name
        raw = self.validate(source, AccountsFile, source.data)
        if raw is None:
            return None, {}, name
        if raw.language is not None:
            if problem := language_problem(raw.language):
                self.problems.add(source, ("language",), problem)
            else:
                self.language = raw.language
        parts: list[tuple[Source, dict[str, Any]]] = [(source, raw.accounts)]
        usable = True
        for rel in self.account_parts():
            part = self.read(rel)
            raw_part = self.validate(part, AccountsFile, part.data) if part is not None else None
            if part is None or raw_part is None:
                usable = False
                continue
            for key in ("campaign", "language"):
                if getattr(raw_part, key) is not None:
                    self.problems.add(part, (key,), f"is set in {ACCOUNTS} only (this file adds accounts)")
            parts.append((part, raw_part.accounts))
        known: list[str] = []
        where: dict[str, tuple[Source, Loc]] = {}
        out: dict[str, Account] = {}
        for part, entries in parts:
            for account_id, data in entries.items():
                loc = ("accounts", str(account_id))
                if str(account_id) in where:
                    first, first_loc = where[str(account_id)]
                    self.problems.add(
                        part,
                        loc,
                        f"account '{account_id}' is also in {first.rel}:{first.line(first_loc)} (ids are unique)",
                    )
                    continue
                where[str(account_id)] = (part, loc)
                known.append(str(account_id))
                entry = self.validate(part, AccountEntry, data, loc)
                if entry is not None and self.account_ok(part, loc, entry):
                    options = dict(entry.options)
                    if entry.max_characters:
                        options["max_characters"] = entry.max_characters
                    out[str(account_id)] = Account(
                        id=str(account_id),
                        platform=entry.platform,
                        base_url=entry.base_url,
                        handle=entry.handle,
                        credentials=entry.credentials,
                        options=options,
                        line=part.line(loc),
                        file=part.rel,
                        language=entry.language or self.language,
                    )
        return (known if usable else None), out, raw.campaign or name

    def account_parts(self) -> list[str]:
        """``config/accounts/*.yaml`` (and ``.yml``), by name: the accounts config/accounts.yaml has no room for."""
        folder = self.root / ACCOUNT_PARTS
        if not folder.is_dir() or self.leaves(ACCOUNT_PARTS):
            return []
        files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")], key=lambda p: p.name)
        return [f"{ACCOUNT_PARTS}/{path.name}" for path in files]

    def account_ok(self, source: Source, loc: Loc, entry: AccountEntry) -> bool:
        before = self.problems.count
        cls = REGISTRY.get(entry.platform)
        if cls is None:
            self.problems.add(
                source,
                (*loc, "platform"),
                f"unknown platform '{entry.platform}' (known: {known_list(REGISTRY)})",
            )
            return False
        for role in cls.required_credentials:
            if role not in entry.credentials:
                self.problems.add(
                    source,
                    (*loc, "credentials"),
                    f"missing credential '{role}' ({cls.name} needs: {known_list(cls.required_credentials)})",
                )
        # Roles a platform takes when present (LinkedIn: the app's id and secret for token introspection).
        roles = (*cls.required_credentials, *getattr(cls, "optional_credentials", ()))
        for role, var in entry.credentials.items():
            if role not in roles:
                hint = suggest(role, roles) or f" (expected: {known_list(roles)})"
                self.problems.add(source, (*loc, "credentials", role), f"unknown credential role '{role}'{hint}")
            elif looks_like_secret(var):
                # Never echo the value. Checked before the name's form: a token in capitals is also a valid name.
                self.problems.add(
                    source,
                    (*loc, "credentials", role),
                    "a secret written in the file (expected the NAME of an environment variable that holds it, "
                    "like MASTODON_A19_TOKEN; the value is not shown)",
                )
            elif not _ENV_NAME.match(var):
                # Never echo the value: staff may have pasted the secret itself here.
                self.problems.add(
                    source,
                    (*loc, "credentials", role),
                    "must be the NAME of an environment variable (like MASTODON_A19_TOKEN), not the secret itself",
                )
        if entry.language is not None and (problem := language_problem(entry.language)):
            self.problems.add(source, (*loc, "language"), problem)
        if cls.needs_handle and not (entry.handle or "").strip():
            self.problems.add(source, loc, f"handle is missing ({cls.name} accounts need one, like index.bsky.social)")
        if entry.base_url is not None and not re.match(r"^https?://[^\s/]+", entry.base_url):
            self.problems.add(source, (*loc, "base_url"), f"'{entry.base_url}' is not a URL (expected https://...)")
        elif entry.base_url is None and cls.default_base_url is None:
            self.problems.add(
                source,
                loc,
                f"base_url is missing ({cls.name} accounts need their server, like https://mastodon.social)",
            )
        option_problems = getattr(cls, "option_problems", None)  # a platform with options of its own checks them
        for key, problem in (option_problems(entry.base_url, entry.options) if option_problems else {}).items():
            self.problems.add(source, (*loc, "options", key), problem)
        return self.problems.count == before

    # ---- schedules/*.yaml ----

    def schedules(self, found: posts.Found, known_accounts: list[str] | None) -> list[tuple[Schedule, Source]]:
        folder = self.root / "schedules"
        listed = folder.is_dir() and not self.leaves("schedules")
        files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")) if listed else []
        out = []
        for path in files:
            source = self.read(f"schedules/{path.name}")
            raw = self.validate(source, ScheduleFile, source.data) if source else None
            if source is None or raw is None:
                continue
            entries = []
            for i, data in enumerate(raw.slots):
                entry = self.validate(source, SlotEntry, data, ("slots", i))
                if entry is not None:
                    self.references(source, ("slots", i), entry, found, known_accounts)
                    entries.append((i, entry))
            schedule = build_schedule(self.problems, source, path, raw, entries)
            if schedule is not None:
                out.append((schedule, source))
        return out

    def references(
        self, source: Source, loc: Loc, entry: SlotEntry, found: posts.Found, accounts: list[str] | None
    ) -> None:
        if entry.post is not None and entry.post not in found.files:
            hint = suggest(entry.post, found.files) or (
                f" (known: {known_list(found.files)})"
                if len(found.files) <= 20
                else " (expected the name of a file in posts/ without .yaml)"
            )
            self.problems.add(source, (*loc, "post"), f"unknown post '{entry.post}'{hint}")
        if entry.queue is not None and entry.queue not in found.queues:
            self.problems.add(
                source, (*loc, "queue"), f"unknown queue '{entry.queue}' (known: {known_list(found.queues)})"
            )
        for j, account in enumerate(entry.accounts):
            if accounts is not None and account not in accounts:
                self.problems.add(
                    source, (*loc, "accounts", j), f"unknown account '{account}' (known: {known_list(accounts)})"
                )

    # ---- config/reshare.yaml ----

    def reshare(
        self, known_accounts: list[str] | None, accounts: dict[str, Account] | None = None
    ) -> ReshareConfig | None:
        source = self.read(RESHARE, required=False)
        raw = self.validate(source, ReshareFile, source.data if source.data is not None else {}) if source else None
        if source is None or raw is None:
            return None
        tracks = []
        for i, t in enumerate(raw.track):
            loc = ("track", i)
            tags = [tag.strip().lstrip("#") for tag in t.hashtags]
            for j, tag in enumerate(tags):
                if not tag or not re.match(r"^\w+$", tag):
                    self.problems.add(
                        source,
                        (*loc, "hashtags", j),
                        f"{t.hashtags[j]!r} is not a hashtag (expected a word like FreeAndreiandIrina)",
                    )
            for j, account in enumerate(t.accounts):
                if known_accounts is not None and account not in known_accounts:
                    self.problems.add(
                        source,
                        (*loc, "accounts", j),
                        f"unknown account '{account}' (known: {known_list(known_accounts)})",
                    )
                platform = REGISTRY.get(accounts[account].platform) if accounts and account in accounts else None
                if platform is not None and not platform.supports_tracking:
                    self.problems.add(
                        source,
                        (*loc, "accounts", j),
                        f"account '{account}' is a {platform.name} account, and {platform.name} has no hashtag search: "
                        "it cannot track (schedule a reshare of a partner's post with reshare_of: in a post file)",
                    )
            seconds: dict[str, float | None] = {"interval": None, "max_interval": None}
            for name in seconds:
                value = getattr(t, name)
                if value is not None:
                    try:
                        seconds[name] = parse_duration(value, numbers_are_seconds=True).total_seconds()
                    except ValueError as exc:
                        self.problems.add(source, (*loc, name), str(exc))
            tracks.append(
                Track(
                    hashtags=tags,
                    accounts=t.accounts,
                    interval=seconds["interval"],
                    daily_reads=t.daily_reads,
                    max_interval=seconds["max_interval"],
                )
            )
        p = raw.policy
        cooldown = Policy().author_cooldown
        if p.author_cooldown is not None:
            try:
                cooldown = parse_duration(p.author_cooldown)
            except ValueError as exc:
                self.problems.add(source, ("policy", "author_cooldown"), str(exc))
        if p.max_per_day < p.max_per_hour:
            self.problems.add(
                source, ("policy", "max_per_day"), f"{p.max_per_day} is less than max_per_hour {p.max_per_hour}"
            )
        for j, who in enumerate(p.never_from):
            if who in p.always_from:
                self.problems.add(
                    source, ("policy", "never_from", j), f"'{who}' is also in always_from (expected one or the other)"
                )
        ages = self.per_platform(source, "min_account_age", p.min_account_age, parse_duration)
        followers = self.per_platform(source, "min_followers", p.min_followers, _count)
        policy = Policy(
            **p.model_dump(exclude={"author_cooldown", "skip", "min_account_age", "min_followers"}),
            skip=set(p.skip),
            author_cooldown=cooldown,
            min_account_age=ages,
            min_followers=followers,
        )
        return ReshareConfig(track=tracks, policy=policy)

    def per_platform(self, source: Source, name: str, value: Any, parse: Callable[[Any], T]) -> dict[str, T]:
        """A trust minimum: ``{x: 30d, mastodon: 7d}``, or one value for every platform; each problem at its line."""
        if value is None:
            return {}
        loc: Loc = ("policy", name)
        items = value.items() if isinstance(value, dict) else [(p, value) for p in REGISTRY]
        out: dict[str, T] = {}
        for platform, raw in items:
            here = (*loc, platform) if isinstance(value, dict) else loc
            if str(platform) not in REGISTRY:
                hint = suggest(str(platform), REGISTRY) or f" (known: {known_list(REGISTRY)})"
                self.problems.add(source, here, f"unknown platform '{platform}'{hint}")
                continue
            try:
                out[str(platform)] = parse(raw)
            except ValueError as exc:
                self.problems.add(source, here, str(exc))
        return out


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"got {value!r} (expected a whole number of followers, like 10)")
    return value
