"""The loader never reads a secret value into the model, so dumping or logging it cannot leak one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import structlog

from bot.campaign import load


def test_model_dump_and_log_hold_no_secret(campaign_dir: Path, credentials: dict[str, str]):
    """With every credential variable set, neither the dumped model nor a log of it contains a value."""
    campaign = load(campaign_dir)
    dumped = json.dumps(dataclasses.asdict(campaign), default=str)
    with structlog.testing.capture_logs() as logs:
        structlog.get_logger().info("campaign_loaded", campaign=campaign, accounts=campaign.accounts)
    logged = json.dumps(logs, default=repr)
    for text in (dumped, logged, repr(campaign)):
        assert "MASTODON_A19_TOKEN" in text  # the variable's name is there ...
        for value in credentials.values():
            assert value not in text  # ... its value never
