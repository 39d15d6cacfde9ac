"""What the long-lived commands load: modules a worker or `bot check` never uses stay out of memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "tests/cases/base"
TEXTS = [
    "Free Andrei and Irina #FreeAndreiandIrina",
    "Свободу Андрею и Ирине! 释放他们 👨‍👩‍👧 ✊🏽 🇧🇾",
    "Sign at example.org/petition and https://www.article19.org/x?y=1 (t.co too)",
]


def _run(script: str, *, path: list[Path] = ()) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in [*path, REPO])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_check_of_an_x_campaign_measures_x_text_without_importing_pkg_resources(tmp_path: Path) -> None:
    """`bot check` counts X texts with twitter-text but never imports pkg_resources (5 MB, 0.2 s)."""
    root = tmp_path / "campaign"
    shutil.copytree(BASE, root)
    # The X variant is not plainly under 280 (at most two per character): only twitter-text can say it fits.
    launch = root / "posts" / "launch.yaml"
    variant = 'x: "Andrei and Irina have been jailed in Belarus for one year. #FreeAndreiandIrina"'
    launch.write_text(launch.read_text().replace(variant, f"x: {'Свобода ' * 20}"), encoding="utf-8")
    script = (
        "import json, sys\n"
        "from bot.cli import main\n"
        f"code = main(['--campaign', {str(root)!r}, 'check', '--no-warnings'])\n"
        "print(json.dumps({'code': code, 'twitter_text': 'twitter_text' in sys.modules,\n"
        "                  'pkg_resources': 'pkg_resources' in sys.modules}))\n"
    )
    assert _run(script)[-1] == {"code": 0, "twitter_text": True, "pkg_resources": False}


def test_x_text_counts_and_finds_links_as_the_ordinary_twitter_text_import() -> None:
    """twitter-text imported without pkg_resources gives the same lengths and links, and pkg_resources still imports."""
    measure = (
        "import json\n"
        f"for text in {TEXTS!r}:\n"
        "    print(json.dumps({'length': parse_tweet(text).weightedLength,\n"
        "                      'links': [u['url'] for u in extract_urls_with_indices(text)]}))\n"
    )
    lean = _run(
        "import sys\n"
        "from bot.platforms.x.text import extract_urls_with_indices, parse_tweet\n"
        "assert 'pkg_resources' not in sys.modules\n" + measure + "import pkg_resources\n"
        "print(json.dumps({'real_pkg_resources': hasattr(pkg_resources, 'working_set')}))\n"
    )
    ordinary = _run(
        "from twitter_text import parse_tweet\n"
        "from twitter_text.extract_urls import extract_urls_with_indices\n" + measure
    )
    assert lean[:-1] == ordinary
    assert [entry["length"] for entry in ordinary] == [41, 41, 89]  # emoji sequences count 2 each, links 23
    assert lean[-1] == {"real_pkg_resources": True}


def test_x_text_falls_back_to_the_ordinary_import_when_twitter_text_needs_more_of_pkg_resources(tmp_path: Path) -> None:
    """A twitter-text that calls more than resource_string at import is imported again with the real pkg_resources."""
    package = tmp_path / "twitter_text"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import pkg_resources\n"
        "FOUND = pkg_resources.get_distribution('pyyaml').project_name\n"
        "def parse_tweet(text):\n"
        "    return len(text)\n"
    )
    (package / "extract_urls.py").write_text("def extract_urls_with_indices(text):\n    return []\n")
    script = (
        "import json, sys\n"
        "from bot.platforms.x.text import parse_tweet\n"
        "import twitter_text\n"
        "print(json.dumps({'found': twitter_text.FOUND, 'length': parse_tweet('abc'),\n"
        "                  'real': hasattr(sys.modules['pkg_resources'], 'working_set')}))\n"
    )
    assert _run(script, path=[tmp_path]) == [{"found": "pyyaml", "length": 3, "real": True}]


ARENAS = (
    "import ctypes, json, os, sys, tempfile, threading\n"
    "if sys.argv[1] == 'capped':\n"
    "    from bot.cli.run import limit_malloc_arenas\n"
    "    assert limit_malloc_arenas()\n"
    "held, ready = [], threading.Barrier(9)\n"
    "def work():\n"
    "    held.append(bytearray(100_000))  # under the mmap threshold: from the thread's arena\n"
    "    ready.wait()\n"
    "threads = [threading.Thread(target=work) for _ in range(8)]\n"
    "for t in threads: t.start()\n"
    "ready.wait()\n"
    "libc = ctypes.CDLL('libc.so.6')\n"
    "libc.fdopen.restype = ctypes.c_void_p\n"
    "with tempfile.TemporaryFile() as out:\n"
    "    stream = ctypes.c_void_p(libc.fdopen(os.dup(out.fileno()), b'w'))\n"
    "    libc.malloc_info(0, stream)\n"
    "    libc.fclose(stream)\n"
    "    out.seek(0)\n"
    "    print(json.dumps({'arenas': out.read().decode().count('<heap nr='), 'cap': max(2, os.cpu_count() or 1)}))\n"
)


@pytest.mark.skipif(sys.platform != "linux" or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only")
def test_worker_caps_malloc_arenas_so_publish_threads_share_them() -> None:
    """With the worker's cap, eight threads allocating at once share at most one arena per core, not one each."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    runs = {}
    for mode in ("capped", "default"):
        done = subprocess.run(
            [sys.executable, "-c", ARENAS, mode],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[mode] = json.loads(done.stdout)
    assert runs["capped"]["arenas"] <= runs["capped"]["cap"] < runs["default"]["arenas"]


def test_worker_without_an_http_port_imports_no_web_stack() -> None:
    """Without BOT_HTTP_PORT, `bot run` starts no endpoint and never imports jinja2 or bot.web (about 2 MB)."""
    script = (
        "import json, os, sys\n"
        "os.environ.pop('BOT_HTTP_PORT', None)\n"
        "from bot.cli.run import _start_http\n"
        "http = _start_http(None)\n"
        "print(json.dumps({'http': http, 'web': sorted(m for m in sys.modules if m == 'jinja2' or m.startswith('bot.web'))}))\n"
    )
    assert _run(script) == [{"http": None, "web": []}]


def test_tracker_loads_icu_only_when_a_mention_is_judged_against_blocked_words() -> None:
    """The tracker imports no ICU or stemmer until a blocked-word list meets its first mention, and then matches as before."""
    script = (
        "import json, sys\n"
        "import bot.resharing.tracker\n"
        "from bot.core.values import Mention\n"
        "from bot.resharing.policy import Rules, blocked_word\n"
        "loaded = lambda: sorted(m for m in ('icu', 'Stemmer', 'bot.resharing.matching') if m in sys.modules)\n"
        "at_start = loaded()\n"
        "mention = Mention(remote_id='1', url='u', author_id='a', author_handle='someone', author_name='',\n"
        "                  text='What a tr41t0r', created_at=None)\n"
        "none = blocked_word(mention, Rules())\n"
        "after_empty_list = loaded()\n"
        "hit = blocked_word(mention, Rules(blocked_words=('traitor',)))\n"
        "print(json.dumps({'start': at_start, 'empty': after_empty_list, 'none': none, 'hit': hit, 'end': loaded()}))\n"
    )
    found = _run(script)[-1]
    assert found["start"] == found["empty"] == [] and found["none"] is None
    assert "traitor" in found["hit"] and found["end"] == ["Stemmer", "bot.resharing.matching", "icu"]


def test_platform_registry_imports_only_the_adapters_looked_up() -> None:
    """Importing bot.platforms loads no adapter; looking up X loads X's alone, and every name stays listed."""
    script = (
        "import json, sys\n"
        "from bot.platforms import REGISTRY\n"
        "adapters = lambda: sorted(m.split('.')[2] for m in sys.modules if m.count('.') == 2\n"
        "                          and m.startswith('bot.platforms.') and m != 'bot.platforms.base')\n"
        "at_import = adapters()\n"
        "x = REGISTRY['x']\n"
        "print(json.dumps({'import': at_import, 'x': x.__name__, 'after_x': adapters(), 'names': sorted(REGISTRY),\n"
        "                  'mastodon': REGISTRY['mastodon'].__name__}))\n"
    )
    found = _run(script)[-1]
    assert found["import"] == [] and found["x"] == "X" and found["after_x"] == ["x"]
    assert {"x", "mastodon", "bluesky"} <= set(found["names"]) and found["mastodon"] == "Mastodon"


TRIM = (
    "import json\n"
    "from bot.worker.runtime import release_freed_memory\n"
    "def rss():\n"
    "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024\n"
    "blocks = [bytearray(16_384) for _ in range(2_000)]  # 32 MB from the heap, under the mmap threshold\n"
    "del blocks[::2]  # 16 MB free between live blocks: glibc keeps it\n"
    "kept = rss()\n"
    "released = release_freed_memory()\n"
    "print(json.dumps({'released': released, 'kept': kept, 'after': rss()}))\n"
)


@pytest.mark.skipif(sys.platform != "linux" or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only")
def test_release_freed_memory_gives_back_what_lies_between_live_blocks() -> None:
    """Memory freed between live heap blocks stays in the process until the worker's malloc_trim gives it back."""
    found = _run(TRIM)[-1]
    assert found["released"] is True
    assert found["after"] <= found["kept"] - 10  # of the 16 MB freed


def test_server_check_of_a_campaign_without_mastodon_imports_no_mastodon_adapter() -> None:
    """The worker's start-up media check asks only Mastodon servers, so without a Mastodon account it loads none of it."""
    script = (
        "import json, sys\n"
        "from types import SimpleNamespace\n"
        "from bot.worker.runtime import Worker\n"
        "campaign = SimpleNamespace(accounts={'x-index': SimpleNamespace(id='x-index', platform='x')}, posts={})\n"
        "Worker.check_servers(SimpleNamespace(campaign=campaign))\n"
        "print(json.dumps({'mastodon': sorted(m for m in sys.modules if m.startswith('bot.platforms.mastodon'))}))\n"
    )
    assert _run(script) == [{"mastodon": []}]
