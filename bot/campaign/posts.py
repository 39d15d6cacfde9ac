"""posts/: one YAML file per post; a sub-folder is a queue, in file-name order."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.campaign import parsecache
from bot.campaign.files import PostFile, SupporterEntry
from bot.campaign.languages import language_problem
from bot.campaign.paths import PathProblem, inside, link_out, resolve_inside
from bot.campaign.probing import CACHE, Prober
from bot.campaign.problems import WARNING, Problems, known_list, validated
from bot.campaign.yamlsrc import Later, Loc, Source, YamlProblem
from bot.core.model import Consent, Media, Post, Supporter, Translation, Video
from bot.platforms import REGISTRY

_SUFFIXES = (".yaml", ".yml")
_URL = re.compile(r"^https?://\S+$")
_ALT = "alt text is missing (add alt: describing the {} for people who cannot see it)"
_ONE_PER_LANGUAGE = "or one per language like {en: ..., ru: ...}"


@dataclass
class Found:
    """Post files by id, and queues (sub-folders) with their post ids in file-name order."""

    # Files as strings: a Path each would be 10,000 objects built for nothing (Post.path makes one when asked).
    files: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    queues: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Loaded:
    posts: dict[str, Post] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    prober: Prober = field(default_factory=Prober)


def _walk(
    folder: str, root: Path, linked: bool, visited: set[str], out: list[tuple[str, bool]], escaped: list[str]
) -> None:
    """Collect YAML files under ``folder`` with whether a symbolic link leads to each.

    ``scandir`` knows links from the directory listing, so plain files cost no
    extra system call. Linked folders are followed once each (links cannot loop),
    and never when they lead out of the campaign (``escaped``).
    """
    with os.scandir(folder) as entries:
        for entry in entries:
            is_link = entry.is_symlink()
            if entry.is_dir():
                if is_link:
                    real = os.path.realpath(entry.path)
                    if not inside(real, root):
                        escaped.append(entry.path)
                        continue
                    if real in visited:
                        continue
                    visited.add(real)
                _walk(entry.path, root, linked or is_link, visited, out, escaped)
            elif entry.name.endswith(_SUFFIXES) and entry.is_file():
                out.append((entry.path, linked or is_link))


def scan(root: Path, problems: Problems) -> Found:
    found = Found()
    folder = root / "posts"
    if not folder.is_dir():
        return found
    if link_out(root, "posts"):  # its files would all be outside: none is read
        problems.at("posts", 1, "is a symbolic link to a folder outside the campaign folder")
        return found
    paths: list[tuple[str, bool]] = []
    escaped: list[str] = []
    _walk(str(folder), root, False, {os.path.realpath(folder)}, paths, escaped)
    prefix = len(str(root)) + 1
    for name in sorted(escaped):
        problems.at(name[prefix:].replace(os.sep, "/"), 1, "is a symbolic link to a folder outside the campaign folder")
    folders: dict[str | None, str | None] = {}
    for name, linked in sorted(paths, key=lambda p: p[0].rpartition(os.sep)):  # by folder, then file name
        rel = name[prefix:].replace(os.sep, "/")
        # Only links can lead outside; resolving every plain file would cost system calls.
        if linked and not inside(Path(name).resolve(), root):
            problems.at(rel, 1, "is a symbolic link to a file outside the campaign folder")
            continue
        folder_rel, _, base = rel.rpartition("/")
        dot = base.rfind(".")
        stem = base[:dot] if 0 < dot < len(base) - 1 else base  # as Path.stem, without building a Path
        queue = folder_rel[len("posts/") :] or None
        queue = folders.setdefault(queue, queue)  # one string per queue, not one per post
        if stem in found.files:
            other = found.files[stem][1][prefix:].replace(os.sep, "/")
            problems.at(rel, 1, f"post id '{stem}' is already used by {other} (post file names must be unique)")
            continue
        found.files[stem] = (queue, name)
        if queue is not None:
            found.queues.setdefault(queue, []).append(stem)
    return found


class _Paths:
    """Resolves media paths once each: thousands of posts share a few banners and videos."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "posts"
        self.known: dict[str, Path | PathProblem] = {}
        self.shared: dict[tuple[str, str], Media] = {}
        self.lists: dict[tuple[Media, ...], list[Media]] = {}
        self.folders: dict[str, str] = {}

    def folder(self, name: str) -> str:
        """One string per folder of posts, however many posts it holds."""
        return self.folders.setdefault(name, name)

    def media_list(self, media: list[Media]) -> list[Media]:
        """One list for each set of media, however many posts show it (nothing writes to a frozen post's parts)."""
        return self.lists.setdefault(tuple(media), media)

    def media(self, written: str, path: Path, alt: str) -> Media:
        """One frozen Media for each file and alt text, however many posts show it."""
        key = (written, alt)
        found = self.shared.get(key)
        if found is None:
            found = self.shared[key] = Media(file=written, path=path, alt=alt)
        return found

    def get(self, written: str) -> Path:
        if written not in self.known:
            try:
                self.known[written] = resolve_inside(self.root, self.base, written)
            except PathProblem as exc:
                self.known[written] = exc
        found = self.known[written]
        if isinstance(found, PathProblem):
            raise found
        return found


def build_all(
    root: Path,
    found: Found,
    problems: Problems,
    check: Callable[[Post, Source], bool] | None = None,
    language: str = "en",
) -> Loaded:
    """Every post; with ``check``, each is checked when built and kept for the media check only if ``check`` says so.
    A text written without a language is in the post's ``language:``, else in ``language`` (the campaign's)."""
    loaded = Loaded(prober=Prober(cache=root / CACHE))
    cache = parsecache.at(root)
    paths = _Paths(root)
    prefix = len(str(root)) + 1
    for post_id, (queue, name) in found.files.items():
        rel = name[prefix:].replace(os.sep, "/")
        try:
            source = cache.read(name, rel)
        except YamlProblem as exc:
            problems.at(rel, exc.line, exc.message)
            continue
        except OSError as exc:  # removed or unreadable since the folder was listed
            problems.at(rel, 1, f"cannot be read ({exc.strerror})")
            continue
        raw = validated(problems, source, PostFile, source.data)
        if raw is None:
            continue
        if raw.media or raw.video:
            loaded.prober.warm()  # its imports run alongside the rest of the loading
        folder, _, base = name.rpartition(os.sep)
        where = (paths.folder(folder), None if base == f"{post_id}.yaml" else base)
        post = loaded.posts[post_id] = _build(paths, problems, source, post_id, queue, where, raw, language)
        # No parse is kept: 10,000 of them alive at once would leave the worker's heap large
        # for its whole life. A file is read again only if a media problem must be located in it.
        if check is None or check(post, source):
            loaded.sources[post_id] = Later(rel, name)
    cache.save()
    return loaded


def _build(
    paths: _Paths,
    problems: Problems,
    src: Source,
    post_id: str,
    queue: str | None,
    where: tuple[str, str | None],
    raw: PostFile,
    default_language: str = "en",
) -> Post:
    for loc, tag in src.cut_hashtags.items():
        if loc[0] == "text" or (len(loc) >= 2 and loc[0] == "variants"):
            problems.add(
                src,
                loc,
                f"'{tag}' is read as a YAML comment and left out of the text "
                "(expected the whole text in quotes, or after | on the next lines)",
                WARNING,
            )
    language, text, variants, translations = _texts(problems, src, raw, default_language)
    if raw.link is not None and not _URL.match(raw.link.strip()):
        problems.add(src, ("link",), f"'{raw.link}' is not a web address (expected https://...)")
    media = []
    for i, entry in enumerate(raw.media):
        if not (entry.alt or "").strip():
            problems.add(src, ("media", i), _ALT.format("image"))
        found = _path(paths, problems, src, ("media", i, "file"), entry.file)
        if found is not None:
            media.append(paths.media(entry.file, found, (entry.alt or "").strip()))
    video = None
    if raw.video is None:
        for key in ("captions", "captions_lang", "alt", "consent", "cover"):
            if getattr(raw, key) is not None:
                problems.add(src, (key,), "is only used with video")
    else:
        if raw.media:
            problems.add(src, ("video",), "a post takes images or a video, not both")
        if not (raw.alt or "").strip():
            problems.add(src, ("video",), _ALT.format("video"))
        if raw.consent is None:
            problems.add(
                src, ("video",), "consent is missing (expected consent: {given: true, date: ...} from the supporter)"
            )
        elif not raw.consent.given:
            problems.add(src, ("consent", "given"), "is false (a video is published only with consent given: true)")
        video_path = _path(paths, problems, src, ("video",), raw.video)
        captions = _path(paths, problems, src, ("captions",), raw.captions) if raw.captions else None
        cover = _path(paths, problems, src, ("cover",), raw.cover) if raw.cover else None
        if video_path is not None:
            video = Video(
                file=raw.video,
                path=video_path,
                captions_path=captions,
                alt=(raw.alt or "").strip(),
                captions_lang=raw.captions_lang or language,
                cover=cover,
                cover_file=raw.cover if cover is not None else None,
            )
    return Post(
        id=post_id,
        queue=queue,
        folder=where[0],
        file_name=where[1],
        text=text,
        variants=variants or None,
        media=paths.media_list(media) if media else None,
        link=raw.link.strip() if raw.link else None,
        video=video,
        supporter=_supporter(raw.supporter) if raw.supporter else None,
        consent=Consent(given=raw.consent.given, date=raw.consent.date, recorded_by=raw.consent.recorded_by)
        if raw.consent
        else None,
        language=language,
        translations=translations or None,
        reshare_of=raw.reshare_of.strip() if raw.reshare_of else None,
    )


def _texts(
    problems: Problems, src: Source, raw: PostFile, default: str
) -> tuple[str, str, dict[str, str], dict[str, Translation]]:
    """(language, text, variants, translations): the text written without a language, or the post's ``language:``
    one (else the first written), with its variants; the other languages' texts with theirs."""
    text, plain = raw.text, raw.variants
    if raw.language is None and isinstance(text, str) and all(isinstance(v, str) for v in plain.values()):
        # Nearly every post: one text and its variants, in the campaign's language (bot check of 10,000 posts).
        if not text.strip() and not raw.reshare_of:  # a reshare's commentary may be empty
            problems.add(src, ("text",), "is empty (expected the words of the post)")
        for platform in plain:
            if platform not in REGISTRY:
                problems.add(
                    src, ("variants", platform), f"unknown platform '{platform}' (known: {known_list(REGISTRY)})"
                )
        return default, text, plain, {}
    wrong = raw.language is not None and language_problem(raw.language)
    if wrong:
        problems.add(src, ("language",), wrong)
    # own: the language of what is written without one (an unknown code is reported above, once)
    language = own = raw.language if raw.language and not wrong else default
    if isinstance(raw.text, str) or raw.text is None:  # nearly every post: one text in one language
        if not (raw.text or "").strip() and not raw.reshare_of:  # a reshare's commentary may be empty
            problems.add(src, ("text",), "is empty (expected the words of the post)")
        texts = {language: raw.text or ""}
    else:
        written = _per_language(problems, src, ("text",), raw.text, "the words of the post")
        texts = {language: ""} if written is None else written
        if written is not None and raw.language is not None and raw.language not in texts and not wrong:
            problems.add(
                src,
                ("language",),
                f"'{raw.language}' has no text (expected one of the languages of text: {', '.join(texts)})",
            )
        if texts and language not in texts:
            language = next(iter(texts))  # plain variants below are in it
    variants: dict[str, dict[str, str]] = {}
    for platform, value in (raw.variants or {}).items():
        loc: tuple[str, ...] = ("variants", str(platform))
        if platform not in REGISTRY:
            problems.add(src, loc, f"unknown platform '{platform}' (known: {known_list(REGISTRY)})")
        if isinstance(value, str):
            written = {own: value}
            if own not in texts:
                whose = "the post's language" if raw.language else "the campaign's language"
                problems.add(
                    src,
                    loc,
                    f"a variant written without a language is in {own} ({whose}), which text has no words in "
                    f"(expected one per language like {platform}: {{{next(iter(texts), 'en')}: ...}})",
                )
        else:
            written = _per_language(problems, src, loc, value, "the words of the post on this platform") or {}
        for lang, words in written.items():
            if lang not in texts:
                if isinstance(value, str):
                    continue  # reported above
                problems.add(
                    src, (*loc, lang), f"the post has no {lang} text (expected text.{lang} too, or remove this variant)"
                )
            variants.setdefault(lang, {})[str(platform)] = words
    translations = {
        lang: Translation(text=words, variants=variants.get(lang) or {})
        for lang, words in texts.items()
        if lang != language
    }
    return language, texts.get(language, ""), variants.get(language, {}), translations


def _per_language(
    problems: Problems, src: Source, loc: tuple[str, ...], value: object, what: str
) -> dict[str, str] | None:
    """``{en: ..., ru: ...}`` as written, each language and text checked; None when it is not a mapping."""
    if not isinstance(value, dict) or not value:
        got = "nothing" if value is None or value == {} else repr(value)[:60]
        problems.add(src, loc, f"got {got} (expected {what}, {_ONE_PER_LANGUAGE})")
        return None
    out = {}
    for key, words in value.items():
        if isinstance(key, bool) and key is False:  # YAML reads an unquoted no (Norwegian) as false
            problems.add(
                src, loc, "unknown language 'false' (write Norwegian as 'no' in quotes: YAML reads no as false)"
            )
            continue
        lang = str(key)
        if problem := language_problem(key):
            problems.add(src, (*loc, lang), problem)
        if not isinstance(words, str) or not words.strip():
            got = "an empty text" if isinstance(words, str) or words is None else repr(words)[:60]
            problems.add(src, (*loc, lang), f"got {got} (expected {what} in {lang})")
            continue
        out[lang] = words
    return out


def _supporter(entry: SupporterEntry) -> Supporter:
    return Supporter(name=entry.name, role=entry.role, organisation=entry.organisation, country=entry.country)


def _path(paths: _Paths, problems: Problems, src: Source, loc: Loc, written: str) -> Path | None:
    try:
        return paths.get(written)
    except PathProblem as exc:
        problems.add(src, loc, str(exc))
        return None
