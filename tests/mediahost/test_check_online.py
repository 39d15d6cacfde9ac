"""``bot check --online`` proves the bucket: a probe object put, fetched through its presigned URL, deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.campaign import load
from bot.cli.check import media_host_online
from sandboxes.s3 import S3Sandbox
from tests.cases.casefiles import BASE, BASE_ENV


def _campaign(tmp_path: Path, s3: S3Sandbox, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> object:
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    block = s3.media_host_block(prefix="probe-test/", **overrides)
    (root / "config" / "media_host.yaml").write_text(yaml.safe_dump({"media_host": block}, sort_keys=False))
    for var in BASE_ENV:
        monkeypatch.setenv(var, f"value-of-{var.lower()}")
    for var, value in s3.env.items():
        monkeypatch.setenv(var, value)
    return load(root)


def test_a_working_bucket_passes_and_leaves_nothing(
    s3: S3Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox bucket passes: no problem, a host for the adapters, and the probe object deleted."""
    problems, host = media_host_online(_campaign(tmp_path, s3, monkeypatch))
    assert problems == []
    assert host is not None
    assert s3.keys_in_bucket("probe-test/") == []
    assert [m for m, _, status in s3.requests(contains="/probe-test/probe/") if status < 300][-3:] == [
        "PUT",
        "GET",
        "DELETE",
    ]


def test_wrong_bucket_is_reported_at_the_block(s3: S3Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket that does not exist is one problem at config/media_host.yaml's block naming media_host.bucket."""
    problems, _ = media_host_online(_campaign(tmp_path, s3, monkeypatch, bucket="no-such-campaign-bucket"))
    assert len(problems) == 1
    assert problems[0].startswith(
        "config/media_host.yaml:1: media_host: bucket 'no-such-campaign-bucket' does not exist"
    )


def test_wrong_key_is_reported_naming_variables_not_values(
    s3: S3Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused secret is one problem naming both variables; the wrong value itself is never printed."""
    campaign = _campaign(tmp_path, s3, monkeypatch)
    monkeypatch.setenv(s3.secret_var, "a-wrong-secret-for-the-sandbox")
    problems, _ = media_host_online(campaign)
    assert len(problems) == 1
    assert "refused the key (SignatureDoesNotMatch)" in problems[0]
    assert s3.key_var in problems[0] and s3.secret_var in problems[0]
    assert "a-wrong-secret-for-the-sandbox" not in problems[0]


def test_unset_key_variable_is_reported(s3: S3Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key variable not set is reported by name, and no host is built for the adapters."""
    campaign = _campaign(tmp_path, s3, monkeypatch)
    monkeypatch.delenv(s3.secret_var)
    problems, host = media_host_online(campaign)
    assert host is None
    assert problems == [f"config/media_host.yaml:1: media_host: environment variable {s3.secret_var} is not set"]
