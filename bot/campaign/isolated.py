"""The worker's way to load the campaign: in a short-lived child process with caps on memory and time.

Staff files are parsed and validated by ``python -m bot.campaign.isolated ROOT``, the same ``load``
``bot check`` runs, and the validated ``Campaign`` (plain dataclasses) comes back pickled on the
child's stdout. Two reasons:

- A hostile or broken file (an alias bomb, a 50 MB post, a deep nesting) costs the child, which is
  capped by ``RLIMIT_AS`` and ``RLIMIT_CPU``, never the worker: the worker keeps its last good
  campaign and reports one ``file``-less problem naming the cap that was hit.
- The long-lived worker never imports the YAML parser and pydantic nor keeps the garbage that
  parsing 10,000 files leaves in its heap (about 10 MB of an idle worker, bench/footprint.py).

The pickle is made by our own code in our own child from validated values; nothing staff wrote is
ever unpickled as code.
"""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

from bot.core.errors import ConfigError
from bot.core.model import Campaign

MEMORY_MB = 2048
"""Address space the loading child may use (``BOT_LOAD_MEMORY_MB``): far above any real campaign's needs."""

CPU_SECONDS = 120
"""CPU seconds the loading child may use (``BOT_LOAD_CPU_SECONDS``)."""


def load_isolated(root: Path) -> Campaign:
    """``bot.campaign.load(root)`` run in a capped child; ``ConfigError`` as ``load`` raises it, or naming the cap hit."""
    memory_mb = int(os.environ.get("BOT_LOAD_MEMORY_MB") or MEMORY_MB)
    cpu_seconds = int(os.environ.get("BOT_LOAD_CPU_SECONDS") or CPU_SECONDS)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot.campaign.isolated", str(root), str(memory_mb), str(cpu_seconds)],
            capture_output=True,
            timeout=cpu_seconds * 2,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError([f"{root}: loading the campaign took over {cpu_seconds * 2} s and was stopped"]) from None
    if done.returncode == 0:
        kind, value = pickle.loads(done.stdout)
        if kind == "campaign":
            return value  # type: ignore[no-any-return]
        raise ConfigError(value)
    if done.returncode in (-9, -24):  # SIGKILL / SIGXCPU: the CPU cap
        reason = f"it used more than {cpu_seconds} CPU seconds (BOT_LOAD_CPU_SECONDS)"
    elif done.returncode == _OUT_OF_MEMORY or any(sign in done.stderr for sign in _OUT_OF_MEMORY_SIGNS):
        reason = f"it needed more than {memory_mb} MB of memory (BOT_LOAD_MEMORY_MB)"
    else:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        reason = f"the loader exited with code {done.returncode}: {last[0][:300]}"
    raise ConfigError([f"{root}: loading the campaign was stopped: {reason}"])


_OUT_OF_MEMORY = 3
# How running out of address space shows when it strikes outside ``load`` (an import, a shared library).
_OUT_OF_MEMORY_SIGNS = (
    b"MemoryError",
    b"failed to map segment",
    b"Cannot allocate memory",
    b"memory allocation of",  # Rust's allocation failure (pydantic-core), then an abort
)


def _child(root: Path, memory_mb: int, cpu_seconds: int) -> int:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    # Our own code is imported before the memory cap: out of memory inside an import can end in ways that
    # do not say so (a SystemError, a Rust abort), and only what staff wrote needs capping.
    from bot.campaign.loader import load

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))

    try:
        result: tuple[str, object] = ("campaign", load(root))
    except ConfigError as err:
        result = ("problems", err.problems)
    except MemoryError:
        return _OUT_OF_MEMORY
    except OSError as exc:  # a module imported on first use (cron's) could not be mapped
        if exc.errno == errno.ENOMEM:
            return _OUT_OF_MEMORY
        raise
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
