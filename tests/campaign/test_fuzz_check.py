"""Fuzzing ``bot check`` over mutated campaign files: no traceback, every problem at ``file:line``, time and memory bounded.

Each example starts from ``tests/cases/base`` and mutates one to three of its YAML files: bytes, lines,
keys and values (through PyYAML), and hostile fragments (aliases, deep nesting, a second document,
tags, a file over the size limit). By default the run is derandomized and takes about 20 s; for a longer
local run set ``BOT_FUZZ_EXAMPLES`` (say 5000), which also draws new random examples each time.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cli
from bot.campaign.yamlsrc import MAX_BYTES, YamlProblem, parse
from tests.cases.casefiles import BASE, BASE_ENV

EXAMPLES = int(os.environ.get("BOT_FUZZ_EXAMPLES") or 0)
DEADLINE_S = 5.0  # per example; a limit itself answers in milliseconds, the base check takes ~0.1 s
MEMORY_MB = 150  # what one check may add to the process's resident memory at its peak
FILES = sorted(p.relative_to(BASE).as_posix() for p in BASE.rglob("*.yaml"))
ORIGINAL = {rel: (BASE / rel).read_bytes() for rel in FILES}
PROBLEM = re.compile(r"^(config|schedules|posts)/[^:\n]+:[1-9]\d*: \S")
SUMMARY = re.compile(r"^campaign '.*' is valid: ")

KEYS = sorted(
    {
        *("text", "variants", "media", "file", "alt", "link", "video", "captions", "consent", "given", "date"),
        *("timezone", "window", "start", "end", "grace", "slots", "at", "every", "times", "days", "cron", "post"),
        *("queue", "accounts", "platform", "base_url", "handle", "credentials", "options", "track", "hashtags"),
        *("policy", "skip", "mode", "max_per_hour", "max_per_day", "interval", "campaign", "supporter", "name"),
    }
)
HOSTILE_LINES = [
    b"&a",
    b"*a",
    b"x: &a [1, 2]",
    b"y: [*a, *a, *a]",
    b"<<: {a: 1}",
    b"---",
    b"...",
    b"%YAML 1.1",
    b"%TAG ! tag:example.com,2000:",
    b"x: !!python/object/apply:os.system ['true']",
    b"x: !!python/name:os.system",
    b"x: !!binary aGk=",
    b"x: !!set {a, b}",
    b"x: !!omap [a: 1]",
    b"x: !!timestamp 2022-13-45",
    b"x: !custom 1",
    b"? [a, b]\n: c",
    b"\t- tab",
    b"x: 10:30:15",
    b"x: 1e999999",
    b"x: 0x" + b"f" * 40,
    b"x: " + b"9" * 5000,
    b"x: '" + b"\xe2\x80\xae" * 3 + b"'",
    b"x: \xff\xfe",
    b"x: \x00",
    b"x: [" * 30 + b"]" * 30,
    b"text: |\n  a\n b",
    b"accounts: []",
    b"slots: {}",
    b"timezone: ../../etc/passwd",
    b"timezone: Europe/Londn",
    b"file: /etc/passwd",
    b"file: ../../../etc/passwd",
    b"credentials: {access_token: Q7ZK2M9XW4RT8YB3NV6HJ5PL1CF0DG7SA2EU9OQ4}",
]


def alias_bomb() -> bytes:
    lines = [b"bomb:", b"  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]".encode() for i in range(1, 10)]
    return b"\n".join(lines) + b"\n"


def _splice(data: bytes, at: int, cut: int, new: bytes) -> bytes:
    at = at % (len(data) + 1)
    return data[:at] + new + data[at + cut :]


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Up to eight byte edits: YAML's special characters, random bytes, cuts."""
    special = st.sampled_from([b":", b"-", b"[", b"]", b"{", b"}", b",", b"#", b"&", b"*", b"!", b"|", b">"])
    special |= st.sampled_from([b"'", b'"', b"%", b"@", b"`", b"\t", b"\n", b" ", b"\r", b"\x00", b"\xff", b"\\"])
    for _ in range(draw(st.integers(1, 8))):
        new = draw(special | st.binary(max_size=4))
        data = _splice(data, draw(st.integers(0, 10_000)), draw(st.integers(0, 3)), new)
    return data


@st.composite
def line_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Lines deleted, duplicated, swapped, re-indented, or hostile lines inserted."""
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "insert", "truncate"]))
        if op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent" and lines:
            lines[i] = b" " * draw(st.integers(1, 6)) + lines[i]
        elif op == "dedent" and lines:
            lines[i] = lines[i].lstrip()
        elif op == "truncate" and lines:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:
            indent = b" " * draw(st.sampled_from([0, 2, 4, 6]))
            lines.insert(i, indent + draw(st.sampled_from(HOSTILE_LINES)))
    return b"\n".join(lines)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.dates()
    | st.sampled_from(KEYS)
    | st.text(max_size=30)
    | st.text(alphabet="#@:/-. &*!|>'\"abc", max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner),
    max_leaves=12,
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*here, index))


@st.composite
def data_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Keys renamed or removed, values replaced by other types, a value shared (PyYAML writes an alias)."""
    if len(data) > 65_536:
        return data  # PyYAML's pure-Python emitter would take seconds, and count against the memory bound
    try:
        # Through the limits under test: an earlier mutation may have made a bomb that PyYAML would walk forever.
        tree = parse(data.decode("utf-8"), "x").data
    except (YamlProblem, UnicodeDecodeError):
        return data
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(tree))))
        if not path:
            tree = draw(VALUES)
            continue
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "rename", "remove", "share", "nest"]))
        if op == "replace":
            parent[last] = draw(VALUES)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS) | st.text(max_size=10))] = parent.pop(last)
        elif op == "remove":
            del parent[last]
        elif op == "share":
            shared = [1, 2]
            parent[last] = {"a": shared, "b": shared}
        else:
            value: Any = parent[last]
            for _ in range(draw(st.integers(1, 40))):
                value = [value]
            parent[last] = value
    flow = draw(st.sampled_from([None, True, False]))
    return yaml.dump(tree, default_flow_style=flow, allow_unicode=draw(st.booleans())).encode()


@st.composite
def fragment_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """A hostile fragment: an alias bomb, deep nesting, a second document, a file just over the size limit."""
    kind = draw(st.sampled_from(["bomb", "deep-block", "deep-flow", "documents", "big", "huge-list", "empty"]))
    if kind == "bomb":
        return data + b"\n" + alias_bomb()
    if kind == "deep-block":
        levels = draw(st.integers(10, 2000))
        return data + b"\nnote:\n" + b"".join(b"  " * (i + 1) + b"-\n" for i in range(min(levels, 900)))
    if kind == "deep-flow":
        levels = draw(st.integers(10, 20_000))
        return data + b"\nnote: " + b"[" * levels + b"]" * levels + b"\n"
    if kind == "documents":
        return (data + b"\n---\n") * draw(st.integers(2, 50))
    if kind == "big":
        return data + b"\n#" + b"x" * (MAX_BYTES - len(data) + draw(st.integers(0, 10)))
    if kind == "huge-list":
        return data + b"\nnote: [" + b"1," * draw(st.integers(1000, 50_000)) + b"]\n"
    return b""


MUTATIONS = [byte_mutation, line_mutation, data_mutation, fragment_mutation]


@st.composite
def mutated_campaign(draw: st.DrawFn) -> dict[str, bytes]:
    """One to three base files, each mutated one to three times by any of the mutations."""
    out: dict[str, bytes] = {}
    for rel in draw(st.lists(st.sampled_from(FILES), min_size=1, max_size=3, unique=True)):
        data = ORIGINAL[rel]
        for _ in range(draw(st.integers(1, 3))):
            data = draw(draw(st.sampled_from(MUTATIONS))(data))
        out[rel] = data
    return out


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz") / "campaign"
    shutil.copytree(BASE, root)
    yield root


@contextlib.contextmanager
def address_space_cap(extra_mb: int) -> Iterator[None]:
    """Cap this process's address space a little above what it maps now, so a regression fails instead of swapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        mapped_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    cap = mapped_kb * 1024 + extra_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _status_mb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) // 1024


def run_check(root: Path) -> tuple[int, list[str], str, int]:
    """``bot check`` in this process: exit code, output lines, error output, and the MB its peak added."""
    out, err = io.StringIO(), io.StringIO()
    # Linux resets the peak resident size (VmHWM) on "5": the peak read after is this check's alone.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = _status_mb("VmRSS:")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--campaign", str(root), "check"])
    return code, out.getvalue().splitlines(), err.getvalue(), _status_mb("VmHWM:") - before


def test_bot_check_survives_mutated_campaigns(fuzz_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the files hold, ``bot check`` exits 0 or 1 in bounded time and memory, every problem at ``file:line``."""
    for var in BASE_ENV:
        monkeypatch.setenv(var, f"value-of-{var.lower()}")
    seen = {"examples": 0, "errors": 0, "slowest": 0.0, "most_mb": 0}

    @settings(
        max_examples=EXAMPLES or 600,
        deadline=timedelta(seconds=DEADLINE_S),
        derandomize=not EXAMPLES,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(mutated_campaign())
    def check(files: dict[str, bytes]) -> None:
        try:
            for rel, data in files.items():
                (fuzz_root / rel).write_bytes(data)
            started = time.perf_counter()
            code, lines, err, grew_mb = run_check(fuzz_root)
            seen["slowest"] = max(seen["slowest"], time.perf_counter() - started)
            seen["most_mb"] = max(seen["most_mb"], grew_mb)
        finally:
            for rel in files:
                (fuzz_root / rel).write_bytes(ORIGINAL[rel])
        seen["examples"] += 1
        assert code in (0, 1), (code, lines, err)
        problems = lines if code == 1 else lines[:-1]
        if code == 0:
            assert SUMMARY.match(lines[-1]), lines
        else:
            seen["errors"] += 1
            assert problems and re.match(r"^\d+ errors?, \d+ warnings?$", err.strip()), (lines, err)
        for line in problems:
            assert PROBLEM.match(line), line
            assert "Traceback" not in line and "value-of-" not in line, line
        assert grew_mb < MEMORY_MB, f"the check's peak added {grew_mb} MB"

    with address_space_cap(extra_mb=1536):
        check()
    print(
        f"fuzz: {seen['examples']} examples, {seen['errors']} with errors, slowest check {seen['slowest']:.2f} s, "
        f"most memory added at a check's peak {seen['most_mb']} MB"
    )
    # The mutations must reach the checks: most examples are invalid, and some stay valid.
    assert seen["errors"] > seen["examples"] // 2
