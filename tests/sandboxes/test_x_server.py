"""The fake X API v2 server speaks X's shapes: driven with plain requests and OAuth 1.0a signing."""

from __future__ import annotations

import itertools
import re
import time
import uuid

import pytest
import requests
from requests_oauthlib import OAuth1

from sandboxes.base import SandboxAccount
from sandboxes.x.sandbox import XSandbox

pytestmark = pytest.mark.slow
_names = itertools.count()
MB = 1024 * 1024


def signer(acct: SandboxAccount, **override: str) -> OAuth1:
    values = {role: acct.env[var] for role, var in acct.entry["credentials"].items()}
    values.update(override)
    return OAuth1(
        values["consumer_key"], values["consumer_secret"], values["access_token"], values["access_token_secret"]
    )


@pytest.fixture
def acct(x_sandbox: XSandbox) -> SandboxAccount:
    return x_sandbox.create_account(f"srv{next(_names)}{uuid.uuid4().hex[:4]}")


def call(sandbox: XSandbox, acct: SandboxAccount, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 10)
    return requests.request(method, sandbox.base_url + path, auth=signer(acct), **kwargs)


def test_account_entry_is_a_valid_accounts_yaml_entry(acct: SandboxAccount) -> None:
    """create_account gives an accounts.yaml entry naming env variables, and env holds their values."""
    assert acct.entry["platform"] == "x" and acct.entry["base_url"].startswith("http://127.0.0.1:")
    creds = acct.entry["credentials"]
    assert set(creds) == {"consumer_key", "consumer_secret", "access_token", "access_token_secret"}
    assert set(acct.env) == set(creds.values())
    assert all(name.isupper() and value not in name for name, value in zip(creds.values(), acct.env.values()))


def test_signature_is_verified(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """A correct OAuth 1.0a signature is accepted; a wrong secret, no header or a replayed nonce get X's 401."""
    ok = call(x_sandbox, acct, "GET", "/2/users/me")
    assert ok.status_code == 200 and ok.json()["data"]["username"] == acct.handle
    wrong = requests.get(x_sandbox.base_url + "/2/users/me", auth=signer(acct, access_token_secret="nope"), timeout=10)
    bare = requests.get(x_sandbox.base_url + "/2/users/me", timeout=10)
    for answer in (wrong, bare):
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json() == {
            "title": "Unauthorized",
            "type": "about:blank",
            "status": 401,
            "detail": "Unauthorized",
        }
    prepared = requests.Request("GET", x_sandbox.base_url + "/2/users/me", auth=signer(acct)).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=10).status_code == 200
        assert session.send(prepared, timeout=10).status_code == 401


def test_signed_query_and_form_parameters_count(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """Query and form-encoded body parameters are part of the signature, as OAuth 1.0a requires."""
    search = call(
        x_sandbox, acct, "GET", "/2/tweets/search/recent", params={"query": "#nothingyet", "max_results": "10"}
    )
    assert search.status_code == 200 and search.json() == {"meta": {"result_count": 0}}
    init = call(
        x_sandbox,
        acct,
        "POST",
        "/2/media/upload",
        data={"command": "INIT", "media_type": "video/mp4", "total_bytes": "12", "media_category": "tweet_video"},
    )
    assert init.status_code == 200 and init.json()["data"]["media_key"].startswith("7_")


def test_create_tweet_shapes(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """201 with data id/text (links wrapped, &<> escaped); a repeat is X's 403 duplicate; too long is a 400."""
    text = f"Free them & now https://example.org/a or article19.org {uuid.uuid4().hex[:6]}"
    made = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": text})
    assert made.status_code == 201
    data = made.json()["data"]
    assert re.fullmatch(r"Free them &amp; now https://t\.co/\w{10} or https://t\.co/\w{10} \w{6}", data["text"])
    assert data["edit_history_post_ids"] == [data["id"]]
    assert made.headers["x-rate-limit-remaining"].isdigit() and made.headers["x-user-limit-24hour-remaining"].isdigit()
    again = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": text})
    assert again.status_code == 403
    assert again.json() == {
        "detail": "You are not allowed to create a Post with duplicate content.",
        "type": "https://api.x.com/2/problems/disallowed-resource",
        "title": "Forbidden",
        "status": 403,
    }
    long = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": "x" * 281})
    assert long.status_code == 400 and "too long" in long.json()["detail"]
    gone = call(x_sandbox, acct, "DELETE", f"/2/tweets/{data['id']}")
    assert gone.json() == {"data": {"deleted": True}} and x_sandbox.posts(acct) == []


def test_duplicate_rule_is_per_account_and_ends_with_the_post(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """The same text from another account is not a duplicate, and once deleted a text may be posted again."""
    other = x_sandbox.create_account(f"srv{next(_names)}{uuid.uuid4().hex[:4]}")
    text = f"One year in prison for Andrei and Irina {uuid.uuid4().hex[:6]}"
    first = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": text})
    assert first.status_code == 201
    assert call(x_sandbox, other, "POST", "/2/tweets", json={"text": text}).status_code == 201
    assert call(x_sandbox, acct, "POST", "/2/tweets", json={"text": f"  {text} "}).status_code == 403
    assert call(x_sandbox, acct, "DELETE", f"/2/tweets/{first.json()['data']['id']}").status_code == 200
    assert call(x_sandbox, acct, "POST", "/2/tweets", json={"text": text}).status_code == 201


def test_rate_limit_window_and_429(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """Every answer carries x-rate-limit-*; past the limit X answers 429 with the reset time."""
    x_sandbox.set_limit("GET /2/users/me", 2, window=600, account=acct)
    first, second, third = (call(x_sandbox, acct, "GET", "/2/users/me") for _ in range(3))
    assert [a.status_code for a in (first, second, third)] == [200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in (first, second, third)] == ["1", "0", "0"]
    reset = int(third.headers["x-rate-limit-reset"])
    assert time.time() + 590 < reset <= time.time() + 601
    assert third.json()["title"] == "Too Many Requests"


def test_search_query_language(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """OR, -is:retweet, -is:reply, whole-tag matching, since_id and author expansion behave as on X."""
    tag, other = f"Q{uuid.uuid4().hex[:6]}", f"R{uuid.uuid4().hex[:6]}"
    root = x_sandbox.post_as(acct, f"root #{tag}")
    reply = x_sandbox.post_as(acct, f"reply #{other}", reply_to=root)
    x_sandbox.post_as(acct, "", reshare_of=root)
    x_sandbox.post_as(acct, f"longer tag #{tag}extra")

    def ids(query: str, **params: str) -> list[str]:
        answer = call(x_sandbox, acct, "GET", "/2/tweets/search/recent", params={"query": query, **params}).json()
        return [t["id"] for t in answer.get("data", [])]

    assert ids(f"#{tag} OR #{other}") == sorted([root, reply, ids(f"#{tag}")[0]], key=int, reverse=True)
    assert ids(f"(#{tag} OR #{other}) -is:retweet") == [reply, root]
    assert ids(f"(#{tag} OR #{other}) -is:retweet -is:reply") == [root]
    assert ids(f"(#{tag} OR #{other}) -is:retweet", since_id=root) == [reply]
    full = call(
        x_sandbox,
        acct,
        "GET",
        "/2/tweets/search/recent",
        params={
            "query": f"#{other}",
            "user.fields": "username,name",
            "post.fields": "possibly_sensitive,created_at",
            "expansions": "author_id,referenced_posts",
        },
    ).json()
    assert full["data"][0]["referenced_posts"] == [{"type": "replied_to", "id": root}]
    assert full["data"][0]["author_id"] == full["includes"]["users"][0]["id"]
    assert [p["id"] for p in full["includes"]["posts"]] == [root]
    assert full["includes"]["users"][0]["username"] == acct.handle
    assert full["meta"] == {"newest_id": reply, "oldest_id": reply, "result_count": 1}
    bad = call(x_sandbox, acct, "GET", "/2/tweets/search/recent", params={"query": f"#{tag}", "max_results": "500"})
    assert bad.status_code == 400 and bad.json()["title"] == "Invalid Request"


def test_chunked_upload_rules(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """Chunks over 5 MB are refused, sizes must add up, and a video cannot be posted before processing succeeds."""
    blob = b"\x00\x00\x00\x18ftypmp42" + bytes(6 * MB)
    init = call(
        x_sandbox,
        acct,
        "POST",
        "/2/media/upload/initialize",
        json={"media_type": "video/mp4", "total_bytes": len(blob), "media_category": "tweet_video"},
    ).json()["data"]
    media_id = init["id"]
    too_big = call(
        x_sandbox,
        acct,
        "POST",
        f"/2/media/upload/{media_id}/append",
        files={"media": ("v", blob, "application/octet-stream")},
        data={"segment_index": "0"},
    )
    assert too_big.status_code == 413
    call(
        x_sandbox,
        acct,
        "POST",
        f"/2/media/upload/{media_id}/append",
        files={"media": ("v", blob[: 3 * MB], "application/octet-stream")},
        data={"segment_index": "0"},
    )
    short = call(x_sandbox, acct, "POST", f"/2/media/upload/{media_id}/finalize")
    assert short.status_code == 400
    call(
        x_sandbox,
        acct,
        "POST",
        f"/2/media/upload/{media_id}/append",
        files={"media": ("v", blob[3 * MB :], "application/octet-stream")},
        data={"segment_index": "1"},
    )
    done = call(x_sandbox, acct, "POST", f"/2/media/upload/{media_id}/finalize").json()["data"]
    assert done["processing_info"]["state"] == "pending" and done["size"] == len(blob)
    early = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": "too soon", "media": {"media_ids": [media_id]}})
    assert early.status_code == 400
    states = [
        call(x_sandbox, acct, "GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id}).json()[
            "data"
        ]["processing_info"]["state"]
        for _ in range(2)
    ]
    assert states == ["in_progress", "succeeded"]
    posted = call(x_sandbox, acct, "POST", "/2/tweets", json={"text": "now", "media": {"media_ids": [media_id]}})
    assert posted.status_code == 201


def test_timeout_fault_still_creates_the_post(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """A timeout fault holds the answer back past the client's patience, but the post exists."""
    x_sandbox.fail_next("timeout", retry_after=0.6, path="/2/tweets")
    with pytest.raises(requests.exceptions.ReadTimeout):
        call(x_sandbox, acct, "POST", "/2/tweets", json={"text": "slow but real"}, timeout=0.2)
    assert [p.text for p in x_sandbox.posts(acct)] == ["slow but real"]


def test_faults_hit_only_matching_paths(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """fail_next with a path leaves other requests alone and is used up after count requests."""
    x_sandbox.fail_next("unavailable", count=2, path="/2/tweets")
    assert call(x_sandbox, acct, "GET", "/2/users/me").status_code == 200
    assert [call(x_sandbox, acct, "POST", "/2/tweets", json={"text": f"t{n}"}).status_code for n in range(3)] == [
        503,
        503,
        201,
    ]


def test_restore_defaults_drops_faults_and_limits(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """restore_defaults forgets pending faults, tightened limits and spent windows, as a fresh server has none."""
    x_sandbox.set_limit("GET /2/users/me", 1)
    assert call(x_sandbox, acct, "GET", "/2/users/me").status_code == 200
    assert call(x_sandbox, acct, "GET", "/2/users/me").status_code == 429
    x_sandbox.fail_next("unavailable", count=5)
    x_sandbox.restore_defaults()
    answer = call(x_sandbox, acct, "GET", "/2/users/me")
    assert answer.status_code == 200 and answer.headers["x-rate-limit-limit"] == "75"


def test_older_field_names_are_still_answered(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """tweet.fields with referenced_tweets is answered in the older names, as X still does."""
    tag = f"O{uuid.uuid4().hex[:6]}"
    root = x_sandbox.post_as(acct, f"root #{tag}")
    reply = x_sandbox.post_as(acct, f"reply #{tag}", reply_to=root)
    old = call(
        x_sandbox,
        acct,
        "GET",
        "/2/tweets/search/recent",
        params={"query": f"#{tag}", "tweet.fields": "referenced_tweets,author_id"},
    ).json()
    newest = old["data"][0]
    assert newest["id"] == reply and newest["referenced_tweets"] == [{"type": "replied_to", "id": root}]
    assert newest["edit_history_tweet_ids"] == [reply] and "referenced_posts" not in newest
    both = call(
        x_sandbox,
        acct,
        "GET",
        "/2/tweets/search/recent",
        params={"query": f"#{tag}", "tweet.fields": "lang", "post.fields": "lang"},
    )
    assert both.status_code == 400 and both.json()["type"] == "https://api.x.com/2/problems/invalid-request"


def test_single_request_upload_takes_no_media_type(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """The one-shot upload reads the type from the bytes and refuses a media_type field, as the spec's schema does."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    ok = call(
        x_sandbox,
        acct,
        "POST",
        "/2/media/upload",
        files={"media": ("a.png", png)},
        data={"media_category": "tweet_image"},
    )
    assert ok.status_code == 200 and x_sandbox.media()[-1]["media_type"] == "image/png"
    refused = call(
        x_sandbox,
        acct,
        "POST",
        "/2/media/upload",
        files={"media": ("a.png", png)},
        data={"media_category": "tweet_image", "media_type": "image/png"},
    )
    assert refused.status_code == 400 and refused.json()["parameter"] == "media_type"


def test_retweet_answer_names_the_reposted_post(x_sandbox: XSandbox, acct: SandboxAccount) -> None:
    """A repost answers retweeted and rest_id, the id of the reposted post, as the spec requires."""
    other = x_sandbox.create_account(f"srv{next(_names)}{uuid.uuid4().hex[:4]}")
    original = x_sandbox.post_as(other, "Please share")
    me = call(x_sandbox, acct, "GET", "/2/users/me").json()["data"]["id"]
    answer = call(x_sandbox, acct, "POST", f"/2/users/{me}/retweets", json={"tweet_id": original})
    assert answer.json() == {"data": {"retweeted": True, "rest_id": original}}


def _posts(sandbox: XSandbox, acct: SandboxAccount, count: int, prefix: str) -> list[requests.Response]:
    return [call(sandbox, acct, "POST", "/2/tweets", json={"text": f"{prefix} {n}"}) for n in range(count)]


def test_posting_limit_is_100_per_15_minutes_per_user() -> None:
    """The 101st post of a user within 15 minutes is X's 429 with x-rate-limit-* and the 24-hour headers."""
    now = [1_800_000_000.0]
    with XSandbox(wall=lambda: now[0]) as sandbox:
        acct, other = sandbox.create_account("limited"), sandbox.create_account("neighbour")
        answers = _posts(sandbox, acct, 101, "Free them")
        assert [a.status_code for a in answers] == [201] * 100 + [429]
        last, refused = answers[99], answers[100]
        assert (last.headers["x-rate-limit-limit"], last.headers["x-rate-limit-remaining"]) == ("100", "0")
        assert refused.headers["x-rate-limit-remaining"] == "0"
        assert int(refused.headers["x-rate-limit-reset"]) == int(now[0]) + 900
        assert refused.headers["x-user-limit-24hour-limit"] == "2400"
        assert refused.headers["x-app-limit-24hour-limit"] == "10000"
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json() == {
            "type": "about:blank",
            "title": "Too Many Requests",
            "detail": "Too Many Requests",
            "status": 429,
        }
        assert call(sandbox, other, "POST", "/2/tweets", json={"text": "another user"}).status_code == 201
        now[0] += 901
        assert call(sandbox, acct, "POST", "/2/tweets", json={"text": "a new window"}).status_code == 201


def test_posts_and_reposts_share_300_per_3_hours() -> None:
    """Posts and retweets of a user count together: the 301st in 3 hours is a 429 until the 3-hour window reopens."""
    now = [1_800_000_000.0]
    with XSandbox(wall=lambda: now[0]) as sandbox:
        acct, author = sandbox.create_account("busy"), sandbox.create_account("author")
        me = sandbox.state.user_by_name("busy").id
        started = int(now[0])
        for window in range(3):
            answers = _posts(sandbox, acct, 100 if window < 2 else 99, f"Window {window}")
            assert {a.status_code for a in answers} == {201}
            now[0] += 901
        original = sandbox.post_as(author, "Please share")
        shared = call(sandbox, acct, "POST", f"/2/users/{me}/retweets", json={"tweet_id": original})
        assert shared.status_code == 200  # the 300th
        refused = call(sandbox, acct, "POST", "/2/tweets", json={"text": "one more"})
        assert refused.status_code == 429
        assert refused.headers["x-rate-limit-limit"] == "300"
        assert int(refused.headers["x-rate-limit-reset"]) == started + 3 * 3600
        again = call(
            sandbox, acct, "POST", f"/2/users/{me}/retweets", json={"tweet_id": sandbox.post_as(author, "More")}
        )
        assert again.status_code == 429
        now[0] = started + 3 * 3600
        assert call(sandbox, acct, "POST", "/2/tweets", json={"text": "after three hours"}).status_code == 201


def test_app_posting_cap_counts_every_account_of_the_app() -> None:
    """The app's 24-hour posting cap counts all its accounts together and is answered with x-app-limit-24hour-*."""
    with XSandbox() as sandbox:
        sandbox.set_app_limit("POST /2/tweets", 3)
        first, second = sandbox.create_account("appuser1"), sandbox.create_account("appuser2")
        answers = [*_posts(sandbox, first, 2, "one"), *_posts(sandbox, second, 2, "two")]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        assert answers[2].headers["x-app-limit-24hour-remaining"] == "0"
        refused = answers[3]
        assert refused.headers["x-app-limit-24hour-remaining"] == "0"
        assert refused.headers["x-rate-limit-reset"] == refused.headers["x-app-limit-24hour-reset"]


def test_published_app_cap_is_10000_posts_a_day() -> None:
    """At X's published figures 100 users may post 100 times each; the app's 10,001st post that day is refused."""
    from sandboxes.x import errors as err
    from sandboxes.x.limits import RateLimits

    now = [1_800_000_000.0]
    limits = RateLimits(lambda: now[0])
    for user in range(100):
        for _ in range(100):
            headers = limits.charge(str(user), "POST /2/tweets", "app")
    assert headers["x-app-limit-24hour-remaining"] == "0" and headers["x-rate-limit-remaining"] == "0"
    with pytest.raises(err.ApiError) as raised:
        limits.charge("fresh", "POST /2/tweets", "app")
    assert raised.value.status == 429 and raised.value.headers["x-app-limit-24hour-limit"] == "10000"
    assert limits.charge("fresh", "POST /2/tweets", "another app")["x-rate-limit-remaining"] == "99"
    now[0] += 86400
    assert limits.charge("fresh", "POST /2/tweets", "app")["x-app-limit-24hour-remaining"] == "9999"


def test_published_media_and_search_limits() -> None:
    """One-shot media upload stops at 500, chunked routes at 1,875 and recent search at 300 per user per 15 minutes."""
    from sandboxes.x import errors as err
    from sandboxes.x.limits import RateLimits

    limits = RateLimits(lambda: 1_800_000_000.0)
    for endpoint, allowed in (
        ("POST /2/media/upload", 500),
        ("POST /2/media/upload/:id/append", 1875),
        ("GET /2/tweets/search/recent", 300),
    ):
        for _ in range(allowed):
            limits.charge("u", endpoint, "app")
        with pytest.raises(err.ApiError) as raised:
            limits.charge("u", endpoint, "app")
        assert raised.value.headers["x-rate-limit-limit"] == str(allowed)


def test_limits_can_be_lifted_for_an_account_or_turned_off() -> None:
    """lift_limits exempts one account; rate_limits=False (benchmarks) sends no rate-limit headers and never 429."""
    with XSandbox() as sandbox:
        crowd, person = sandbox.create_account("crowd"), sandbox.create_account("person")
        sandbox.lift_limits(crowd)
        sandbox.set_limit("POST /2/tweets", 1)
        assert {a.status_code for a in _posts(sandbox, crowd, 3, "many")} == {201}
        assert [a.status_code for a in _posts(sandbox, person, 2, "few")] == [201, 429]
    with XSandbox(rate_limits=False) as sandbox:
        acct = sandbox.create_account("bench")
        sandbox.set_limit("POST /2/tweets", 1)
        answers = _posts(sandbox, acct, 3, "bench")
        assert {a.status_code for a in answers} == {201} and "x-rate-limit-limit" not in answers[0].headers
