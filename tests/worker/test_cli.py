"""`bot run` as a command: --once for cron hosts, and refusing to start on bad files or missing secrets."""

from __future__ import annotations

import uuid

import pytest

from tests.worker.campaigns import env_for, events, write_campaign


def _campaign(tmp_path, x_sandbox):
    account = x_sandbox.create_account(f"c{uuid.uuid4().hex[:8]}")
    tag = uuid.uuid4().hex[:6]
    write_campaign(
        tmp_path,
        [account],
        posts={"p": f"once {tag}"},
        schedules={
            "s": {
                "timezone": "UTC",
                "slots": [{"at": "2022-01-12T09:00", "post": "p", "accounts": [account.id]}],
            }
        },
    )
    return account, tag


@pytest.mark.slow
def test_once_publishes_what_is_due_and_exits(tmp_path, x_sandbox, workers) -> None:
    """`run --once` at 09:10 publishes the 09:00 slot and exits 0; a second --once publishes nothing more."""
    account, tag = _campaign(tmp_path, x_sandbox)
    log = tmp_path / "run.log"
    for _ in range(2):
        proc = workers.spawn(tmp_path, env_for([account]), log, "--once", "--clock-start", "2022-01-12T09:10:00Z")
        assert proc.wait(timeout=120) == 0
    assert [p.text for p in x_sandbox.posts(account)] == [f"once {tag}"]
    assert [e["event"] for e in events(log)].count("post_published") == 1


@pytest.mark.slow
def test_missing_secret_refuses_to_start_naming_the_variable_only(tmp_path, x_sandbox, workers) -> None:
    """With one credential variable unset, `run` exits 1 and logs its name, never any secret value."""
    account, _ = _campaign(tmp_path, x_sandbox)
    env = env_for([account])
    gone = sorted(account.env)[0]
    del env[gone]
    log = tmp_path / "run.log"
    assert workers.spawn(tmp_path, env, log, "--once").wait(timeout=120) == 1
    [refused] = [e for e in events(log) if e["event"] == "worker_refused"]
    assert any(p.endswith(f"environment variable {gone} is not set") for p in refused["problems"])
    text = log.read_text()
    assert all(value not in text for value in account.env.values())
    assert x_sandbox.posts(account) == []


@pytest.mark.slow
def test_invalid_campaign_refuses_to_start_with_check_messages(tmp_path, x_sandbox, workers) -> None:
    """A schedule naming an unknown post stops `run` at start with the `path:line:` message `bot check` gives."""
    account, _ = _campaign(tmp_path, x_sandbox)
    path = tmp_path / "schedules" / "s.yaml"
    path.write_text(path.read_text().replace("post: p", "post: q"))
    log = tmp_path / "run.log"
    assert workers.spawn(tmp_path, env_for([account]), log, "--once").wait(timeout=120) == 1
    [refused] = [e for e in events(log) if e["event"] == "worker_refused"]
    assert [p.split(": ", 1)[0] for p in refused["problems"]] == ["schedules/s.yaml:4"]
    assert "unknown post 'q'" in refused["problems"][0]
