"""X conformance with X's OpenAPI document v2.167: the adapter's requests and the fake's answers, and cost-aware search.

The contract test drives the real adapter (tweepy and requests over loopback) against the fake
X server recording the bytes of every exchange, then validates each request and each answer
with openapi-core against ``x_openapi_subset.json``, our subset of the spec.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from bot.core.errors import ContentRejected, DuplicateContent, RateLimited
from bot.core.values import ImageAttachment, VideoAttachment
from bot.platforms.x import X
from bot.platforms.x.search import QUERY_MAX, SearchPacer, estimate_month, join_cursor, queries, split_cursor
from sandboxes.media import make_image
from sandboxes.x.sandbox import XSandbox
from tests.platforms.support import adapter_for, media_folder
from tests.platforms.support import fresh_name as fresh
from tests.platforms.support import outgoing as out

SUBSET = Path(__file__).with_name("x_openapi_subset.json")
OLD_NAMES = ("tweet.fields", "referenced_tweets", "referenced_tweets.id", "edit_history_tweet_ids")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = media_folder(
        tmp_path_factory.mktemp("x-spec-media"),
        banner_size=(400, 200),
        clip="clip",
        seconds=1,
        clip_size=(160, 90),
        captions=["Free Andrei", "Free Irina"],
    )
    make_image(root / "wave.gif", (64, 64), format="GIF", mode="P")
    return root


@pytest.fixture
def recorded() -> Iterator[XSandbox]:
    with XSandbox(record=True) as sandbox:
        yield sandbox


def _spec() -> Any:
    from openapi_core import Config, OpenAPI

    # openapi-core reads only application/json as JSON; X's errors are application/problem+json.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(json.loads(SUBSET.read_text()), config=config)


def _operation(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    for template, item in spec["paths"].items():
        parts, wanted = template.split("/"), path.split("/")
        if len(parts) == len(wanted) and all(p == w or p.startswith("{") for p, w in zip(parts, wanted)):
            if method.lower() in item:
                return template, item[method.lower()]
    return None


def _validate_all(sandbox: XSandbox) -> tuple[Counter[str], list[str]]:
    """Validate every recorded request and answer: how many of each operation were checked, and what failed."""
    from openapi_core.testing import MockRequest, MockResponse

    raw = json.loads(SUBSET.read_text())
    spec, checked, problems = _spec(), Counter[str](), []
    for entry in sandbox.requests():
        wire = entry["wire"]
        found = _operation(raw, entry["method"], entry["path"])
        assert found is not None, f"{entry['method']} {entry['path']} is not in the subset"
        template, operation = found
        name = f"{entry['method']} {template}"
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        extra = set(entry["query"]) - declared
        if extra:  # openapi-core ignores undeclared query parameters: an old name would slip through
            problems.append(f"{name}: undeclared query parameters {sorted(extra)}")
        problems += _undeclared_parts(name, operation, wire)
        request = MockRequest(
            "https://api.x.com",
            entry["method"].lower(),
            entry["path"],
            args=entry["query"],
            data=wire["body"] or None,
            content_type=wire["content_type"] or "application/json",
        )
        for error in spec.iter_request_errors(request):
            problems.append(f"{name} request: {_explain(error)}")
        status, answer = entry["status"], wire["response_body"]
        response = MockResponse(
            b"" if status == 204 else json.dumps(answer).encode(),
            status_code=status,
            content_type="application/problem+json" if status >= 400 else "application/json",
        )
        for error in spec.iter_response_errors(request, response):
            problems.append(f"{name} answer {status}: {_explain(error)}")
        text = json.dumps(answer)
        old = [n for n in OLD_NAMES if f'"{n}"' in text]
        if old:
            problems.append(f"{name} answer uses the older names {old}")
        checked[f"{name} {status}"] += 1
    return checked, problems


def _undeclared_parts(name: str, operation: dict[str, Any], wire: dict[str, Any]) -> list[str]:
    """Form parts a closed schema does not name: openapi-core 0.23 reads only the declared parts of a multipart body."""
    from sandboxes.x.server import _multipart

    kind = wire["content_type"]
    content = (operation.get("requestBody") or {}).get("content", {}).get("multipart/form-data")
    if not kind.startswith("multipart/form-data") or content is None:
        return []
    schema = content["schema"]
    if schema.get("additionalProperties", True) is not False:
        return []
    extra = set(_multipart(kind, wire["body"])) - set(schema["properties"])
    return [f"{name} request: undeclared form parts {sorted(extra)}"] if extra else []


def _explain(error: Exception) -> str:
    causes = [error, *(getattr(error, "schema_errors", None) or [])]
    cause = error.__cause__
    if cause is not None:
        causes += [cause, *(getattr(cause, "schema_errors", None) or [])]
    return "; ".join(str(c)[:300] for c in causes)


def test_every_request_and_answer_matches_the_spec(recorded: XSandbox, media: Path) -> None:
    """Text, images with alt text, a GIF, a captioned video, search, repost, read-back and errors all match the subset."""
    sandbox = recorded
    me, supporter = sandbox.create_account(fresh()), sandbox.create_account(fresh("sup"))
    platform = adapter_for(me)
    tag = f"Free{uuid.uuid4().hex[:6]}"
    try:
        platform.whoami()
        text = out(f"Andrei and Irina are journalists #{tag}")
        platform.publish(text)
        platform.publish(
            out(
                "Two banners",
                images=(
                    ImageAttachment(media / "banner-0.png", "A red banner"),
                    ImageAttachment(media / "banner-1.png", "Another"),
                ),
            )
        )
        platform.publish(out("A GIF alone", images=(ImageAttachment(media / "wave.gif", "A waving hand"),)))
        video = VideoAttachment(media / "clip.mp4", "A clip", captions=media / "clip.vtt", captions_lang="en")
        platform.publish(out("A clip", video=video))
        with pytest.raises(DuplicateContent):
            platform.publish(out(text.text))
        assert platform.find_published(text) is not None
        root = sandbox.post_as(supporter, f"Free them #{tag}")
        sandbox.post_as(supporter, f"Agreed #{tag}", reply_to=root)
        page = platform.fetch_mentions([tag, f"{tag}Two"], None)
        assert len(page.mentions) == 3 and page.mentions[-1].is_reply  # our own tagged post, a supporter's, a reply
        platform.reshare(page.mentions[0])
        sandbox.set_limit("GET /2/tweets/search/recent", 0)
        with pytest.raises(RateLimited):
            platform.fetch_mentions([tag], "1")
    finally:
        platform.close()
    checked, problems = _validate_all(sandbox)
    assert problems == []
    operations = {key.rsplit(" ", 1)[0] for key in checked}
    raw = json.loads(SUBSET.read_text())
    every = {f"{m.upper()} {p}" for p, item in raw["paths"].items() for m in item}
    assert operations == every  # each endpoint of the subset was exercised, none left unchecked
    assert {"POST /2/tweets 403", "GET /2/tweets/search/recent 429"} <= set(checked)


def test_a_request_with_the_older_names_fails_the_contract(recorded: XSandbox) -> None:
    """The contract check is not vacuous: tweet.fields or a media_type in a one-shot upload are reported."""
    import requests
    from requests_oauthlib import OAuth1

    acct = recorded.create_account(fresh())
    values = {role: acct.env[var] for role, var in acct.entry["credentials"].items()}
    auth = OAuth1(
        values["consumer_key"], values["consumer_secret"], values["access_token"], values["access_token_secret"]
    )
    query = urlencode({"query": "#FreeAndreiandIrina", "tweet.fields": "referenced_tweets"})
    requests.get(f"{recorded.base_url}/2/tweets/search/recent?{query}", auth=auth, timeout=10)
    png = (Path(__file__).parent / "x_openapi_subset.json").read_bytes()[:0] + b"\x89PNG\r\n\x1a\n" + bytes(32)
    requests.post(
        f"{recorded.base_url}/2/media/upload",
        auth=auth,
        files={"media": ("a.png", png)},
        data={"media_category": "tweet_image", "media_type": "image/png"},
        timeout=10,
    )
    _, problems = _validate_all(recorded)
    assert len(problems) == 2
    assert problems[0] == "GET /2/tweets/search/recent: undeclared query parameters ['tweet.fields']"
    assert problems[1] == "POST /2/media/upload request: undeclared form parts ['media_type']"


def test_adapter_reads_answers_in_the_older_names(media: Path) -> None:
    """While X still answers referenced_tweets and edit_history_tweet_ids, replies and reshares are still recognised."""
    with XSandbox() as sandbox:
        sandbox.legacy_names()
        me, supporter = sandbox.create_account(fresh()), sandbox.create_account(fresh("sup"))
        platform = adapter_for(me)
        tag = f"Old{uuid.uuid4().hex[:6]}"
        root = sandbox.post_as(supporter, f"Root #{tag}")
        reply = sandbox.post_as(supporter, f"Reply #{tag}", reply_to=root)
        quote = sandbox.post_as(supporter, f"Quote #{tag}", quote_of=root)
        sandbox.edit_as(supporter, quote, f"Quote, edited #{tag}")
        mark = len(sandbox.requests())
        page = platform.fetch_mentions([tag], None)
        assert [(m.remote_id, m.is_reply) for m in page.mentions[:2]] == [(root, False), (reply, True)]
        assert page.mentions[1].ref == {"replied_to_id": root}
        # includes.tweets and edit_history_tweet_ids, the older names, are read as the new ones are.
        assert (page.mentions[2].quoted_text, page.mentions[2].ref["earlier_versions"]) == (f"Root #{tag}", quote)
        (search,) = sandbox.requests()[mark:]
        assert search["query"]["post.fields"] and "tweet.fields" not in search["query"]
        expansions = set(search["query"]["expansions"].split(","))
        assert expansions == {"author_id", "referenced_posts", "attachments.media_keys"}
        platform.close()


def test_a_gif_must_be_the_only_media(media: Path, recorded: XSandbox) -> None:
    """A GIF beside another image is refused before anything is sent; media_mix_refusal gives bot check the same rule."""
    platform = adapter_for(recorded.create_account(fresh()))
    mixed = out(
        "GIF and banner",
        images=(ImageAttachment(media / "wave.gif", "Hand"), ImageAttachment(media / "banner-0.png", "Banner")),
    )
    with pytest.raises(ContentRejected, match="a GIF must be a post's only media"):
        platform.publish(mixed)
    assert recorded.requests() == []
    assert X.media_mix_refusal(["GIF", "PNG"]) and X.media_mix_refusal(["GIF"]) is None
    assert X.media_mix_refusal(["PNG", "JPEG", "PNG"]) is None
    platform.close()


def test_long_tag_lists_split_into_queries_under_512_characters() -> None:
    """Tags that fit go in one query; more are packed into as few queries of at most 512 characters as fit."""
    assert queries(["A", "#B"]) == ["(#A OR #B) -is:retweet"]
    tags = [f"FreeTheJournalist{n:03d}" for n in range(60)]
    split = queries(tags)
    assert len(split) > 1 and all(len(q) <= QUERY_MAX for q in split)
    assert sorted(t for q in split for t in q[1:].split(")")[0].split(" OR ")) == sorted(f"#{t}" for t in tags)
    for before, after in zip(split, split[1:]):  # as few as fit: the next query's first tag would not
        first_tag = after[1:].split(" OR ")[0].split(")")[0]
        assert len(before.replace(") -is:retweet", f" OR {first_tag}) -is:retweet")) > QUERY_MAX


def test_split_queries_keep_a_cursor_each(recorded: XSandbox) -> None:
    """Each split query searches since its own newest id, so a post found by one never hides the other's."""
    me, supporter = recorded.create_account(fresh()), recorded.create_account(fresh("sup"))
    platform = adapter_for(me)
    tags = [f"Tag{uuid.uuid4().hex[:6]}{n:02d}{'x' * 40}" for n in range(12)]
    assert len(queries(tags)) == 2
    first = recorded.post_as(supporter, f"First #{tags[0]}")
    last = recorded.post_as(supporter, f"Last #{tags[-1]}")
    page = platform.fetch_mentions(tags, None)
    assert [m.remote_id for m in page.mentions] == [first, last] and page.cursor == f"{first},{last}"
    newer = recorded.post_as(supporter, f"Newer #{tags[0]}")
    mark = len(recorded.requests())
    again = platform.fetch_mentions(tags, page.cursor)
    assert [m.remote_id for m in again.mentions] == [newer] and again.cursor == f"{newer},{last}"
    assert [r["query"]["since_id"] for r in recorded.requests()[mark:]] == [first, last]
    assert split_cursor(first, 1) == [first] and split_cursor(first, 2) == [first, first]
    assert join_cursor([None, None]) is None and join_cursor([first]) == first
    platform.close()


@pytest.fixture
def now() -> list[float]:
    """The wall clock of a sandbox and its adapter, moved by the test."""
    return [1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600]  # 01:00 UTC


@pytest.fixture
def timed(now: list[float]) -> Iterator[XSandbox]:
    with XSandbox(wall=lambda: now[0]) as sandbox:
        yield sandbox


def test_search_backs_off_when_nothing_is_new_and_resets_on_a_hit(timed: XSandbox, now: list[float]) -> None:
    """Polled every 5 minutes with nothing new, searches go out after 5, 10, 20, then every 30 minutes; a hit resets.

    The gaps are counted in polls: the wall clock here moves a second a poll (as under a fast demo clock).
    """
    recorded = timed
    me, supporter = recorded.create_account(fresh()), recorded.create_account(fresh("sup"))
    platform = adapter_for(me, wall=lambda: now[0])
    tag = f"Quiet{uuid.uuid4().hex[:6]}"
    searched_at = []
    cursor = None
    for poll in range(24):  # two hours of polls, 5 minutes apart
        mark = len(recorded.requests())
        cursor = platform.fetch_mentions([tag], cursor).cursor
        if len(recorded.requests()) > mark:
            searched_at.append(poll * 5)
        now[0] += 1
    assert searched_at == [0, 5, 15, 35, 65, 95]
    recorded.post_as(supporter, f"At last #{tag}")
    polls_to_hit = 0
    while not platform.fetch_mentions([tag], cursor).mentions:
        polls_to_hit += 1
        now[0] += 1
    assert polls_to_hit <= 6  # found within the 30-minute cap
    mark = len(recorded.requests())
    platform.fetch_mentions([tag], cursor)
    assert len(recorded.requests()) == mark + 1  # after a hit the next poll searches again
    platform.close()


def test_daily_read_budget_stops_searching_until_the_next_day(
    timed: XSandbox, now: list[float], tmp_path: Path
) -> None:
    """Posts read count against search_daily_reads; the page shrinks to what is left, then searching waits for the next UTC day."""
    recorded = timed
    me, supporter = recorded.create_account(fresh()), recorded.create_account(fresh("sup"))
    platform = adapter_for(me, wall=lambda: now[0], options={"search_daily_reads": 25}, state_dir=tmp_path)
    tag = f"Busy{uuid.uuid4().hex[:6]}"
    for n in range(40):
        recorded.post_as(supporter, f"Post {n} #{tag}")
    mark = len(recorded.requests())
    with capture_logs() as logs:
        first = platform.fetch_mentions([tag], None)
        now[0] += 60
        second = platform.fetch_mentions([tag], first.cursor)
        now[0] += 60
        third = platform.fetch_mentions([tag], second.cursor)
    sent = recorded.requests()[mark:]
    assert [r["query"]["max_results"] for r in sent] == ["25"]  # one page of what the budget allows
    assert len(first.mentions) == 25 and second.mentions == third.mentions == []
    assert [e["event"] for e in logs if e["event"] == "mentions_budget_spent"] == ["mentions_budget_spent"]
    assert json.loads((tmp_path / f"x-reads-{me.id}.json").read_text())["reads"] == 25
    restarted = adapter_for(me, wall=lambda: now[0], options={"search_daily_reads": 25}, state_dir=tmp_path)
    mark = len(recorded.requests())
    assert restarted.fetch_mentions([tag], second.cursor).mentions == []  # a restart keeps today's count
    assert len(recorded.requests()) == mark
    # What the budget cut off is left behind (the newest are kept, as with search_max_pages); a new day reads on.
    later = recorded.post_as(supporter, f"Tomorrow #{tag}")
    now[0] += 86400
    assert [m.remote_id for m in restarted.fetch_mentions([tag], third.cursor).mentions] == [later]
    platform.close()
    restarted.close()


def test_configure_search_takes_the_tracking_settings() -> None:
    """The tracker's settings from config/reshare.yaml override the account options; 0 means no budget."""
    pacer = SearchPacer(lambda: 0.0, daily_reads=10)
    pacer.configure(daily_reads=500, max_gap=600, poll_interval=60)
    assert (pacer.daily_reads, pacer.max_gap, pacer.poll_interval, pacer.remaining()) == (500, 600, 60, 500)
    for _ in range(12):  # a quiet tag polled every minute with a 10-minute cap: a search every 10th poll at most
        pacer.searched(("tag",), found=0)
    assert [pacer.defer(("tag",)) for _ in range(10)] == ["backing_off"] * 9 + [None]
    pacer.configure(daily_reads=0)
    assert pacer.remaining() is None


def test_monthly_estimate() -> None:
    """A 5-minute interval is 8,640 searches a month when busy and 1,440 when quiet (30-minute cap); a budget caps posts."""
    assert estimate_month(300) == {"searches_busy": 8640, "searches_quiet": 1440, "posts_at_most": None}
    assert estimate_month(300, queries=2, daily_reads=1000)["searches_busy"] == 17280
    assert estimate_month(300, daily_reads=1000)["posts_at_most"] == 30000
    assert estimate_month(3600)["searches_quiet"] == 720  # a cap below the interval changes nothing


def test_plan_prints_the_x_reads_a_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bot plan` ends with the estimated X searches a month of each tracked tag set, and the posts a budget allows."""
    import dataclasses
    import shutil

    from bot import cli
    from bot.campaign import load
    from bot.cli import plan
    from bot.core.model import Track
    from tests.cases.casefiles import BASE

    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    assert cli.main(["--campaign", str(root), "plan", "--from", "2022-01-12", "--days", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == [
        "X reads a month (estimated from the tracking settings):",
        "  #FreeAndreiandIrina via x-index: every 5 min, 1 query a poll: 8,640 searches if every poll finds posts, "
        "1,440 when quiet (back-off up to 30 min); up to 100 posts billed a search (no daily_reads budget)",
    ]
    campaign = load(root)
    assert campaign.reshare is not None
    first = campaign.reshare.track[0]
    budgeted = Track(
        hashtags=first.hashtags, accounts=first.accounts, interval=600.0, daily_reads=1000, max_interval=3600.0
    )
    changed = dataclasses.replace(campaign, reshare=dataclasses.replace(campaign.reshare, track=[budgeted]))
    (line,) = plan.x_reads(changed)[1:]
    assert (
        "every 10 min, 1 query a poll: 4,320 searches if every poll finds posts, 720 when quiet (back-off up to 1 h)"
        in line
    )
    assert line.endswith("at most 30,000 posts billed (daily_reads 1,000)")


def _signed(acct: Any) -> Any:
    """OAuth 1.0a for ``acct``'s keys: requests the adapter never sends (an author editing a post) but the fake answers."""
    from requests_oauthlib import OAuth1

    values = {role: acct.env[var] for role, var in acct.entry["credentials"].items()}
    return OAuth1(
        values["consumer_key"], values["consumer_secret"], values["access_token"], values["access_token_secret"]
    )


def test_search_reads_alt_text_card_titles_quotes_and_edits_as_the_spec_names_them(recorded: XSandbox) -> None:
    """Search asks media.fields=alt_text, attachments.media_keys, referenced_posts and entities; the mentions carry them."""
    import requests

    sandbox = recorded
    me, supporter = sandbox.create_account(fresh()), sandbox.create_account(fresh("sup"))
    platform = adapter_for(me)
    tag = f"Extra{uuid.uuid4().hex[:6]}"
    try:
        pictured = sandbox.post_as(supporter, f"A picture #{tag}", alt_text="the traitor in court")
        carded = sandbox.post_as(supporter, f"Read this #{tag}", card_title="Meet the traitors")
        quoted = sandbox.post_as(supporter, "Traitors & liars, all of them")
        quoting = sandbox.post_as(supporter, f"Look #{tag}", quote_of=quoted)
        first = platform.fetch_mentions([tag], None)
        # The author edits through the API, as X's apps do: POST /2/tweets with edit_options.
        answer = requests.post(
            f"{sandbox.base_url}/2/tweets",
            json={"text": f"Edited: long live the traitors #{tag}", "edit_options": {"previous_post_id": carded}},
            auth=_signed(supporter),
            timeout=10,
        )
        assert answer.status_code == 201
        edited = answer.json()["data"]
        second = platform.fetch_mentions([tag], first.cursor)
    finally:
        platform.close()
    got = {m.remote_id: m for m in first.mentions}
    assert got[pictured].alt_texts == ("the traitor in court",)
    assert got[carded].card_title == "Meet the traitors"
    assert got[quoting].quoted_text == "Traitors & liars, all of them"
    assert got[quoting].ref == {"quoted_id": quoted}
    assert edited["edit_history_post_ids"] == [carded, edited["id"]]
    (new,) = second.mentions
    assert (new.remote_id, new.ref, new.card_title) == (edited["id"], {"earlier_versions": carded}, "")
    search = next(r for r in sandbox.requests() if r["path"] == "/2/tweets/search/recent")
    asked = {name: set(search["query"][name].split(",")) for name in ("post.fields", "expansions", "media.fields")}
    assert {"entities", "attachments"} <= asked["post.fields"] and asked["media.fields"] == {"alt_text"}
    assert {"attachments.media_keys", "referenced_posts"} <= asked["expansions"]
    checked, problems = _validate_all(sandbox)
    assert problems == []
    assert checked["POST /2/tweets 201"] == 1 and checked["GET /2/tweets/search/recent 200"] == 2
    answers = [r["wire"]["response_body"] for r in sandbox.requests() if r["path"] == "/2/tweets/search/recent"]
    assert answers[0]["includes"]["media"][0]["alt_text"] == "the traitor in court"
    assert [p["id"] for p in answers[0]["includes"]["posts"]] == [quoted]


def test_the_fake_keeps_x_edit_rules(timed: XSandbox, now: list[float]) -> None:
    """Edits make new ids sharing one history; only the author edits, at most 5 times, within 30 minutes; reads show the latest."""
    sandbox = timed
    author, other = sandbox.create_account(fresh("sup")), sandbox.create_account(fresh("sup"))
    first = sandbox.post_as(author, "Version 0")
    for n in range(1, 6):
        now[0] += 60
        sandbox.edit_as(author, sandbox.latest_id(first), f"Version {n}")
    versions = sandbox.state.tweets[first].versions()
    assert len(versions) == 6 and versions[0] == first and versions == sorted(versions, key=int)
    assert [p.text for p in sandbox.posts(author)] == ["Version 5"]
    problems = []
    for who, target, label in ((author, sandbox.latest_id(first), "sixth"), (author, first, "old version")):
        try:
            sandbox.edit_as(who, target, "Version 6")
        except Exception as exc:  # noqa: BLE001  (the fake's ApiError: X's 400 invalid-request)
            problems.append((label, getattr(exc, "status", None)))
    late = sandbox.post_as(author, "Late")
    now[0] += 30 * 60
    for who, target, label in ((other, late, "not the author"), (author, late, "after 30 minutes")):
        try:
            sandbox.edit_as(who, target, "Changed")
        except Exception as exc:  # noqa: BLE001
            problems.append((label, getattr(exc, "status", None)))
    assert problems == [("sixth", 400), ("old version", 400), ("not the author", 403), ("after 30 minutes", 400)]
    sandbox.delete_as(author, first)  # deleting one version deletes the chain
    assert not set(versions) & set(sandbox.state.tweets)
