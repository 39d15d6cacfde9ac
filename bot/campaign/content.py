"""Per-platform checks of posts: text length as each platform counts it, media limits, alt text.

A post is checked against the platforms of the accounts whose slots publish it
(directly or through its queue), each text in the language of the accounts that get it;
an account whose language the post has no text in is reported. Media are probed by
content, never by extension.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bot.campaign.problems import Problems
from bot.campaign.yamlsrc import Loc, Source
from bot.core.model import Account, Campaign, Post, Schedule
from bot.platforms import REGISTRY
from bot.platforms.base import Platform, surely_fits

if TYPE_CHECKING:
    from bot.campaign.probing import Prober, Result
    from bot.media import MediaInfo

MB = 1024 * 1024


def targets(campaign: Campaign) -> dict[str, list[Account]]:
    """Post id -> the accounts that will publish it, in accounts.yaml order."""
    return {post_id: list(accounts) for post_id, accounts in _target_sets(campaign).items()}


def _target_sets(campaign: Campaign) -> dict[str, tuple[Account, ...]]:
    return _targets_of(campaign.accounts, campaign.queues, campaign.schedules)


def _targets_of(
    accounts_by_id: dict[str, Account], queues: dict[str, list[str]], schedules: list[Schedule]
) -> dict[str, tuple[Account, ...]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for schedule in schedules:
        for slot in schedule.slots:
            posts = [slot.post] if slot.post else queues.get(slot.queue or "", [])
            for post_id in posts:
                ids[post_id].update(slot.accounts)
    shared: dict[frozenset[str], tuple[Account, ...]] = {}  # thousands of posts share a few account sets
    out = {}
    for post_id, accounts in ids.items():
        key = frozenset(accounts)
        if key not in shared:
            shared[key] = tuple(a for a in accounts_by_id.values() if a.id in key)
        out[post_id] = shared[key]
    return out


Groups = list[tuple[str, list[str], dict[int, list[str]]]]
"""Per platform: its account ids, and those ids by text limit."""
ByLanguage = list[tuple[str | None, Groups]]
"""Per language of accounts (None: an account built without one), its platform groups."""


def _groups(accounts: tuple[Account, ...]) -> Groups:
    by_platform: dict[str, list[Account]] = defaultdict(list)
    for account in accounts:
        by_platform[account.platform].append(account)
    out = []
    for platform, group in by_platform.items():
        by_limit: dict[int, list[str]] = defaultdict(list)
        for account in group:
            by_limit[REGISTRY[platform].max_text_for(account)].append(account.id)
        out.append((platform, [a.id for a in group], dict(by_limit)))
    return out


def _by_language(accounts: tuple[Account, ...]) -> ByLanguage:
    languages: dict[str | None, list[Account]] = defaultdict(list)
    for account in accounts:
        languages[account.language].append(account)
    return [(language, _groups(tuple(group))) for language, group in languages.items()]


class Checker:
    """Checks each post's text as it is built (its YAML nodes need not outlive it), media once all are read."""

    def __init__(
        self, accounts: dict[str, Account], queues: dict[str, list[str]], schedules: list[Schedule], problems: Problems
    ) -> None:
        self.by_post = _targets_of(accounts, queues, schedules)
        self.accounts = accounts
        self.problems = problems
        # Keyed by the identity of the shared account tuples (accounts are not hashable); by_post keeps them alive.
        self._groups: dict[int, tuple[Groups, int, ByLanguage]] = {}

    def _grouped(self, post_id: str) -> tuple[Groups, int, ByLanguage]:
        """The post's platform groups, the smallest text limit among them, and the groups by language."""
        accounts = self.by_post.get(post_id, ())
        found = self._groups.get(id(accounts))
        if found is None:
            groups = _groups(accounts)
            smallest = min((limit for _, _, by_limit in groups for limit in by_limit), default=0)
            found = self._groups[id(accounts)] = (groups, smallest, _by_language(accounts))
        return found

    def groups(self, post_id: str) -> Groups:
        return self._grouped(post_id)[0]

    def _reshare(self, post: Post, src: Source, groups: Groups) -> None:
        """A post with ``reshare_of`` goes only to platforms that reshare by reference, as commentary alone."""
        assert post.reshare_of is not None
        if post.media or post.video:
            self.problems.add(src, ("reshare_of",), "a reshare carries only its commentary (remove media or video)")
        for platform, ids, _ in groups:
            refusal = getattr(REGISTRY[platform], "reshare_of_refusal", None)
            problem = (
                refusal(post.reshare_of)
                if refusal
                else f"{platform} cannot reshare a post named by reference (accounts {', '.join(ids)}); "
                "reshare_of is for linkedin accounts"
            )
            if problem:
                self.problems.add(src, ("reshare_of",), problem)

    def text(self, post: Post, src: Source) -> bool:
        """Check the text for every platform, in each language it goes out in; whether the post's source is
        still needed (for its media)."""
        groups, smallest, languages = self._grouped(post.id)
        if post.reshare_of is not None:
            self._reshare(post, src, groups)
        if len(languages) == 1 and not post.translations and post.has_language(languages[0][0]):
            # Nearly every post: one text, in the language of every account that publishes it.
            self._refusals(post, src, None, groups)
            # Without variants every platform gets the same text: one bound check clears them all.
            if groups and not post.variants and surely_fits(post.text_for(""), smallest):
                return bool(post.media or post.video)
            for platform, _, by_limit in groups:
                _text(post, src, self.problems, platform, by_limit)
            return bool(post.media or post.video)
        for language, by_platform in languages:
            if not post.has_language(language):
                self._missing(post, src, language, by_platform)
                continue
            self._refusals(post, src, language, by_platform)
            for platform, _, by_limit in by_platform:
                _text(post, src, self.problems, platform, by_limit, language)
        return bool(post.media or post.video)

    def _refusals(self, post: Post, src: Source, language: str | None, groups: Groups) -> None:
        """Each platform's rules beyond length (hashtag counts...), on the text it gets in ``language``."""
        for platform, ids, _ in groups:
            cls = REGISTRY[platform]
            if cls.text_refusals.__func__ is not Platform.text_refusals.__func__:  # type: ignore[attr-defined]
                loc = _where(post, platform, language)
                for refusal in cls.text_refusals(post.text_for(platform, language)):
                    self.problems.add(src, loc, f"{refusal}, for {', '.join(ids)}")

    def _missing(self, post: Post, src: Source, language: str | None, groups: Groups) -> None:
        ids = [account for _, group, _ in groups for account in group]
        named = ", ".join(f"{i} ({self.accounts[i].file}:{self.accounts[i].line})" for i in ids)
        whose = f"{named} publishes" if len(ids) == 1 else f"{named} publish"
        self.problems.add(
            src,
            ("text",),
            f"{whose} in {language}, but post '{post.id}' has no {language} text, only {', '.join(post.languages)} "
            f"(expected text.{language}: the words in {language}, or take the post out of the slots of "
            f"{'that account' if len(ids) == 1 else 'those accounts'})",
        )

    def media(self, posts: dict[str, Post], sources: dict[str, Source], prober: Prober | None = None) -> None:
        """Probe every file once and check each post's media against its platforms."""
        from bot import media
        from bot.campaign.probing import Prober

        with_files = [post_id for post_id in sources if posts[post_id].media or posts[post_id].video]
        prober = prober or Prober()
        probed = prober.probe_all([path for i in with_files for _, _, path, _ in _files(posts[i])])
        for post_id in with_files:
            post, src = posts[post_id], sources[post_id]
            infos = _kinds(post, src, self.problems, probed.__getitem__)
            for platform, ids, _ in self.groups(post_id):
                languages = {self.accounts[i].language for i in ids if i in self.accounts}
                _media(post, src, self.problems, platform, ids, infos, media, languages)


def check(campaign: Campaign, sources: dict[str, Source], problems: Problems, prober: Prober | None = None) -> None:
    """Every per-platform check of every post (the loader runs the same in two steps)."""
    checker = Checker(campaign.accounts, campaign.queues, campaign.schedules, problems)
    for post_id, post in campaign.posts.items():
        checker.text(post, sources[post_id])
    checker.media(campaign.posts, sources, prober)


def _kinds(post: Post, src: Source, problems: Problems, probe: Callable[[Path], Result]) -> dict[Path, MediaInfo]:
    """Probe every file of the post once; report files that are not what their place needs."""
    infos = {}
    for loc, written, path, kind in _files(post):
        info = probe(path)
        if isinstance(info, str):
            problems.add(src, loc, f"cannot read '{written}': {info}")
        elif info.kind != kind:
            what = "WebVTT captions" if kind == "captions" else f"an {kind}" if kind == "image" else f"a {kind}"
            got = "an unknown format" if info.kind == "unknown" else f"{info.kind} ({info.format})"
            problems.add(src, loc, f"'{written}' is not {what}: its content is {got}")
        else:
            infos[path] = info
    return infos


def _files(post: Post) -> list[tuple[Loc, str, Path, str]]:
    """(location, name as written, path, kind it must be) of every file of ``post``."""
    wanted: list[tuple[Loc, str, Path, str]] = [
        (("media", i, "file"), m.file, m.path, "image") for i, m in enumerate(post.media)
    ]
    if post.video is not None:
        wanted.append((("video",), post.video.file, post.video.path, "video"))
        if post.video.captions_path is not None:
            wanted.append((("captions",), post.video.captions_path.name, post.video.captions_path, "captions"))
        if post.video.cover is not None:
            wanted.append((("cover",), post.video.cover_file or post.video.cover.name, post.video.cover, "image"))
    return wanted


def _where(post: Post, platform: str, language: str | None) -> Loc:
    """Where the text ``platform`` gets in ``language`` is written: its variant, or the text."""
    if language not in post.translations:
        variant = platform in post.variants
    else:
        variant = platform in post.translations[language].variants
    if not post.translations:  # written without languages
        return ("variants", platform) if variant else ("text",)
    language = language or post.language or ""
    return ("variants", platform, language) if variant else ("text", language)


def _text(
    post: Post,
    src: Source,
    problems: Problems,
    platform: str,
    by_limit: dict[int, list[str]],
    language: str | None = None,
) -> None:
    text = post.text_for(platform, language)
    if surely_fits(text, min(by_limit)):
        return
    length = REGISTRY[platform].measure_text(text)
    loc = _where(post, platform, language)
    hint = "" if loc[0] == "variants" else f", or add {'.'.join(map(str, ('variants', platform, *loc[1:])))}"
    for limit, ids in sorted(by_limit.items()):
        if length > limit:
            problems.add(
                src,
                loc,
                f"too long for {', '.join(ids)}: {length} characters as {platform} counts them"
                f"{' with the link' if post.link else ''} (expected at most {limit}{hint})",
            )


def _media(
    post: Post,
    src: Source,
    problems: Problems,
    platform: str,
    ids: list[str],
    infos: dict[Path, MediaInfo],
    media: ModuleType,
    languages: set[str | None] | None = None,
) -> None:
    limits = REGISTRY[platform].limits
    who = ", ".join(ids)
    if limits.max_caption is not None:  # with media the text is a caption, where the platform allows less
        for language in sorted(languages or {None}, key=str):
            if not post.has_language(language):
                continue  # reported with the text: no text in that language
            length = REGISTRY[platform].measure_text(post.text_for(platform, language))
            if length > limits.max_caption:
                problems.add(
                    src,
                    _where(post, platform, language),
                    f"too long as the caption of {'a video' if post.video else 'images'} for {who}: {length} "
                    f"characters as {platform} counts them (expected at most {limits.max_caption} with media)",
                )
    if len(post.media) > limits.max_images:
        problems.add(
            src, ("media",), f"{len(post.media)} images is too many for {who} (expected at most {limits.max_images})"
        )
    for i, item in enumerate(post.media):
        if len(item.alt) > limits.alt_max:
            problems.add(
                src,
                ("media", i, "alt"),
                f"is {len(item.alt)} characters, too long for {who} (expected at most {limits.alt_max})",
            )
        info = infos.get(item.path)
        if info is None:
            continue
        if info.format not in limits.image_formats:
            problems.add(
                src,
                ("media", i, "file"),
                f"'{item.file}' is a {info.format} image, which {platform} does not take (expected {_names(limits.image_formats)})",
            )
        if info.bytes > limits.image_max_bytes:
            cap = "source images up to" if limits.images_reencoded else "images up to"
            problems.add(
                src,
                ("media", i, "file"),
                f"'{item.file}' is {_mb(info.bytes)}, too big for {who} (expected {cap} {_mb(limits.image_max_bytes)})",
            )
    refusal = REGISTRY[platform].media_mix_refusal([infos[m.path].format for m in post.media if m.path in infos])
    if refusal:
        problems.add(src, ("media",), f"{refusal}, for {who}")
    video_info = infos.get(post.video.path) if post.video else None
    for loc, message in REGISTRY[platform].media_refusals([infos.get(m.path) for m in post.media], video_info):
        problems.add(src, loc, f"{message}, for {who}")
    video = post.video
    info = infos.get(video.path) if video else None
    if video is None or info is None:
        return
    if len(video.alt) > limits.alt_max:
        problems.add(
            src, ("alt",), f"is {len(video.alt)} characters, too long for {who} (expected at most {limits.alt_max})"
        )
    cover = infos.get(video.cover) if video.cover is not None and REGISTRY[platform].video_cover else None
    if cover is not None:  # only platforms that take a cover check it; the others never send it
        written = video.cover_file or str(video.cover)
        if cover.format not in limits.image_formats:
            problems.add(
                src,
                ("cover",),
                f"'{written}' is a {cover.format} image, which {platform} does not take as a cover "
                f"(expected {_names(limits.image_formats)})",
            )
        if cover.bytes > limits.image_max_bytes:
            problems.add(
                src,
                ("cover",),
                f"'{written}' is {_mb(cover.bytes)}, too big a cover for {who} "
                f"(expected at most {_mb(limits.image_max_bytes)})",
            )
    if not media.format_allowed(info, limits.video_formats):
        problems.add(
            src,
            ("video",),
            f"'{video.file}' is a {info.container or info.format} video, which {platform} does not take (expected {_names(limits.video_formats)})",
        )
    if info.bytes > limits.video_max_bytes:
        problems.add(
            src,
            ("video",),
            f"'{video.file}' is {_mb(info.bytes)}, too big for {who} (expected at most {_mb(limits.video_max_bytes)})",
        )
    if info.duration is not None and info.duration > limits.video_max_seconds:
        problems.add(
            src,
            ("video",),
            f"'{video.file}' lasts {info.duration:.0f} s, too long for {who} (expected at most {limits.video_max_seconds:.0f} s)",
        )


def _names(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"
