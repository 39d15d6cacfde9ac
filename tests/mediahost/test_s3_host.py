"""S3MediaHost against a real S3-compatible server on loopback, through boto3 and plain requests."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bot.core.model import MediaHostSettings
from bot.mediahost import MediaHostRefused, MediaHostUnavailable, S3MediaHost
from bot.observability import logs
from sandboxes.s3 import S3Sandbox


def _media_puts(s3: S3Sandbox, settings: MediaHostSettings) -> list[tuple[str, str, int]]:
    return s3.requests("PUT", f"/{settings.prefix}media/")


def test_one_upload_for_many_publications(s3: S3Sandbox, settings: MediaHostSettings, banner: Path) -> None:
    """A file asked for by 20 publications at once (a fan-out's threads) is uploaded once, and every URL serves it."""
    host = S3MediaHost(settings, environ=s3.env)
    with ThreadPoolExecutor(8) as pool:
        urls = list(pool.map(lambda i: host.url_for(banner, publication=f"pub1-{i:02d}"), range(20)))
    assert len(_media_puts(s3, settings)) == 1
    digest = hashlib.sha256(banner.read_bytes()).hexdigest()
    assert s3.keys_in_bucket(settings.prefix + "media/") == [f"{settings.prefix}media/{digest}.png"]
    answer = requests.get(urls[13], timeout=5)
    assert answer.status_code == 200
    assert answer.content == banner.read_bytes()
    assert answer.headers["Content-Type"] == "image/png"


def test_second_url_for_does_not_upload_again_and_is_fast(
    s3: S3Sandbox, settings: MediaHostSettings, banner: Path
) -> None:
    """Staging uploads ahead of the slot; the slot's own url_for only checks (one HEAD) and returns a fresh URL."""
    host = S3MediaHost(settings, environ=s3.env)
    host.url_for(banner, publication="pub1-staged")
    before = len(s3.requests())
    started = time.monotonic()
    url = host.url_for(banner, publication="pub1-staged")
    elapsed = time.monotonic() - started
    after = s3.requests()[before:]
    assert [method for method, _, _ in after] == ["HEAD"]
    assert len(_media_puts(s3, settings)) == 1
    assert elapsed < 1.0
    assert requests.get(url, timeout=5).status_code == 200


def test_presigned_url_expires_with_403(s3: S3Sandbox, settings: MediaHostSettings, banner: Path) -> None:
    """A URL of a 1 s lifetime serves the file at once and is refused with S3's 403 once it has expired."""
    host = S3MediaHost(dataclasses.replace(settings, url_lifetime=1), environ=s3.env)
    url = host.url_for(banner, publication="pub1-short")
    assert requests.get(url, timeout=5).status_code == 200
    time.sleep(2.1)  # the server checks expiry against real time
    late = requests.get(url, timeout=5)
    assert late.status_code == 403
    assert "Request has expired" in late.text
    fresh = host.url_for(banner, publication="pub1-short")  # what an adapter does for its retry
    assert requests.get(fresh, timeout=5).status_code == 200


def test_release_deletes_only_unheld_files(
    s3: S3Sandbox, settings: MediaHostSettings, banner: Path, tmp_path: Path
) -> None:
    """A file held by two publications survives the first release and goes with the second; markers go too."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" * 100)
    host = S3MediaHost(settings, environ=s3.env)
    host.url_for(banner, publication="pub1-a")
    host.url_for(video, publication="pub1-a")
    host.url_for(banner, publication="pub1-b")
    host.release("pub1-a")
    media = s3.keys_in_bucket(settings.prefix + "media/")
    assert len(media) == 1 and media[0].endswith(".png")
    host.release("pub1-b")
    assert s3.keys_in_bucket(settings.prefix) == []
    host.release("pub1-b")  # a second release (a retried hook) is harmless
    assert s3.keys_in_bucket(settings.prefix) == []


def test_holds_survive_a_restart(s3: S3Sandbox, settings: MediaHostSettings, banner: Path) -> None:
    """A new host (a restarted or another worker) knows what publications hold: it keeps held files, frees the rest."""
    S3MediaHost(settings, environ=s3.env).url_for(banner, publication="pub1-first")
    S3MediaHost(settings, environ=s3.env).url_for(banner, publication="pub1-second")
    restarted = S3MediaHost(settings, environ=s3.env)
    restarted.release("pub1-first")
    assert len(s3.keys_in_bucket(settings.prefix + "media/")) == 1
    S3MediaHost(settings, environ=s3.env).release("pub1-second")
    assert s3.keys_in_bucket(settings.prefix) == []


def test_wrong_secret_is_permanent_and_names_the_variables(
    s3: S3Sandbox, settings: MediaHostSettings, banner: Path
) -> None:
    """A refused key is a permanent error naming the variables and the file's line, never the value."""
    wrong = {**s3.env, s3.secret_var: "not-the-sandbox-secret-value"}
    with pytest.raises(MediaHostRefused) as caught:
        S3MediaHost(settings, environ=wrong).url_for(banner, publication="pub1-x")
    message = str(caught.value)
    assert "config/media_host.yaml:1" in message and s3.secret_var in message
    assert "not-the-sandbox-secret-value" not in message


def test_missing_bucket_is_permanent_and_names_the_setting(
    s3: S3Sandbox, settings: MediaHostSettings, banner: Path
) -> None:
    """A bucket that does not exist is a permanent error that names media_host.bucket."""
    host = S3MediaHost(dataclasses.replace(settings, bucket="no-such-bucket-here"), environ=s3.env)
    with pytest.raises(MediaHostRefused, match=r"media_host\.bucket"):
        host.url_for(banner, publication="pub1-x")


def test_unreachable_endpoint_is_retryable(settings: MediaHostSettings, s3: S3Sandbox, banner: Path) -> None:
    """A closed port is retryable (the bucket may answer later) and names media_host.endpoint_url."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    host = S3MediaHost(dataclasses.replace(settings, endpoint_url=closed), environ=s3.env)
    started = time.monotonic()
    with pytest.raises(MediaHostUnavailable, match=r"media_host\.endpoint_url"):
        host.url_for(banner, publication="pub1-x")
    assert time.monotonic() - started < 10


def test_logs_carry_object_keys_never_secrets_or_signatures(
    s3: S3Sandbox, settings: MediaHostSettings, banner: Path
) -> None:
    """Uploading, issuing URLs and releasing log object keys; neither the secret nor a URL's signature appears."""
    out = io.StringIO()
    logs.configure(stream=out, level="info")
    try:
        host = S3MediaHost(settings, environ=s3.env)
        url = host.url_for(banner, publication="pub1-logged")
        host.release("pub1-logged")
    finally:
        logs.reset()
    text = out.getvalue()
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert "media_uploaded" in events and "media_deleted" in events and "media_released" in events
    assert f"{settings.prefix}media/" in text
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    assert signature not in text and "X-Amz-Signature" not in text and "X-Amz-Credential" not in text
    assert s3.env[s3.secret_var] not in text and s3.env[s3.key_var] not in text
