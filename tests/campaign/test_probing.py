"""Media probing for checks: results kept in state/media-probes.json, so a check with known files starts no child."""

from __future__ import annotations

import json
import os

import pytest

from bot.campaign import probing
from sandboxes.media import make_image


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Each test starts as a new `bot check` process would: nothing known in memory."""
    monkeypatch.setattr(probing, "_known", {})


def test_a_second_check_takes_the_results_from_the_cache_and_starts_no_child(tmp_path, monkeypatch):
    """The first prober probes in a child and writes the cache; a new process's prober reads it and probes nothing."""
    banner = make_image(tmp_path / "posts" / "media" / "banner.png", (800, 400))
    cache = tmp_path / probing.CACHE
    cache.parent.mkdir()  # the worker's state/ folder
    first = probing.Prober(cache=cache)
    first.warm()
    (found,) = first.probe_all([banner]).values()
    assert (found.kind, found.width, found.height) == ("image", 800, 400) and first.children == 1
    assert json.loads(cache.read_text())["files"][0][:2] == [str(banner), banner.stat().st_size]

    monkeypatch.setattr(probing, "_known", {})
    again = probing.Prober(cache=cache)
    again.warm()
    assert again.probe_all([banner]) == {banner: found}
    assert again.children == 0


def test_a_changed_file_is_probed_again_and_the_cache_keeps_only_current_files(tmp_path, monkeypatch):
    """A file edited since the last check is probed anew; the cache then holds its new result only."""
    banner = make_image(tmp_path / "banner.png", (800, 400))
    cache = tmp_path / probing.CACHE
    cache.parent.mkdir()
    probing.Prober(cache=cache).probe_all([banner])
    make_image(banner, (1200, 600))
    os.utime(banner, ns=(1, 1))  # a different modification time even on a coarse clock
    monkeypatch.setattr(probing, "_known", {})
    prober = probing.Prober(cache=cache)
    prober.warm()
    (found,) = prober.probe_all([banner]).values()
    assert (found.width, found.height, prober.children) == (1200, 600, 1)
    assert [entry[2] for entry in json.loads(cache.read_text())["files"]] == [1]


def test_an_unreadable_cache_is_ignored(tmp_path):
    """A cache file that is not ours (or half written by hand) only means probing again."""
    banner = make_image(tmp_path / "banner.png", (800, 400))
    cache = tmp_path / probing.CACHE
    cache.parent.mkdir()
    cache.write_text("{not json")
    prober = probing.Prober(cache=cache)
    prober.warm()
    (found,) = prober.probe_all([banner]).values()
    assert found.kind == "image" and prober.children == 1
    assert json.loads(cache.read_text())["version"] == probing.CACHE_VERSION


def test_a_broken_file_stays_reported_from_the_cache(tmp_path, monkeypatch):
    """A file that cannot be read is cached with its error, and the next check reports the same error."""
    whole = make_image(tmp_path / "whole.png", (800, 400)).read_bytes()
    broken = tmp_path / "cut.png"
    broken.write_bytes(whole[:80])  # a PNG cut short: Pillow cannot read it
    cache = tmp_path / probing.CACHE
    cache.parent.mkdir()
    (error,) = probing.Prober(cache=cache).probe_all([broken]).values()
    assert isinstance(error, str)
    monkeypatch.setattr(probing, "_known", {})
    prober = probing.Prober(cache=cache)
    assert prober.probe_all([broken]) == {broken: error} and prober.children == 0


def test_without_a_state_folder_nothing_is_written(tmp_path):
    """`bot check` in a folder where no worker ran creates no state/ folder for its cache."""
    banner = make_image(tmp_path / "banner.png", (800, 400))
    probing.Prober(cache=tmp_path / probing.CACHE).probe_all([banner])
    assert not (tmp_path / "state").exists()
