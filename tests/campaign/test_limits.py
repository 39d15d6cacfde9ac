"""Hostile campaign files (issue 13, items 3, 4 and 10): every limit is a ``file:line`` problem, quickly, never a crash."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from bot.campaign import inspect, load
from bot.campaign.isolated import load_isolated
from bot.campaign.problems import MOST_PER_FILE
from bot.campaign.yamlsrc import MAX_BYTES, MAX_DEPTH, YamlProblem, parse, read
from bot.core.errors import ConfigError

REPO = Path(__file__).parents[2]
ALIASES = "anchors and aliases (&name, *name) are not supported in campaign files"


def alias_bomb(key: str = "note") -> str:
    """Nine levels of nine aliases: under 600 bytes that expand to 9**9 (387 million) strings."""
    lines = [f"{key}:", '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def deep_block(levels: int) -> str:
    """``levels`` nested block sequences under ``note:``."""
    return "note:\n" + "".join("  " * (i + 1) + "-\n" for i in range(levels))


def check_in_child(root: Path, memory_mb: int = 1024) -> subprocess.CompletedProcess[str]:
    """``bot check`` in a child capped in address space, so a regression costs the child, not the test run."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))

    return subprocess.run(
        [sys.executable, "-m", "bot", "--campaign", str(root), "check", "--no-warnings"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=cap,
    )


# ---- item 3: YAML limits ----


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
def test_alias_bomb_is_refused_at_its_first_anchor_quickly(campaign_dir: Path, credentials):
    """An alias bomb in a post gives one ``file:line`` problem within a second and a small memory cap, no traceback."""
    (campaign_dir / "posts" / "bomb.yaml").write_text("text: hi\n" + alias_bomb())
    done = check_in_child(campaign_dir, memory_mb=1024)
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f"posts/bomb.yaml:3: {ALIASES} (they are not needed there: {_HOW})"]
    with pytest.raises(YamlProblem):
        parse("text: hi\n" + alias_bomb(), "posts/bomb.yaml")


_HOW = "write each value out in full, and put a text that starts with & or * in quotes"


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        ("text: &t hi\n", 1),  # an anchor nothing refers to
        ("text: hi\nnote: &n a\nalt: *n\n", 2),  # a scalar alias
        ("text: hi\nmedia:\n  - &m {file: a.png, alt: b}\n  - *m\n", 3),
        ("text: *undefined\n", 1),  # an alias to no anchor at all
    ],
)
def test_every_anchor_and_alias_is_refused_with_its_line(doc: str, line: int):
    """Anchors and aliases of any kind are refused at the first one's line, saying they are not needed."""
    with pytest.raises(YamlProblem) as info:
        parse(doc, "x")
    assert (info.value.line, info.value.message) == (line, f"{ALIASES} (they are not needed there: {_HOW})")


def test_ampersands_and_asterisks_inside_text_are_text():
    """``&`` and ``*`` inside a text (not at the start of a value) stay ordinary characters."""
    source = parse('text: Andrei & Irina, *free* them\nalt: "&quoted"\nnote: "*also"\n', "x")
    assert source.data == {"text": "Andrei & Irina, *free* them", "alt": "&quoted", "note": "*also"}


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 990, 5000])
def test_deep_nesting_is_a_problem_with_its_line(levels: int):
    """Nesting deeper than the limit is one problem at the line where it goes too deep, never a RecursionError."""
    with pytest.raises(YamlProblem) as info:
        parse("text: hi\n" + deep_block(levels), "x")
    assert info.value.message == (
        f"nested more than {MAX_DEPTH} levels deep (campaign files need about 5; check the indentation)"
    )
    assert info.value.line == MAX_DEPTH + 2 if levels < 1000 else info.value.line > MAX_DEPTH


def test_deep_flow_nesting_is_a_problem():
    """``[[[[...]]]]`` five thousand deep on one line is the same problem, at that line."""
    with pytest.raises(YamlProblem) as info:
        parse("text: hi\nnote: " + "[" * 5000 + "]" * 5000 + "\n", "x")
    assert info.value.line == 2 and info.value.message.startswith(f"nested more than {MAX_DEPTH} levels deep")


def test_nesting_at_the_limit_is_read():
    """A file nested exactly as deep as the limit allows is read (the limit is not off by one)."""
    doc = "text: hi\nnote:" + " [" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    value = parse(doc, "x").data["note"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []


def test_deep_nesting_without_libyaml_is_a_problem_too(monkeypatch: pytest.MonkeyPatch):
    """PyYAML's pure-Python composer (no libyaml) recurses: 5,000 levels are still a problem, not a RecursionError."""
    import yaml

    from bot.campaign import yamlsrc

    monkeypatch.setattr(yamlsrc, "_Loader", yaml.SafeLoader)
    with pytest.raises(YamlProblem) as info:
        parse("text: hi\n" + deep_block(5000), "x")
    assert info.value.message.startswith(f"nested more than {MAX_DEPTH} levels deep")
    with pytest.raises(YamlProblem) as info:
        parse("text: hi\n" + alias_bomb(), "x")
    assert info.value.line == 3


def test_second_document_is_refused_at_its_separator():
    """A file holds one YAML document: a second ``---`` is refused at its line with what to do."""
    with pytest.raises(YamlProblem) as info:
        parse("text: one\n---\ntext: two\n", "x")
    assert (info.value.line, info.value.message) == (
        2,
        "a second YAML document starts here (a campaign file holds one: remove this --- "
        "or move what follows to a file of its own)",
    )


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path):
    """A 50 MB post is refused in well under a second by its size, never parsed."""
    path = tmp_path / "big.yaml"
    with open(path, "wb") as handle:
        handle.write(b"text: ")
        handle.truncate(50 * 2**20)  # a sparse file: the size is what matters
    with pytest.raises(YamlProblem) as info:
        read(path, "posts/big.yaml")
    assert (info.value.line, info.value.message) == (
        1,
        f"the file is 52,428,800 bytes, over the limit of {MAX_BYTES:,} "
        "(a post or settings file is a few kilobytes; split a long schedule into several files)",
    )


def test_a_file_at_the_size_limit_is_read(tmp_path: Path):
    """A file of exactly the limit is read (the limit is not off by one)."""
    path = tmp_path / "full.yaml"
    path.write_bytes(b"text: " + b"a" * (MAX_BYTES - 7) + b"\n")
    assert len(read(path, "x").data["text"]) == MAX_BYTES - 7


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
def test_the_costliest_file_under_the_size_limit_is_read_in_bounded_time_and_memory(tmp_path: Path):
    """A file filling the limit with one-character items (the most nodes it can hold) is read in seconds and 100 MB."""
    path = tmp_path / "many.yaml"
    path.write_bytes(b"text: hi\nnote: [" + b"1," * ((MAX_BYTES - 20) // 2) + b"]\n")
    code = (
        "import resource, sys, time; from bot.campaign.yamlsrc import read; t = time.perf_counter(); "
        "read(sys.argv[1], 'x'); print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    baseline = subprocess.run(
        [sys.executable, "-c", code.replace("read(sys.argv[1], 'x'); ", ""), str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO, check=True)
    _, peak_kb = done.stdout.split()
    assert (int(peak_kb) - int(baseline.stdout.split()[1])) / 1024 < 100


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
def test_worker_reload_gets_the_same_limits(campaign_dir: Path):
    """The worker's capped child reports the alias bomb as ``file:line`` too, not as a memory cap it hit."""
    (campaign_dir / "schedules" / "launch.yaml").write_text(
        (campaign_dir / "schedules" / "launch.yaml").read_text() + alias_bomb()
    )
    (campaign_dir / "posts" / "deep.yaml").write_text("text: hi\nnote: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as err:
        load_isolated(campaign_dir)
    assert err.value.problems == [
        f"posts/deep.yaml:2: nested more than {MAX_DEPTH} levels deep "
        "(campaign files need about 5; check the indentation)",
        f"schedules/launch.yaml:15: {ALIASES} (they are not needed there: {_HOW})",
    ]


# ---- item 4: every file is read inside the campaign folder ----

OUTSIDE = "OUTSIDE-SECRET-MARKER: do not quote me\nroot:x:0:0:root:/root:/bin/bash\n"


@pytest.mark.parametrize(
    "rel", ["schedules/evil.yaml", "schedules/launch.yaml", "config/accounts.yaml", "config/reshare.yaml"]
)
def test_config_and_schedule_links_leaving_the_campaign_are_refused(campaign_dir: Path, tmp_path: Path, rel: str):
    """A schedule or config file linking out of the campaign is refused, and nothing of its target is quoted."""
    outside = tmp_path / "outside.yaml"
    outside.write_text(OUTSIDE)
    target = campaign_dir / rel
    target.unlink(missing_ok=True)
    target.symlink_to(outside)
    result = inspect(campaign_dir)
    text = "\n".join(result.errors + result.warnings)
    assert f"{rel}:1: is a symbolic link to a file outside the campaign folder" in result.errors
    assert "OUTSIDE" not in text and "root" not in text and str(tmp_path / "outside") not in text


@pytest.mark.parametrize("folder", ["schedules", "config"])
def test_folders_linking_out_of_the_campaign_are_refused(campaign_dir: Path, tmp_path: Path, folder: str):
    """schedules/ or config/ as a link to a folder outside is refused as such; its files are never read."""
    outside = tmp_path / "elsewhere"
    (campaign_dir / folder).rename(outside)
    (outside / "extra.yaml").write_text(OUTSIDE)
    (campaign_dir / folder).symlink_to(outside)
    result = inspect(campaign_dir)
    text = "\n".join(result.errors + result.warnings)
    assert f"{folder}:1: is a symbolic link to a folder outside the campaign folder" in result.errors
    assert "OUTSIDE" not in text and "root:x" not in text


def test_links_inside_the_campaign_are_followed(campaign_dir: Path):
    """A schedule that links to a file inside the campaign is read as usual."""
    (campaign_dir / "shared").mkdir()
    (campaign_dir / "schedules" / "launch.yaml").rename(campaign_dir / "shared" / "launch.yaml")
    (campaign_dir / "schedules" / "launch.yaml").symlink_to(campaign_dir / "shared" / "launch.yaml")
    assert len(load(campaign_dir).schedules[0].slots) == 3


# ---- item 10: the smaller ones ----


def test_bad_timezone_does_not_hide_the_other_errors_of_its_file(campaign_dir: Path):
    """An unknown time zone is reported with every other problem of the schedule, not instead of them."""
    (campaign_dir / "schedules" / "launch.yaml").write_text(
        "timezone: Europe/Londn\ngrace: soon\nwindow: {start: 2022-01-13, end: 2022-01-12}\n"
        "slots:\n  - at: 2022-13-12T09:00\n    post: launch\n    accounts: [x-index]\n"
        '  - cron: "61 * * * *"\n    post: launch\n    accounts: [x-index, x-index]\n'
    )
    assert inspect(campaign_dir).errors == [
        "schedules/launch.yaml:1: timezone: unknown time zone 'Europe/Londn' (did you mean 'Europe/London'?)",
        "schedules/launch.yaml:2: grace: got 'soon' (expected a duration like 30m, 1h or 1h30m)",
        "schedules/launch.yaml:3: window.end: 2022-01-12 is before the start 2022-01-13 (expected a later date)",
        "schedules/launch.yaml:5: slots[0].at: '2022-13-12T09:00' is not a valid date-time "
        "(expected a local date-time like 2022-01-12T09:00)",
        "schedules/launch.yaml:8: slots[1].cron: '61 * * * *' is not a valid cron expression: "
        "Error validating expression '61': the last value (61) is higher than the maximum value (59) "
        "(expected minute hour day month day-of-week)",
        "schedules/launch.yaml:10: slots[1].accounts[1]: 'x-index' is listed twice",
    ]


def test_missing_campaign_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """``--campaign`` naming no folder says so, instead of reporting a missing accounts file."""
    missing = tmp_path / "nonexistent"
    assert cli.main(["--campaign", str(missing), "check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{missing}: the campaign folder does not exist "
        "(expected a folder holding config/accounts.yaml, posts/ and schedules/; see --campaign or BOT_CAMPAIGN_DIR)"
    ]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "file")
    assert err.value.problems == [
        f"{tmp_path / 'file'}: is a file, not a campaign folder "
        "(expected a folder holding config/accounts.yaml, posts/ and schedules/; see --campaign or BOT_CAMPAIGN_DIR)"
    ]


@pytest.mark.parametrize("days", ["-5", "0", "abc", "100000"])
def test_plan_refuses_days_that_are_not_a_period(
    campaign_dir: Path, days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bot plan --days`` takes 1 to 3660 days; anything else is refused with a usage message, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--campaign", str(campaign_dir), "plan", "--days", days])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"bot plan: error: argument --days: {days!r} is not a number of days from 1 to 3660"
    )


SECRET_MESSAGE = (
    "a secret written in the file (expected the NAME of an environment variable that holds it, "
    "like MASTODON_A19_TOKEN; the value is not shown)"
)
NAMES = [
    "X_INDEX_CONSUMER_KEY",
    "X_INDEX_ACCESS_TOKEN_SECRET",
    "BLUESKY_INDEX_APP_PASSWORD",
    "MASTODON_A19_TOKEN",
    "MASTODON_2022_CAMPAIGN_TOKEN",
    "mastodon_token",
    "BOT_SECRET",
    "FREE_ANDREI_AND_IRINA_MASTODON_SOCIAL_ACCESS_TOKEN",
    "BLUESKYAPPPASSWORD",
    "X1",
]
SECRETS = [
    "Q7ZK2M9XW4RT8YB3NV6HJ5PL1CF0DG7SA2EU9OQ4",  # all caps, 40 characters: the token
    "QWERTYUIOPASDFGHJKLZXCVBNMQWERTYUIOPASDF",  # 40 capitals, no digit
    "AKIAIOSFODNN7EXAMPLE",  # an AWS access key id
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",  # a GitHub token
    "xvz1evFS4wEEPTGEFPHBog",  # an X consumer key
    "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",  # an X consumer secret
    "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",  # an X access token secret
    "0123456789abcdef0123456789abcdef01234567",  # a hex token
    "ZA_Yj3aBD8U8Cm7lKUp_lm9O9BmDgdhHzDeqsY8tlL0",  # a Mastodon token with underscores
    "abcd-efgh-ijkl-mnop",  # a Bluesky app password
    "A" * 80,  # too long for any name
]


@pytest.mark.parametrize("value", SECRETS)
def test_credential_that_looks_like_a_secret_is_refused_even_in_capitals(campaign_dir: Path, value: str):
    """A long, random-looking or known-shaped credential value is a pasted secret, never taken for a variable name."""
    path = campaign_dir / "config" / "accounts.yaml"
    path.write_text(
        path.read_text().replace("{app_password: BLUESKY_INDEX_APP_PASSWORD}", f"{{app_password: {value}}}")
    )
    errors = inspect(campaign_dir).errors
    assert errors == [f"config/accounts.yaml:15: accounts.bluesky-index.credentials.app_password: {SECRET_MESSAGE}"]
    assert value not in "\n".join(errors)


@pytest.mark.parametrize("name", NAMES)
def test_real_variable_names_are_accepted(campaign_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch):
    """Ordinary variable names, long or short, with words and a few digits, are taken as names."""
    path = campaign_dir / "config" / "accounts.yaml"
    path.write_text(path.read_text().replace("{app_password: BLUESKY_INDEX_APP_PASSWORD}", f"{{app_password: {name}}}"))
    assert inspect(campaign_dir, warnings=False).errors == []


def test_a_value_that_is_neither_name_nor_secret_keeps_its_message(campaign_dir: Path):
    """A value with spaces is not a name; it is reported as such, without its text."""
    path = campaign_dir / "config" / "accounts.yaml"
    path.write_text(path.read_text().replace("{app_password: BLUESKY_INDEX_APP_PASSWORD}", "{app_password: my pw}"))
    assert inspect(campaign_dir).errors == [
        "config/accounts.yaml:15: accounts.bluesky-index.credentials.app_password: must be the NAME of an "
        "environment variable (like MASTODON_A19_TOKEN), not the secret itself"
    ]


@pytest.mark.timeout(60)  # a pathological input must not hang; its speed is bench/'s business
def test_a_file_with_tens_of_thousands_of_problems_shows_fifty_and_counts_the_rest(campaign_dir: Path):
    """20,000 unknown keys in one post give 50 problems and one line counting the rest, in seconds (minutes before)."""
    (campaign_dir / "posts" / "keys.yaml").write_text("text: hi\n" + "".join(f"k{i}: 1\n" for i in range(20_000)))
    errors = inspect(campaign_dir).errors
    assert len(errors) == MOST_PER_FILE + 1
    assert errors[0].startswith("posts/keys.yaml:2: unknown key 'k0'")
    assert errors[-1] == (
        f"posts/keys.yaml:{MOST_PER_FILE + 2}: 19,950 more problems in this file from here on are not shown "
        "(fix the ones above and check again)"
    )


def test_problems_not_shown_still_make_their_part_invalid(campaign_dir: Path):
    """Slots whose problems come after a file's first fifty are still refused, and the campaign does not load."""
    slots = "".join(
        f"  - at: 2022-01-12T09:{i:02d}\n    post: launch\n    accounts: [x-index, x-index]\n" for i in range(60)
    )
    (campaign_dir / "schedules" / "many.yaml").write_text(f"timezone: UTC\nslots:\n{slots}")
    result = inspect(campaign_dir)
    assert result.campaign is not None
    assert [len(s.slots) for s in result.campaign.schedules if s.name == "many"] == [0]
    assert len(result.errors) == MOST_PER_FILE + 1
    assert result.errors[-1].startswith("schedules/many.yaml:155: 10 more problems")
    with pytest.raises(ConfigError):
        load(campaign_dir)


def test_a_control_character_is_one_line_at_its_line(campaign_dir: Path):
    """A NUL byte (found by the fuzz test) is one problem at its line, not PyYAML's three-line message at line 1."""
    path = campaign_dir / "config" / "reshare.yaml"
    path.write_bytes(path.read_bytes() + b"note: \x00\n")
    lines = path.read_text().count("\n")
    assert inspect(campaign_dir).errors == [
        f"config/reshare.yaml:{lines}: YAML syntax error: the character U+0000 is not allowed "
        "(control characters are not allowed)"
    ]


def test_keys_with_line_breaks_or_direction_overrides_are_shown_escaped(campaign_dir: Path):
    """A key holding a line break or a right-to-left override is shown escaped: each problem stays one honest line."""
    (campaign_dir / "posts" / "odd.yaml").write_text('text: hi\n"a\\nb": 1\n"c\\u202ed": 2\n')
    errors = [e for e in inspect(campaign_dir).errors if e.startswith("posts/odd.yaml")]
    assert [e.split(" (")[0] for e in errors] == [
        "posts/odd.yaml:2: unknown key 'a\\nb'",
        "posts/odd.yaml:3: unknown key 'c\\u202ed'",
    ]


def test_a_file_name_with_a_line_break_is_shown_escaped(campaign_dir: Path):
    """A post file whose name holds a line break is named on one line, escaped."""
    (campaign_dir / "posts" / "two\nlines.yaml").write_text("text: hi\nnope: 1\n")
    assert [e for e in inspect(campaign_dir).errors if "nope" in e] == [
        "posts/two\\nlines.yaml:2: unknown key 'nope' (did you mean 'note'?)"
    ]
