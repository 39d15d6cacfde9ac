"""A fresh copy of the base campaign for each test that edits files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cases.casefiles import BASE, BASE_ENV


@pytest.fixture
def campaign_dir(tmp_path: Path) -> Path:
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    return root


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every base credential variable set to a recognisable fake secret."""
    values = {var: f"s3cr3t-{var.lower()}-value" for var in BASE_ENV}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values
