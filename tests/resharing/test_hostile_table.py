"""A table of hostile and friendly tagged posts on every platform's sandbox: no hostile one reshared, no friendly one refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.resharing.harness import World, fresh, reshared, rows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LIMITS = {"x": 280, "mastodon": 500, "bluesky": 300}
BLOCKED = ["traitor", "extremist", "fake news", "Lukashenka", "Lukašenka", "предатель", "здраднік", "хлусня"]


@dataclass(frozen=True)
class Row:
    text: str
    how: str  # the evasion (hostile) or the kind of friendly post
    display_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # spoiler_text, alt_text, card_title (post_as keywords)
    only: str | None = None  # a platform that can carry ``extra`` (X has no content warnings)
    quoting: str = ""  # the text of a post this one quotes (X: the sandbox posts it first)
    edit_to: str = ""  # reshared as ``text``, then edited to this (X: a new version the next search finds)


HOSTILE = [
    Row("Andrei is a traitor", "plain"),
    Row("They are traitors, all of them", "plural"),
    Row("the traitor's friends", "possessive"),
    Row("TRAITOR", "upper case"),
    Row("tr\u0430itor", "Cyrillic а"),
    Row("\u0422RAITOR", "Cyrillic Т"),
    Row("\u03c4rai\u03c4\u03bfr", "Greek τ ο"),
    Row("\u0442\u0433\u0430\u0456\u0442\u043e\u0433", "all Cyrillic look-alikes"),
    Row("𝔱𝔯𝔞𝔦𝔱𝔬𝔯𝔰", "mathematical letters"),
    Row("ｔｒａｉｔｏｒ", "full width"),
    Row("tr\u200bai\u200ctor", "zero-width space and non-joiner"),
    Row("trai\u00adtor", "soft hyphen"),
    Row("t\u0336r\u0336a\u0336i\u0336t\u0336o\u0336r\u0336", "combining strokes"),
    Row("t.r.a.i.t.o.r", "dots"),
    Row("t r a i t o r", "spaces"),
    Row("t-r-a-i-t-o-r-s", "hyphens"),
    Row("t_r_a_i_t_o_r", "underscores"),
    Row("trai.tor", "glued halves"),
    Row("traaaaitor", "repeated letters"),
    Row("tr41t0r", "digits"),
    Row("tra1tor", "digit one"),
    Row("tr@itor", "at sign"),
    Row("#TraitorsOut", "camelCase hashtag"),
    Row("known extremists", "plural"),
    Row("3xtr3m1st", "digits"),
    Row("FAKE   NEWS", "phrase"),
    Row("fake n\u0435ws", "phrase, Cyrillic е"),
    Row("LUKAŠENKA", "accents"),
    Row("Lukashenka's man", "possessive"),
    Row("Luk\u0430sh\u0435nk\u0430", "Cyrillic а е"),
    Row("они предатели", "Russian plural"),
    Row("предателям слава", "Russian dative"),
    Row("пpeдaтeль", "Russian, Latin p e a"),
    Row("п р е д а т е л ь", "Russian spaced"),
    Row("предааатель", "Russian repeated"),
    Row("гэта здраднікі", "Belarusian plural"),
    Row("здраднікамі", "Belarusian instrumental"),
    Row("здpaднік", "Belarusian, Latin p a"),
    Row("хлуснёй", "Belarusian/Russian instrumental"),
    Row("Free them", "display name", display_name="Tr\u0430itor Watch"),
    Row("Free them all", "display name, spaced", display_name="t r a i t o r"),
    Row("Free them now", "display name, Russian", display_name="Предатели"),
    Row("Prison conditions", "content warning", extra={"spoiler_text": "traitors"}, only="mastodon"),
    Row("Prison photos", "content warning, Cyrillic", extra={"spoiler_text": "пpeдaтeли"}, only="mastodon"),
    Row("A picture", "alt text", extra={"alt_text": "the traitor in court"}, only="mastodon"),
    Row("Another picture", "alt text, look-alike", extra={"alt_text": "EXTR\u0415MIST"}, only="mastodon"),
    Row("Read this", "link card title", extra={"card_title": "Meet the traitors"}, only="bluesky"),
    Row("Read that", "link card title, spaced", extra={"card_title": "f a k e news"}, only="bluesky"),
    Row("A photo", "alt text on X", extra={"alt_text": "the traitor in court"}, only="x"),
    Row("Another photo", "alt text on X, look-alike", extra={"alt_text": "EXTR\u0415MIST"}, only="x"),
    Row("Read this", "link card title on X", extra={"card_title": "Meet the traitors"}, only="x"),
    Row("Read that", "link card title on X, spaced", extra={"card_title": "f a k e news"}, only="x"),
    Row("Look at this", "quoted post on X", quoting="Andrei is a traitor", only="x"),
    Row("Say it again", "quoted post on X, Cyrillic", quoting="они пpeдaтeли", only="x"),
    Row("Journalism is not a crime", "edit after reshare on X", edit_to="Journalism? Traitors, all of them", only="x"),
    Row("Free the journalists", "edit after reshare on X, spaced", edit_to="Free? t r a i t o r s", only="x"),
]

PARTNERS = [
    Row("Traditional Belarusian songs for Andrei and Irina tonight", "English near-miss (traditional)"),
    Row("We are extremely worried about their health", "English near-miss (extremely)"),
    Row("Journalism is not extremism. Free them now", "English near-miss (extremism)"),
    Row("A fake trial does not make real news", "English, phrase words apart"),
    Row("Trade unions stand with Andrei and Irina", "English"),
    Row("Свободу Андрею и Ирине! Журналистика не преступление.", "Russian"),
    Row("Это предательство правосудия, а не суд", "Russian near-miss (предательство)"),
    Row("Предать забвению их имена мы не дадим", "Russian near-miss (предать)"),
    Row("Экстремально долгий срок в СИЗО", "Russian"),
    Row("Волю Андрэю і Ірыне! Журналістыка — не злачынства.", "Belarusian"),
    Row("Здрада прысязе? Не, гэта праца журналіста.", "Belarusian near-miss (здрада)"),
    Row("Мы памятаем пра ўсіх палітвязняў", "Belarusian"),
    Row("U.S.A. and E.U. statements on the case", "initials (not spelled-out words)"),
]


def campaign_texts(platform: str) -> list[Row]:
    """The campaign's own post texts, in the variant written for ``platform``, that fit its length limit."""
    out = []
    for path in sorted((ROOT / "posts").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            continue
        text = ((data.get("variants") or {}).get(platform) or data["text"]).strip()
        if len(text) + 20 <= LIMITS[platform]:
            out.append(Row(text, f"campaign text {path.relative_to(ROOT)}"))
    return out


def expected(row: Row) -> str:
    """Why a hostile row must end refused: its words are blocked, or (edited in after the reshare) it was edited."""
    return "edited" if row.edit_to else "blocked_word"


# The platforms whose hashtags the campaign tracks and reshares from (the contract suite's others have no search).
TRACKED = ("x", "mastodon", "bluesky")


@pytest.fixture(params=TRACKED)
def tracked(request: pytest.FixtureRequest):
    return request.getfixturevalue(f"{request.param}_sandbox")


def test_hostile_and_friendly_table(tracked, tmp_path, clock) -> None:
    """Every disguised blocked word (text, content warning, alt text, link card, quoted post, display name) is skipped
    or, edited in after the reshare, withdrawn; every friendly post is reshared."""
    sandbox = tracked
    platform = sandbox.platform
    hostile = [r for r in HOSTILE if r.only in (None, platform)]
    friendly = campaign_texts(platform) + PARTNERS
    assert len(hostile) >= 40 and len(friendly) >= 20
    policy = dict(
        always_from=[],
        never_from=[],
        blocked_words=BLOCKED,
        skip={"replies", "reshares", "own"},  # not "sensitive": warned posts must meet the word filter itself
        max_per_hour=600,
        max_per_day=1000,
        mode="auto",
        author_cooldown=timedelta(seconds=1),
    )
    world = World(sandbox, tmp_path, clock, fresh("Free"), [sandbox.create_account(fresh("index"))], policy)
    posted: dict[str, tuple[bool, Row]] = {}
    authors = {}
    try:
        tracker = world.tracker()
        tracker.poll_once()
        for is_hostile, table in ((True, hostile), (False, friendly)):
            for row in table:
                author = sandbox.create_account(fresh("author"), display_name=row.display_name)
                text = f"{row.text} #{world.tag}"
                extra: dict[str, str | None] = dict(row.extra)
                if row.quoting:
                    extra["quote_of"] = sandbox.post_as(author, row.quoting)
                reason = "blocked_word" if is_hostile and not row.edit_to else None
                remote_id = world.post(author, text, row.how, reason, **extra)
                posted[remote_id] = (is_hostile, row)
                authors[remote_id] = author
        edits = [rid for rid, (_, row) in posted.items() if row.edit_to]
        for _ in range(len(friendly) + len(edits) + 10):  # reshares go out one per account and pass, at the spacing
            world.step(tracker, 60)
            if sum(r.status == "done" for r in rows(world)) >= len(friendly) + len(edits):
                break
        for rid in edits:
            assert rid in reshared(world), f"{posted[rid][1].how}: not reshared before the edit"
            sandbox.edit_as(authors[rid], rid, f"{posted[rid][1].edit_to} #{world.tag}")
        world.dirty = bool(edits)
        # A quiet X search backs off (at most 5 polls left out at this interval): poll until it looks again.
        for _ in range(12 if edits else 0):
            world.step(tracker, world.interval)
            if all(r.status == "withdrawn" for r in rows(world) if r.remote_id in edits):
                break
        world.step(tracker, 600)  # nothing hostile is left waiting to go out
        decided = {r.remote_id: r for r in rows(world)}
        on_server = set(reshared(world))
    finally:
        world.close()

    missing = [row.how for rid, (_, row) in posted.items() if rid not in decided]
    assert not missing, f"never decided: {missing}"
    let_through = [
        row.how for rid, (bad, row) in posted.items() if bad and (rid in on_server or decided[rid].status == "done")
    ]
    refused = [
        (row.how, decided[rid].reason, decided[rid].detail)
        for rid, (bad, row) in posted.items()
        if not bad and (rid not in on_server or decided[rid].status != "done")
    ]
    wrong_reason = [
        (row.how, decided[rid].reason, decided[rid].withdrawn_reason)
        for rid, (bad, row) in posted.items()
        if bad and (decided[rid].withdrawn_reason if row.edit_to else decided[rid].reason) != expected(row)
    ]
    print(
        f"\n{platform}: {len(hostile)} hostile, {len(let_through)} reshared; {len(friendly)} friendly, "
        f"{len(refused)} refused: false-positive rate {len(refused) / len(friendly):.1%}"
    )
    assert let_through == [] and wrong_reason == []
    assert refused == []
