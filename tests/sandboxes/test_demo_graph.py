"""The demo on the Graph sandboxes: the shipped campaign publishes text, images with alt text and supporter videos
to a Facebook Page, an Instagram account and a Threads account, media served from the local S3 bucket."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from bot.observability import logs
from sandboxes.demo import run_demo
from sandboxes.s3 import S3Sandbox

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory, facebook_sandbox, instagram_sandbox, threads_sandbox):
    """Three campaign days in about 30 wall seconds on the three Graph sandboxes and a loopback bucket."""
    workdir = tmp_path_factory.mktemp("demo-graph") / "campaign"
    sandboxes = {"facebook": facebook_sandbox, "instagram": instagram_sandbox, "threads": threads_sandbox}
    out = io.StringIO()
    # The sandboxes are the session's: other tests fetched media through them before the demo.
    earlier = {p: len(s.fetched()) for p, s in sandboxes.items()}
    os.environ["BOT_LOG_FORMAT"] = "json"
    try:
        with S3Sandbox() as bucket, contextlib.redirect_stdout(out):
            logs.configure()
            code, summary = run_demo(ROOT, workdir, sandboxes, days=3, seconds=30, media=bucket)
            fetched = {p: s.fetched()[earlier[p] :] for p, s in sandboxes.items()}
            endpoint = bucket.endpoint_url
    finally:
        os.environ.pop("BOT_LOG_FORMAT", None)
        logs.reset()
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return {"code": code, "summary": summary, "events": events, "fetched": fetched, "endpoint": endpoint}


def test_each_graph_platform_gets_text_image_with_alt_and_video(demo) -> None:
    """The summary counts, per platform, the campaign's text posts, images with alt text and videos."""
    assert demo["code"] == 0
    held = demo["summary"]["campaign_posts"]
    for platform in ("facebook", "threads"):
        assert held[platform]["texts"] >= 1 and held[platform]["images_with_alt"] >= 1, platform
    for platform in ("facebook", "instagram", "threads"):
        assert held[platform]["images_with_alt"] >= 1 and held[platform]["videos"] >= 1, platform
    assert not demo["summary"]["publications"].get("failed")


def test_instagram_and_threads_fetched_media_from_the_bucket(demo) -> None:
    """Instagram and Threads downloaded every image and video from the local S3 bucket's presigned URLs."""
    for platform in ("instagram", "threads"):
        urls = demo["fetched"][platform]
        assert urls and all(u.startswith(demo["endpoint"]) and "Signature" in u for u in urls), platform
