"""X's exact count (twitter-text) is paid only for texts that may be near the limit, never silently skipped for them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.platforms.base import surely_fits
from bot.platforms.x import X

NEAR = "Andrei and Irina have been jailed in Belarus for one year. " * 4 + "https://example.org/petition"


def _imports_twitter_text(code: str) -> bool:
    run = f"import sys\n{code}\nprint('twitter_text' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("Free Andrei and Irina #FreeAndreiandIrina", True),
        ("ж" * 140, True),  # two each at most: 280
        ("ж" * 141, False),
        ("a.b " * 12, False),  # twelve dots: possibly twelve links of 23
        (NEAR, False),
    ],
)
def test_the_bound_never_says_fits_when_x_counts_more(text: str, fits: bool) -> None:
    """Whenever the bound says a text fits, X's own count agrees; texts it cannot vouch for are counted."""
    assert surely_fits(text, 280) is fits
    if fits:
        assert X.measure_text(text) <= 280


def test_short_texts_are_validated_without_twitter_text_and_warm_up_counts_the_rest() -> None:
    """A worker whose X texts are short never loads twitter-text; one with a near-limit text loads it at start."""
    short = "from bot.platforms import warm_up; warm_up(['x'], [('x', 'Free Andrei and Irina #FreeAndreiandIrina')])"
    assert not _imports_twitter_text(short)
    assert _imports_twitter_text(f"from bot.platforms import warm_up; warm_up(['x'], [('x', {NEAR!r})])")
