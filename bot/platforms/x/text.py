"""twitter-text, X's own rules for counting text and finding links, imported without pkg_resources.

twitter-text-parser 3.0 imports pkg_resources only to read ``emoji-test.txt``, a data file next
to its module. Importing pkg_resources scans every installed distribution: about 5 MB of a
worker's memory for its whole life, and 0.2 s wherever X texts are counted (the worker's start,
``bot check`` when a text may be near X's limit). For the length of that one
import, a stand-in offering only ``resource_string`` takes its place. If a later twitter-text asks
pkg_resources for more, the stand-in fails and twitter-text is imported the ordinary way.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


def _resource_string(package: str, name: str) -> bytes:
    module_file = sys.modules[package].__file__
    if module_file is None:  # not a regular package: the ordinary import below takes over
        raise FileNotFoundError(name)
    return (Path(module_file).parent / name).read_bytes()


def _import_without_pkg_resources() -> None:
    if "twitter_text" in sys.modules or "pkg_resources" in sys.modules:
        return  # imported already, or pkg_resources is paid for anyway
    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
    # Only for one import: the worker and `bot check` take it on their main thread at start-up, and
    # nothing else in the bot imports pkg_resources.
    sys.modules["pkg_resources"] = stand_in
    try:
        import twitter_text  # noqa: F401
    except Exception:  # noqa: BLE001  (the ordinary import below raises whatever is really wrong)
        for name in [n for n in sys.modules if n == "twitter_text" or n.startswith("twitter_text.")]:
            del sys.modules[name]
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


_import_without_pkg_resources()

from twitter_text import parse_tweet  # noqa: E402
from twitter_text.extract_urls import extract_urls_with_indices  # noqa: E402

__all__ = ["extract_urls_with_indices", "parse_tweet"]
