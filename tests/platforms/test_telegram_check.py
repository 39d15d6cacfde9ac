"""``bot check`` for Telegram: captions over 1,024 characters at their line, and ``--online`` asking whether the
campaign's bot may post in each channel (against the sandbox)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from bot.campaign import inspect
from sandboxes.base import SandboxAccount
from sandboxes.telegram.sandbox import TelegramSandbox
from tests.worker.campaigns import write_campaign

REPO = Path(__file__).resolve().parents[2]
BANNER = REPO / "tests" / "cases" / "base" / "posts" / "media" / "banner-1.png"
LONG = "Free Andrei and Irina. " * 48  # 1,103 characters once YAML drops the last space: too long as a caption


def caption_campaign(tmp_path: Path) -> Path:
    root = tmp_path / "campaign"
    (root / "config").mkdir(parents=True)
    (root / "posts" / "media").mkdir(parents=True)
    (root / "schedules").mkdir()
    shutil.copy(BANNER, root / "posts" / "media" / "banner-1.png")
    (root / "config" / "accounts.yaml").write_text(
        "campaign: captions\naccounts:\n"
        "  telegram-belarus:\n    platform: telegram\n    handle: '@free_andrei_irina'\n    language: be\n"
        "    credentials: {bot_token: TELEGRAM_BELARUS_BOT_TOKEN}\n"
    )
    media = "media:\n  - file: media/banner-1.png\n    alt: Banner\n"
    (root / "posts" / "photo.yaml").write_text(f"language: be\ntext: {LONG}\n{media}")
    (root / "posts" / "text.yaml").write_text(f"language: be\ntext: {LONG}\n")
    (root / "posts" / "both.yaml").write_text(f"text:\n  en: {LONG}\n  be: Вызваліце Андрэя і Ірыну.\n{media}")
    (root / "posts" / "other.yaml").write_text(f"text:\n  en: Free them.\n  be: {LONG}\n{media}")
    (root / "schedules" / "s.yaml").write_text(
        "timezone: UTC\nwindow: {start: 2022-01-12, end: 2022-01-13}\nslots:\n"
        + "".join(
            f"  - at: 2022-01-12T{9 + n:02d}:00\n    post: {post}\n    accounts: [telegram-belarus]\n"
            for n, post in enumerate(("photo", "text", "both", "other"))
        )
    )
    return root


def test_a_caption_over_1024_characters_is_an_error_at_its_line(tmp_path: Path) -> None:
    """With a photo, 1,103 characters are an error at the text's line naming the account; alone they pass; only
    the text in the account's language (be) is measured."""
    found = inspect(caption_campaign(tmp_path))
    captions = sorted(e for e in found.errors if "caption" in e)
    assert len(captions) == 2, found.errors
    other, photo = captions
    assert photo.startswith("posts/photo.yaml:2: text: too long as the caption of images for telegram-belarus")
    assert "1103 characters" in photo and "at most 1024" in photo
    assert other.startswith("posts/other.yaml:3: text.be: too long as the caption")
    assert not [e for e in found.errors if "text.yaml" in e or "both.yaml" in e]


def test_check_online_reports_a_channel_the_bot_may_not_post_in(
    tmp_path: Path, telegram_sandbox: TelegramSandbox
) -> None:
    """`bot check --online` passes while the bot may post, and names the account at its line once the sandbox
    takes away its right to post (then its administrator rights), never printing the token."""
    made = telegram_sandbox.create_account(f"chk{uuid.uuid4().hex[:6]}")
    account = SandboxAccount("telegram-belarus", made.handle, made.entry, made.env)
    root = write_campaign(
        tmp_path,
        [account],
        schedules={
            "s": {
                "timezone": "UTC",
                "window": {"start": "2022-01-12", "end": "2022-01-13"},
                "slots": [{"at": "2022-01-12T09:00", "post": "launch", "accounts": ["telegram-belarus"]}],
            }
        },
        posts={"launch": "Free Andrei and Irina #FreeAndreiandIrina"},
    )
    accounts = yaml.safe_load((root / "config" / "accounts.yaml").read_text())
    assert list(accounts["accounts"]) == ["telegram-belarus"]
    token = next(iter(made.env.values()))

    def check() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | made.env
        return subprocess.run(
            [sys.executable, "-m", "bot", "--campaign", str(root), "check", "--online"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        allowed = check()
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        telegram_sandbox.set_rights(made, admin=True, can_post=False)
        barred = check()
        telegram_sandbox.set_rights(made, admin=False)
        outsider = check()
    finally:
        telegram_sandbox.set_rights(made)
    assert barred.returncode == 1 and outsider.returncode == 1
    [line] = [x for x in barred.stdout.splitlines() if "telegram-belarus" in x]
    assert line.startswith("config/accounts.yaml:2: account telegram-belarus: telegram channel ")
    assert "without the right to post messages" in line
    assert "not an administrator" in outsider.stdout
    for run in (allowed, barred, outsider):
        assert token not in run.stdout + run.stderr
