"""Bluesky videos through the video service (our fake of video.bsky.app beside the reference PDS), over loopback."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from bot.core.errors import AuthFailed, ContentRejected, PermanentError, PlatformUnavailable, RateLimited
from bot.core.values import Outgoing, VideoAttachment
from bot.platforms.bluesky import Bluesky
from bot.platforms.bluesky.video import OFFICIAL, service_for
from sandboxes.base import SandboxAccount
from sandboxes.bluesky.sandbox import BlueskySandbox
from sandboxes.media import make_captions, make_video
from tests.platforms.support import Sleeps, adapter_for, opened, restored

pytestmark = pytest.mark.slow
_seeds = itertools.count(1000)
UPLOAD, STATUS, LIMITS = "app.bsky.video.uploadVideo", "app.bsky.video.getJobStatus", "app.bsky.video.getUploadLimits"


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def video_file(tmp_path: Path, **kwargs: Any) -> Path:
    """A small MP4 with bytes of its own (the service recognises a video it has seen before)."""
    kwargs.setdefault("size", (320, 180))
    return make_video(tmp_path / f"v{uuid.uuid4().hex[:6]}.mp4", 1.0, seed=next(_seeds), **kwargs)


def calls(log: list[dict[str, Any]], nsid: str) -> list[int]:
    return [r["status"] for r in log if r["path"].endswith(nsid)]


def record_of(sandbox: BlueskySandbox, uri: str) -> dict[str, Any]:
    repo, collection, rkey = uri.removeprefix("at://").split("/")
    return sandbox.xrpc(
        "GET", "com.atproto.repo.getRecord", params={"repo": repo, "collection": collection, "rkey": rkey}
    )["value"]


@pytest.fixture
def sandbox(bluesky_sandbox: BlueskySandbox) -> Iterator[BlueskySandbox]:
    yield from restored(bluesky_sandbox)


@pytest.fixture
def account(sandbox: BlueskySandbox) -> SandboxAccount:
    return sandbox.create_account(f"vid-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(account: SandboxAccount, sleeps: Sleeps) -> Iterator[Bluesky]:
    yield from opened(account, sleep=sleeps, poll_interval=0.5)


def test_twenty_megabyte_video_goes_through_the_video_service(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, sleeps: Sleeps, tmp_path: Path
) -> None:
    """A 20 MB video is sent once to uploadVideo, polled to COMPLETED, stored on the PDS by the service, and embedded with alt and captions."""
    assert sandbox.video is not None
    sandbox.video.set_processing_polls(3)
    video = video_file(tmp_path, size=(640, 360), target_bytes=20 * 1024 * 1024)
    captions = make_captions(tmp_path / "v.vtt", ["Free Andrei", "Free Irina"], 1.0)
    size = video.stat().st_size
    pds_start, video_start = len(sandbox.requests()), len(sandbox.video_requests())
    progress: list[tuple[int, int]] = []
    out = Outgoing(
        key=key(), text="A supporter speaks", video=VideoAttachment(video, "A supporter speaks", captions, "be")
    )
    receipt = adapter.publish(out, progress=lambda sent, total: progress.append((sent, total)))

    log = sandbox.video_requests()[video_start:]
    assert [r["path"].rsplit("/", 1)[1] for r in log] == [LIMITS, UPLOAD, STATUS, STATUS, STATUS, STATUS]
    assert all(r["status"] == 200 for r in log)
    [upload] = [r for r in log if r["path"].endswith(UPLOAD)]
    assert upload["bytes"] == size and f"did={sandbox.did_of(account).replace(':', '%3A')}" in upload["query"]
    assert sleeps == [0.5, 1.0, 2.0, 4.0]  # backing off between polls, never waiting for real
    pds = sandbox.requests()[pds_start:]
    assert calls(pds, "getServiceAuth") == [200, 200]  # one token for the limits, one for the upload
    assert calls(pds, "uploadBlob") == [200, 200]  # the service's video upload, then our captions
    embed = record_of(sandbox, receipt.remote_id)["embed"]
    assert embed["$type"] == "app.bsky.embed.video" and embed["alt"] == "A supporter speaks"
    assert (embed["video"]["mimeType"], embed["video"]["size"]) == ("video/mp4", size)
    assert [(c["lang"], c["file"]["mimeType"]) for c in embed["captions"]] == [("be", "text/vtt")]
    assert (embed["aspectRatio"]["width"], embed["aspectRatio"]["height"]) == (640, 360)
    assert progress[-1] == (size + captions.stat().st_size,) * 2
    assert len(progress) > 10  # the video's bytes reported as they go, not only at the end


def test_the_appview_shows_the_video_post(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """The AppView indexes the post with a video embed view for the blob the service stored."""
    video = video_file(tmp_path)
    receipt = adapter.publish(Outgoing(key=key(), text="Watch", video=VideoAttachment(video, "Supporter video")))
    sandbox.index()
    got = requests.get(
        f"{sandbox.info['appview']}/xrpc/app.bsky.feed.getPosts", params={"uris": receipt.remote_id}, timeout=10
    ).json()
    [post] = got["posts"]
    assert post["embed"]["$type"] == "app.bsky.embed.video#view"
    assert post["embed"]["alt"] == "Supporter video"
    assert post["embed"]["cid"] == record_of(sandbox, receipt.remote_id)["embed"]["video"]["ref"]["$link"]


def test_a_video_seen_before_reuses_its_job(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """The same bytes from a restarted worker are answered 409 already_exists with the earlier job's blob, which the new post embeds."""
    video = video_file(tmp_path)
    restarted = adapter_for(account, sleep=Sleeps())  # nothing in memory from the first upload
    with capture_logs() as events:
        first = adapter.publish(Outgoing(key=key(), text="first", video=VideoAttachment(video, "alt")))
        start = len(sandbox.video_requests())
        second = restarted.publish(Outgoing(key=key(), text="second", video=VideoAttachment(video, "alt")))
    restarted.close()
    processed = [(e["event"], e.get("polls")) for e in events if e["event"].startswith("video_")]
    assert processed == [("video_processed", 2), ("video_upload_reused", None), ("video_processed", 0)]
    assert all(e["account"] == account.id for e in events if e["event"].startswith("video_"))
    log = sandbox.video_requests()[start:]
    assert calls(log, UPLOAD) == [409] and calls(log, STATUS) == []
    blobs = [record_of(sandbox, r.remote_id)["embed"]["video"]["ref"]["$link"] for r in (first, second)]
    assert blobs[0] == blobs[1]


def test_a_failed_job_is_content_rejected_and_not_retried(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """JOB_STATE_FAILED becomes ContentRejected with the service's message after one upload; no post is made."""
    sandbox.fail_next("rejected", path=UPLOAD)
    start = len(sandbox.video_requests())
    with pytest.raises(ContentRejected, match="Failed to process video") as raised:
        adapter.publish(Outgoing(key=key(), text="fails", video=VideoAttachment(video_file(tmp_path), "alt")))
    assert isinstance(raised.value, PermanentError)
    assert calls(sandbox.video_requests()[start:], UPLOAD) == [200]
    assert sandbox.posts(account) == []


def test_a_file_that_is_not_mp4_fails_validation(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """A Matroska file named .mp4 is taken by uploadVideo but its job fails validation: ContentRejected."""
    fake = make_video(tmp_path / "really.mp4", 1.0, size=(160, 90), seed=next(_seeds), container_format="matroska")
    with pytest.raises(ContentRejected, match="validation_failure"):
        adapter.publish(Outgoing(key=key(), text="mkv", video=VideoAttachment(fake, "alt")))
    assert sandbox.posts(account) == []


def test_a_429_from_the_service_is_rate_limited_and_gates_the_next_video(
    sandbox: BlueskySandbox, adapter: Bluesky, tmp_path: Path
) -> None:
    """A 429 with ratelimit-reset raises RateLimited(retry_after); the next video is refused locally, without a request."""
    sandbox.fail_next("rate_limited", retry_after=120, path=UPLOAD)
    with pytest.raises(RateLimited) as raised:
        adapter.publish(Outgoing(key=key(), text="limited", video=VideoAttachment(video_file(tmp_path), "alt")))
    assert raised.value.retry_after is not None and 115 < raised.value.retry_after <= 120
    sent = len(sandbox.video_requests())
    with pytest.raises(RateLimited):
        adapter.publish(Outgoing(key=key(), text="still limited", video=VideoAttachment(video_file(tmp_path), "alt")))
    assert len(sandbox.video_requests()) == sent


def test_unavailable_then_the_retry_publishes_once(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """A 503 on a status poll is PlatformUnavailable; the retry with the same key reuses the job and makes one post."""
    sandbox.fail_next("unavailable", path=STATUS)
    out = Outgoing(key=key(), text="retry me", video=VideoAttachment(video_file(tmp_path), "alt"))
    with pytest.raises(PlatformUnavailable):
        adapter.publish(out)
    start = len(sandbox.video_requests())
    receipt = adapter.publish(out)
    assert calls(sandbox.video_requests()[start:], UPLOAD) == [409]
    assert [p.remote_id for p in sandbox.posts(account)] == [receipt.remote_id]


def test_a_refused_token_is_auth_failed(sandbox: BlueskySandbox, adapter: Bluesky, tmp_path: Path) -> None:
    """A 401 from the video service becomes AuthFailed, which does not name the token."""
    sandbox.fail_next("auth", path=UPLOAD)
    with pytest.raises(AuthFailed) as raised:
        adapter.publish(Outgoing(key=key(), text="401", video=VideoAttachment(video_file(tmp_path), "alt")))
    assert "Bearer" not in str(raised.value)


def _service_token(sandbox: BlueskySandbox, account: SandboxAccount, aud: str, lxm: str) -> str:
    password = next(iter(account.env.values()))
    session = sandbox.xrpc(
        "POST", "com.atproto.server.createSession", body={"identifier": account.handle, "password": password}
    )
    return sandbox.xrpc(
        "GET", "com.atproto.server.getServiceAuth", jwt=session["accessJwt"], params={"aud": aud, "lxm": lxm}
    )["token"]


def test_the_service_refuses_bad_tokens(sandbox: BlueskySandbox, account: SandboxAccount, tmp_path: Path) -> None:
    """uploadVideo answers 401 without a token, for another method or audience, or a forged signature; 400 for another DID."""
    assert sandbox.video is not None
    service, pds_did = sandbox.video, sandbox.video.pds_did
    did, body = sandbox.did_of(account), video_file(tmp_path).read_bytes()
    other = sandbox.create_account(f"other-{uuid.uuid4().hex[:6]}")
    good = _service_token(sandbox, account, pds_did, "com.atproto.repo.uploadBlob")
    head, payload, signature = good.split(".")
    tokens = {
        "missing": None,
        "wrong method": _service_token(sandbox, account, pds_did, "com.atproto.repo.createRecord"),
        "wrong audience": _service_token(sandbox, account, service.did, "com.atproto.repo.uploadBlob"),
        "forged": f"{head}.{payload}.{signature[:-4]}AAAA",
        "another user's": _service_token(sandbox, other, pds_did, "com.atproto.repo.uploadBlob"),
    }
    answers = {}
    for name, token in tokens.items():
        headers = {"Content-Type": "video/mp4"} | ({"Authorization": f"Bearer {token}"} if token else {})
        answers[name] = requests.post(
            f"{service.url}/xrpc/{UPLOAD}", params={"did": did, "name": "v.mp4"}, data=body, headers=headers, timeout=10
        ).status_code
    assert answers == {"missing": 401, "wrong method": 401, "wrong audience": 401, "forged": 401, "another user's": 400}
    accepted = requests.post(
        f"{service.url}/xrpc/{UPLOAD}",
        params={"did": did, "name": "v.mp4"},
        data=body,
        headers={"Content-Type": "video/mp4", "Authorization": f"Bearer {good}"},
        timeout=10,
    )
    assert accepted.status_code == 200 and accepted.json()["state"] == "JOB_STATE_CREATED"


def test_video_service_none_uploads_the_blob_to_the_pds(
    sandbox: BlueskySandbox, account: SandboxAccount, tmp_path: Path
) -> None:
    """With ``video_service: none`` the video goes straight to the PDS with uploadBlob and the video service sees nothing."""
    adapter = adapter_for(account, options={"video_service": "none"})
    video = video_file(tmp_path)
    pds_start, video_start = len(sandbox.requests()), len(sandbox.video_requests())
    receipt = adapter.publish(Outgoing(key=key(), text="direct", video=VideoAttachment(video, "alt")))
    adapter.close()
    assert sandbox.video_requests()[video_start:] == []
    pds = sandbox.requests()[pds_start:]
    assert calls(pds, "uploadBlob") == [200] and calls(pds, "getServiceAuth") == []
    assert record_of(sandbox, receipt.remote_id)["embed"]["video"]["size"] == video.stat().st_size


@pytest.mark.parametrize(
    ("base_url", "option", "expected"),
    [
        ("https://bsky.social", None, OFFICIAL),
        ("https://morel.us-east.host.bsky.network", None, OFFICIAL),
        ("https://pds.example.org", None, None),
        ("https://bsky.social", "none", None),
        ("https://pds.example.org", "https://video.example.org/", "https://video.example.org"),
    ],
)
def test_which_video_service_an_account_uses(base_url: str, option: str | None, expected: str | None) -> None:
    """Accounts on Bluesky's PDSes default to the official service, others to direct uploads; the option overrides."""
    assert service_for(base_url, option) == expected


def test_a_video_service_that_is_not_a_url_is_a_config_error() -> None:
    """A typo in video_service is refused with its value, not sent as a request."""
    with pytest.raises(ValueError, match=r"'video.bsky.app' is not a URL \(expected an https URL, or none\)"):
        service_for("https://bsky.social", "video.bsky.app")


def test_bot_check_hook_names_a_bad_video_service() -> None:
    """Bluesky.option_problems reports a video_service that is not a URL under its key, and nothing for none or unset."""
    assert Bluesky.option_problems("https://bsky.social", {"video_service": "htp:/x"}) == {
        "video_service": "'htp:/x' is not a URL (expected an https URL, or none)"
    }
    assert Bluesky.option_problems(None, {}) == {}
    assert Bluesky.option_problems("https://pds.example.org", {"video_service": "none"}) == {}


def test_a_spent_daily_budget_is_refused_before_the_bytes_go(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """When getUploadLimits says canUpload false, publish raises ContentRejected with its message and sends no video."""
    assert sandbox.video is not None
    jobs, before = sandbox.video.jobs, sandbox.video.jobs.daily_videos
    jobs.daily_videos = 0
    start = len(sandbox.video_requests())
    try:
        with pytest.raises(ContentRejected, match="daily limit"):
            adapter.publish(Outgoing(key=key(), text="over", video=VideoAttachment(video_file(tmp_path), "alt")))
    finally:
        jobs.daily_videos = before
    assert calls(sandbox.video_requests()[start:], UPLOAD) == []
    assert calls(sandbox.video_requests()[start:], LIMITS) == [200]


def test_a_retry_after_the_record_failed_does_not_send_the_video_again(
    sandbox: BlueskySandbox, account: SandboxAccount, adapter: Bluesky, tmp_path: Path
) -> None:
    """When createRecord fails after the job completed, the retry embeds the same blob without touching the video service."""
    sandbox.fail_next("unavailable", path="createRecord")
    out = Outgoing(key=key(), text="record failed", video=VideoAttachment(video_file(tmp_path), "alt"))
    with pytest.raises(PlatformUnavailable):
        adapter.publish(out)
    start = len(sandbox.video_requests())
    receipt = adapter.publish(out)
    assert sandbox.video_requests()[start:] == []
    assert [p.remote_id for p in sandbox.posts(account)] == [receipt.remote_id]
