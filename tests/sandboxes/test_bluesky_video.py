"""The fake Bluesky video service on its own, driven with requests and real PDS service tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandboxes.base import SandboxAccount
from sandboxes.bluesky.sandbox import BlueskySandbox
from sandboxes.bluesky.video import VideoService
from sandboxes.media import make_video
from tests.platforms.support import restored

pytestmark = pytest.mark.slow
UPLOAD_LXM = "com.atproto.repo.uploadBlob"


@pytest.fixture
def sandbox(bluesky_sandbox: BlueskySandbox) -> Iterator[BlueskySandbox]:
    yield from restored(bluesky_sandbox)


@pytest.fixture
def service(sandbox: BlueskySandbox) -> VideoService:
    assert sandbox.video is not None
    return sandbox.video


@pytest.fixture
def account(sandbox: BlueskySandbox) -> SandboxAccount:
    return sandbox.create_account(f"svc-{uuid.uuid4().hex[:8]}")


def access(sandbox: BlueskySandbox, account: SandboxAccount) -> str:
    return sandbox.xrpc(
        "POST",
        "com.atproto.server.createSession",
        body={"identifier": account.handle, "password": next(iter(account.env.values()))},
    )["accessJwt"]


def token(sandbox: BlueskySandbox, account: SandboxAccount, aud: str, lxm: str) -> str:
    return sandbox.xrpc(
        "GET",
        "com.atproto.server.getServiceAuth",
        jwt=access(sandbox, account),
        params={"aud": aud, "lxm": lxm, "exp": int(time.time()) + 600},
    )["token"]


def upload(service: VideoService, did: str, jwt: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{service.url}/xrpc/app.bsky.video.uploadVideo",
        params={"did": did, "name": "v.mp4"},
        data=body,
        headers={"Authorization": f"Bearer {jwt}", "Content-Type": "video/mp4"},
        timeout=30,
    )


def test_a_job_moves_through_encoding_to_a_blob_on_the_pds(
    sandbox: BlueskySandbox, service: VideoService, account: SandboxAccount, tmp_path: Path
) -> None:
    """CREATED, then ENCODING with rising progress for the configured polls, then COMPLETED with a blob the PDS serves."""
    service.set_processing_polls(2)
    did = sandbox.did_of(account)
    body = make_video(tmp_path / "v.mp4", 1.0, size=(160, 90), seed=7).read_bytes()
    created = upload(service, did, token(sandbox, account, service.pds_did, UPLOAD_LXM), body)
    assert created.status_code == 200
    assert int(created.headers["ratelimit-remaining"]) == 24  # 25 videos a day, one spent
    job = created.json()
    assert (job["state"], job["did"]) == ("JOB_STATE_CREATED", did)
    seen = []
    for _ in range(3):
        status = requests.get(
            f"{service.url}/xrpc/app.bsky.video.getJobStatus", params={"jobId": job["jobId"]}, timeout=10
        ).json()["jobStatus"]
        seen.append((status["state"], status.get("progress")))
    assert seen == [("JOB_STATE_ENCODING", 33), ("JOB_STATE_ENCODING", 67), ("JOB_STATE_COMPLETED", None)]
    blob = status["blob"]
    assert (blob["mimeType"], blob["size"]) == ("video/mp4", len(body))
    # The PDS keeps an unreferenced blob only for a while and serves it once a record holds it.
    sandbox.xrpc(
        "POST",
        "com.atproto.repo.createRecord",
        jwt=access(sandbox, account),
        body={
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "v",
                "createdAt": "2022-01-12T08:00:00.000Z",
                "embed": {"$type": "app.bsky.embed.video", "video": blob},
            },
        },
    )
    stored = requests.get(
        f"{sandbox.pds_url}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": blob["ref"]["$link"]}, timeout=10
    )
    assert stored.status_code == 200 and stored.content == body


def test_upload_limits_need_a_token_for_the_service_itself(
    sandbox: BlueskySandbox, service: VideoService, account: SandboxAccount
) -> None:
    """getUploadLimits answers the daily budget to a token for the service's DID, and 401 to a PDS-audience token."""
    url = f"{service.url}/xrpc/app.bsky.video.getUploadLimits"
    own = token(sandbox, account, service.did, "app.bsky.video.getUploadLimits")
    limits = requests.get(url, headers={"Authorization": f"Bearer {own}"}, timeout=10).json()
    assert limits["canUpload"] is True and limits["remainingDailyVideos"] == 25
    wrong = token(sandbox, account, service.pds_did, "app.bsky.video.getUploadLimits")
    assert requests.get(url, headers={"Authorization": f"Bearer {wrong}"}, timeout=10).status_code == 401


def test_too_large_a_body_is_413(sandbox: BlueskySandbox, service: VideoService, account: SandboxAccount) -> None:
    """A body over the service's byte limit is refused with 413 and makes no job."""
    jwt = token(sandbox, account, service.pds_did, UPLOAD_LXM)
    before = service.max_bytes
    service.max_bytes = 1000
    try:
        answer = upload(service, sandbox.did_of(account), jwt, b"\0" * 1001)
    finally:
        service.max_bytes = before
    assert answer.status_code == 413 and answer.json()["error"] == "PayloadTooLarge"


def test_injected_429_carries_ratelimit_headers(
    sandbox: BlueskySandbox, service: VideoService, account: SandboxAccount
) -> None:
    """A rate_limited fault answers 429 with ratelimit-remaining 0 and a reset about retry_after ahead, and is logged as such."""
    sandbox.fail_next("rate_limited", retry_after=90, path="app.bsky.video.uploadVideo")
    answer = upload(service, sandbox.did_of(account), "not-even-checked", b"")
    assert answer.status_code == 429 and answer.headers["ratelimit-remaining"] == "0"
    assert 85 <= int(answer.headers["ratelimit-reset"]) - time.time() <= 91
    assert service.requests()[-1]["fault"] == "rate_limited"
    assert not any("app.bsky.video" in r["path"] for r in sandbox.requests())  # the PDS's proxy saw none of it
