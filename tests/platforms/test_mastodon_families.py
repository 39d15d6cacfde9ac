"""Mastodon-API servers that are not Mastodon (the gateway answering as Takahē, GoToSocial, Akkoma), through the adapter."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from bot.core.errors import ContentRejected, NotFound, PlatformUnavailable, UncertainOutcome
from bot.core.values import ImageAttachment, VideoAttachment
from bot.platforms.mastodon import Mastodon
from bot.platforms.mastodon.server import ServerInfo, family_of
from bot.resharing.feeds import instance_of
from bot.resharing.policy import Context, Handle, Rules, judge
from sandboxes.base import SandboxAccount
from sandboxes.mastodon.sandbox import MastodonSandbox
from tests.platforms.support import Sleeps, media_folder
from tests.platforms.support import adapter_for as shared_adapter_for
from tests.platforms.support import fresh_name as name
from tests.platforms.support import outgoing as out

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[MastodonSandbox]:
    """A sandbox of this module's own: the session's shared one must never answer as another family."""
    with MastodonSandbox() as sandbox:
        yield sandbox  # type: ignore[misc]  (Sandbox.__enter__ is typed as the base class)


@pytest.fixture
def takahe(server: MastodonSandbox) -> Iterator[MastodonSandbox]:
    server.impersonate("takahe")
    yield server
    server.restore_defaults()


@pytest.fixture
def account(server: MastodonSandbox) -> SandboxAccount:
    return server.create_account(name("campaign"))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media_folder(
        tmp_path_factory.mktemp("families-media"),
        banner_size=(300, 150),
        clip="clip",
        seconds=1,
        clip_size=(160, 120),
        captions=["Free Andrei and Irina"],
    )


def adapter_for(who: SandboxAccount, **kwargs: Any) -> Mastodon:
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("sleep", Sleeps())
    adapter = shared_adapter_for(who, **kwargs)
    assert isinstance(adapter, Mastodon)
    return adapter


def mine(sandbox: MastodonSandbox, who: SandboxAccount) -> list:
    return [p for p in sandbox.posts(who) if not p.reshare_of]


def paths(sandbox: MastodonSandbox, since: int, prefix: str) -> list[tuple[str, str, Any]]:
    return [(r["method"], r["path"], r["status"]) for r in sandbox.requests()[since:] if r["path"].startswith(prefix)]


def test_family_is_read_from_the_version_string() -> None:
    """Takahē, GoToSocial, Akkoma and Pleroma are told apart from Mastodon by their version strings."""
    assert family_of("4.0.0 (compatible; Takahe 0.11)") == "takahe"
    assert family_of("4.3.0 (compatible; GoToSocial 0.17.3)") == "gotosocial"
    assert family_of("2.7.2 (compatible; Akkoma 3.13.2)") == "akkoma"
    assert family_of("2.7.2 (compatible; Pleroma 2.6.0)") == "pleroma"
    assert family_of("4.3.2") == "mastodon"
    assert family_of("") == "unknown"
    assert not ServerInfo(family="takahe").streams and ServerInfo(family="mastodon").streams


def test_takahe_like_server_publishes_text_and_images_once(takahe, account, media) -> None:
    """404 on /api/v2/instance (with and without the slash) and a Takahē version: posts go out once, limits from v1."""
    assert requests.get(f"{takahe.base_url}/api/v2/instance/", timeout=5).status_code == 404
    assert requests.get(f"{takahe.base_url}/api/v2/instance", timeout=5).status_code == 404
    adapter = adapter_for(account)
    with pytest.raises(Exception) as lookup:  # what the adapter used to call, and failed every publication on
        adapter.client.instance_v2()
    assert isinstance(adapter._map_error(lookup.value), NotFound)
    mark = len(takahe.requests())
    text = out(f"Free Andrei and Irina {uuid.uuid4().hex[:6]}")
    banner = out("Banner", images=(ImageAttachment(media / "banner-0.png", "Banner: free them"),))
    with capture_logs() as logs:
        adapter.publish(text)
        adapter.publish(banner)
    assert sorted(p.text for p in mine(takahe, account)) == sorted([text.text, banner.text])
    assert paths(takahe, mark, "/api/v")[:2] == [("GET", "/api/v2/instance", 404), ("GET", "/api/v1/instance", 200)]
    assert len(paths(takahe, mark, "/api/v2/instance")) == 1  # read once, not per publication
    [seen] = [e for e in logs if e["event"] == "instance_detected"]
    assert (seen["family"], seen["source"]) == ("takahe", "v1")
    assert adapter.server().label == "Takahe 0.11"


def test_idempotency_key_ignored_is_reconciled_by_reading(takahe, account) -> None:
    """Takahē ignores Idempotency-Key (a repeat posts twice), so an unanswered post is found by reading, not resent."""
    adapter = adapter_for(account, timeout=0.5)
    adapter.publish(out("Warm-up: instance and identity read"))
    adapter.whoami()
    twice = out(f"Same key twice {uuid.uuid4().hex[:6]}")
    adapter.client.status_post(twice.text, idempotency_key=twice.key)
    adapter.client.status_post(twice.text, idempotency_key=twice.key)
    assert len([p for p in mine(takahe, account) if p.text == twice.text]) == 2  # the switch really ignores it
    held = out(f"Held answer {uuid.uuid4().hex[:6]}")
    takahe.fail_next("timeout", path="/api/v1/statuses")
    with pytest.raises(UncertainOutcome):
        adapter.publish(held)
    found = adapter.find_published(held)
    assert found is not None
    assert [p.remote_id for p in mine(takahe, account) if p.text == held.text] == [found.remote_id]


def test_no_instance_document_at_all_publishes_with_defaults_and_warns_once(takahe, account) -> None:
    """With neither instance document answering, posts go out under Mastodon's defaults and one warning says so."""
    takahe.fail_next("unavailable", path="/api/v1/instance", count=10)
    adapter = adapter_for(account)
    with capture_logs() as logs:
        adapter.publish(out(f"First {uuid.uuid4().hex[:6]}"))
        adapter.publish(out(f"Second {uuid.uuid4().hex[:6]}"))
        with pytest.raises(ContentRejected, match="takes 500"):
            adapter.publish(out("y" * 501))
    assert len(mine(takahe, account)) == 2
    warned = [e for e in logs if e["event"] == "instance_lookup_failed"]
    assert len(warned) == 1 and warned[0]["fallback"] == "defaults"
    assert warned[0]["problems"] == ["/api/v2/instance: HTTP 404", "/api/v1/instance: HTTP 503"]


def test_video_the_server_does_not_list_is_refused_before_any_upload(takahe, account, media) -> None:
    """A video on a server whose supported_mime_types has no video is refused at once, naming the type, unsent."""
    adapter = adapter_for(account)
    mark = len(takahe.requests())
    with pytest.raises(ContentRejected, match=r"takes no video/mp4 \(it takes image/gif, image/jpeg"):
        adapter.publish(out("A supporter speaks", video=VideoAttachment(media / "clip.mp4", "A supporter")))
    assert paths(takahe, mark, "/api/v2/media") == [] and mine(takahe, account) == []
    assert "takes no video/mp4" in (
        adapter.media_refusal(out("x", video=VideoAttachment(media / "clip.mp4", "a"))) or ""
    )


def test_repeated_server_error_on_one_upload_becomes_permanent(server, account, media) -> None:
    """A server that lists video but answers 500 to it: two retryable failures, then a permanent refusal with the reason."""
    server.gateway.video_upload_status = 500
    try:
        adapter = adapter_for(account)
        post = out("A supporter speaks", video=VideoAttachment(media / "clip.mp4", "A supporter"))
        for _ in range(2):
            with pytest.raises(PlatformUnavailable):
                adapter.publish(post)
        with pytest.raises(ContentRejected, match=r"failed the upload of clip.mp4 3 times \(HTTP 500"):
            adapter.publish(post)
        server.gateway.video_upload_status = 503  # a server briefly away is never counted against the file
        for _ in range(4):
            with pytest.raises(PlatformUnavailable):
                adapter.publish(post)
    finally:
        server.restore_defaults()
    assert mine(server, account) == []


def test_media_uploaded_before_a_crash_is_reused_by_the_retry(server, account, media, tmp_path) -> None:
    """The status call fails after the upload; a new adapter (a restarted worker) posts with the same media, uploaded once."""
    post = out(f"Banner {uuid.uuid4().hex[:6]}", images=(ImageAttachment(media / "banner-1.png", "Banner: free them"),))
    mark = len(server.requests())
    server.fail_next("unavailable", path="/api/v1/statuses")
    with pytest.raises(PlatformUnavailable):
        adapter_for(account, state_dir=tmp_path).publish(post)
    [memo] = (tmp_path / "mastodon-uploads").iterdir()
    [uploaded] = json.loads(memo.read_text()).values()
    with capture_logs() as logs:
        adapter_for(account, state_dir=tmp_path).publish(post)
    assert [e["media_id"] for e in logs if e["event"] == "media_reused"] == [uploaded]
    assert [s for m, p, s in paths(server, mark, "/api/v2/media") if m == "POST"] == [200]
    [posted] = mine(server, account)
    assert [m["alt"] for m in posted.media] == ["Banner: free them"]
    assert not memo.exists()


def test_an_upload_the_server_no_longer_holds_is_sent_again(server, account, media, tmp_path) -> None:
    """A remembered media id the server answers 404 for (attached or removed) is uploaded afresh."""
    post = out(f"Banner {uuid.uuid4().hex[:6]}", images=(ImageAttachment(media / "banner-2.png", "Banner"),))
    adapter = adapter_for(account, state_dir=tmp_path)
    server.fail_next("unavailable", path="/api/v1/statuses")
    with pytest.raises(PlatformUnavailable):
        adapter.publish(post)
    [memo] = (tmp_path / "mastodon-uploads").iterdir()
    [uploaded] = json.loads(memo.read_text()).values()
    requests.delete(
        f"{server.base_url}/api/v1/media/{uploaded}",
        headers={"Authorization": f"Bearer {adapter._secret('access_token')}"},
    ).raise_for_status()
    adapter.publish(post)
    assert len(mine(server, account)) == 1 and not memo.exists()


def test_reshare_records_the_boosts_own_id_when_the_server_answers_with_the_original(takahe, account) -> None:
    """Takahē answers a reblog with the original status; the receipt still carries the boost's own id."""
    adapter = adapter_for(account)
    original = takahe.post_as(takahe.create_account(name("supporter")), "Solidarity #FreeAndreiandIrina")
    answer = adapter.client.status_reblog(original)  # what the server says
    adapter.client.status_unreblog(original)
    assert str(answer["id"]) == original and answer.get("reblog") is None
    mention = adapter._mention(adapter.client.status(original))
    receipt = adapter.reshare(mention)
    [boost] = [p for p in takahe.posts(account) if p.reshare_of == original]
    assert receipt.remote_id == boost.remote_id != original


def test_handle_with_a_port_matches_a_bare_rule(takahe, account) -> None:
    """A local author shown as partner@127.0.0.1:PORT matches always_from '@Partner' read on that server, not another."""
    adapter = adapter_for(account)
    partner = takahe.create_account(name("partner"))
    tag = f"Free{uuid.uuid4().hex[:6]}"
    start = adapter.fetch_mentions([tag], None)
    takahe.post_as(partner, f"From a partner #{tag}")
    [mention] = adapter.fetch_mentions([tag], start.cursor).mentions
    domain = takahe.base_url.removeprefix("http://")
    assert mention.author_handle == f"{partner.handle}@{domain}"
    campaign_account = adapter.account
    rules = Rules(always_from=(f"@{partner.handle.upper()}",), mode="auto")
    here = Context(rules=rules, instance=instance_of(campaign_account))
    assert judge(mention, here).reason == "partner"
    elsewhere = Context(rules=rules, instance="127.0.0.1:1")
    assert judge(mention, elsewhere).reason == "tagged"
    assert Handle.parse("@Partner@Example.org:443") == Handle.parse("partner@example.org.")


def test_streaming_is_not_attempted_where_the_family_has_none(takahe, account) -> None:
    """Against Takahē the stream call says at once to poll, instead of waiting out the connect timeout."""
    adapter = adapter_for(account)
    started = time.monotonic()
    with pytest.raises(PlatformUnavailable, match=r"Takahe 0.11\) does not stream"):
        adapter.stream_mentions(["FreeAndreiandIrina"], lambda m: None, threading.Event(), connect_timeout=30)
    assert time.monotonic() - started < 5
