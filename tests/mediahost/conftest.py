"""One S3-compatible sandbox (moto's server behind the signature gate) for the session; a prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.model import MediaHostSettings
from sandboxes.s3 import REGION, S3Sandbox


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Sandbox]:
    with S3Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def settings(s3: S3Sandbox) -> MediaHostSettings:
    """The sandbox's bucket under a prefix of this test's own, so tests never see each other's objects."""
    return MediaHostSettings(
        bucket=s3.bucket,
        endpoint_url=s3.endpoint_url,
        region=REGION,
        prefix=f"t-{uuid.uuid4().hex[:8]}/",
        path_style=True,
        credentials={"access_key_id": s3.key_var, "secret_access_key": s3.secret_var},
    )


@pytest.fixture
def banner(tmp_path: Path) -> Path:
    path = tmp_path / "banner.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64)
    return path
