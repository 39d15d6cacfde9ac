"""Cost per mention of the reshare policy's blocked-word check, before (a git revision) and now, side by side.

    .venv/bin/python bench/policy_speed.py [--before REV] [--mentions N]

The "before" policy is loaded from ``git show REV:bot/resharing/policy.py`` (default: the revision
before the evasion-proof matcher), so both run on the same machine and the same posts.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.core.values import Mention  # noqa: E402
from bot.resharing import policy as now_policy  # noqa: E402

BLOCKED = (
    "traitor",
    "traitors",
    "extremist",
    "extremists",
    "terrorist",
    "crypto",
    "fake news",
    "предатель",
    "здраднік",
)
WORDS = (
    "Free Andrei and Irina now journalists are not criminals the trial is a farce traditional extremely "
    "Свободу Андрею и Ирине журналистика не преступление Волю Андрэю і Ірыне журналістыка не злачынства"
).split()


def load_before(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:bot/resharing/policy.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("policy_before")
    module.__dict__["__name__"] = "policy_before"
    sys.modules["policy_before"] = module  # dataclasses look their module up while building classes
    exec(compile(source, f"{rev}:policy.py", "exec"), module.__dict__)
    return module


def mentions(n: int, rng: random.Random) -> list[Mention]:
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 45))) + " #FreeAndreiandIrina"
        out.append(
            Mention(
                remote_id=str(i),
                url=f"https://example/{i}",
                author_id=f"u{i}",
                author_handle=f"fan{i}",
                author_name=f"Supporter {i}",
                text=text,
                created_at=datetime(2022, 1, 12, tzinfo=UTC),
                alt_texts=("Red banner with white letters",) if i % 3 == 0 else (),
            )
        )
    return out


def per_mention_us(module: types.ModuleType, posts: list[Mention]) -> float:
    rules = module.Rules(blocked_words=BLOCKED)
    start = time.perf_counter()
    for mention in posts:
        module.blocked_word(mention, rules)
    return (time.perf_counter() - start) / len(posts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="21f19e1", help="git revision of the old policy")
    parser.add_argument("--mentions", type=int, default=3000)
    args = parser.parse_args()
    before = load_before(args.before)
    posts = mentions(args.mentions, random.Random(7))
    from bot.resharing import matching

    matching.token_keys.cache_clear()
    build = time.perf_counter()
    matching.matcher.cache_clear()
    now_policy.Rules(blocked_words=BLOCKED).blocked  # noqa: B018 - builds the campaign's matcher once
    build_ms = (time.perf_counter() - build) * 1000
    first_now = per_mention_us(now_policy, posts)  # token cache filling as it goes
    results = [
        ("before", per_mention_us(before, posts), per_mention_us(before, posts)),
        ("now", first_now, per_mention_us(now_policy, posts)),
    ]
    print(f"{args.mentions} mentions of 15-45 words, {len(BLOCKED)} blocked words; matcher built in {build_ms:.1f} ms")
    print(f"{'policy':<8} {'first pass µs/mention':>22} {'warm µs/mention':>16}")
    for name, first, warm in results:
        print(f"{name:<8} {first:>22.1f} {warm:>16.1f}")


if __name__ == "__main__":
    main()
