"""Secrets never reach an output: every registered value is cut from text, in its plain and encoded forms.

One Aho-Corasick automaton (pyahocorasick) holds every form of every secret, so a line costs one
pass whatever the number of secrets. It is rebuilt lazily, on the first redaction after the set
changed, so registering many secrets costs one build. Besides registered values, credentials in
``Authorization`` headers, ``Bearer`` tokens and ``Basic`` user:password pairs are cut whoever
issued them (a refreshed token may not have been registered yet).

Secrets that are no longer in use expire: ``retire_secret`` (or a generation that a campaign reload
renews) marks a secret retired, and a retired secret neither registered again nor seen in a line
for ``retention`` seconds is dropped.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

REDACTED = "[redacted]"

MIN_LENGTH = 6
"""Shorter values are not registered: they would cut ordinary words, and real credentials are long."""

RETENTION = 24 * 3600.0
"""Default seconds a retired secret stays redacted after it was last registered, retired or seen."""

_MIN_BASE64_CORE = 8  # a shorter base64 fragment could occur in unrelated base64 by chance
# A base64 match redacts the whole base64 word around it, so a fragment's first characters are enough
# (64**12 makes a chance match moot); exact forms are checked in full after their probe matched.
_PROBE = 12
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


@functools.cache
def _header_patterns() -> tuple[re.Pattern[str], ...]:
    """Header forms, found case-insensitively (compiled on first use: 5 ms that ``bot check`` never needs)."""
    return (
        re.compile(r"""(\b(?:proxy-)?authorization\\?['"]?\s*[:=]\s*)(\\?['"])(.*?)(\2)""", re.IGNORECASE),
        re.compile(r"""(\b(?:proxy-)?authorization[ \t]*:[ \t]*)([^\s'"\\][^\r\n'"\\]*)""", re.IGNORECASE),
        re.compile(r"(\bbearer\s+)([A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE),
        re.compile(r"(\bbasic\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE),
        re.compile(r"([A-Za-z][A-Za-z0-9_-]*\s+)\S"),  # a scheme word before a header value, kept
    )


def encoded_forms(secret: str) -> tuple[set[str], set[str]]:
    """The text forms a secret takes in lines: (exact forms, base64 fragments).

    A base64 fragment is the part of the encoding that does not depend on the bytes around the
    secret, for each of the three alignments, so it is found inside the base64 of any longer
    string (``user:secret`` in Basic auth); a match redacts the whole base64 word around it.
    """
    exact = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]}
    for quoted in (
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
    ):
        exact.add(quoted)
        # Some encoders write lower-case hex (%2f); percent-decoding accepts both.
        exact.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    raw = secret.encode("utf-8")
    fragments: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        # Offset 0 also covers the secret's own encoding: its fragment is a prefix of it.
        for offset in range(3):
            data = b"\0" * offset + raw
            text = encode(data).decode("ascii")
            core = text[4 if offset else 0 : 4 * (len(data) // 3)]
            if len(core) >= _MIN_BASE64_CORE:
                fragments.add(core)
    return exact, fragments


@dataclass
class _Secret:
    forms: tuple[set[str], set[str]]
    generation: int
    touched: float  # last registered, retired or seen in a line
    retired: bool = False


@dataclass
class _Matcher:
    """An immutable snapshot: the automaton over every form and the secret each form belongs to."""

    automaton: Any  # ahocorasick.Automaton; the library ships no type stubs
    records: dict[str, _Secret] = field(default_factory=dict)


class SecretRedactor:
    """The registry of secrets and the matcher over their forms; safe to share between threads."""

    def __init__(self, *, retention: float = RETENTION, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.retention = retention
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self._generation = 0
        self._matcher: _Matcher | None = None
        self._dirty = False
        self._next_expiry = float("inf")

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def register(self, value: str | None) -> None:
        """Redact ``value`` from now on; registering it again renews it (and un-retires it)."""
        if not value or len(value) < MIN_LENGTH:
            return
        with self._lock:
            known = self._secrets.get(value)
            if known is not None:
                known.generation, known.touched, known.retired = self._generation, self._monotonic(), False
                return
            self._secrets[value] = _Secret(encoded_forms(value), self._generation, self._monotonic())
            self._dirty = True

    def retire(self, value: str) -> None:
        """``value`` is no longer in use: drop it once unseen for ``retention`` seconds."""
        with self._lock:
            known = self._secrets.get(value)
            if known is not None:
                known.touched, known.retired = self._monotonic(), True
                self._next_expiry = min(self._next_expiry, known.touched + self.retention)

    def new_generation(self) -> int:
        """Start a generation: secrets registered from now on belong to it (call before a campaign reload)."""
        with self._lock:
            self._generation += 1
            return self._generation

    def retire_older_than(self, generation: int) -> int:
        """Retire every secret not registered since ``generation`` began; returns how many."""
        with self._lock:
            now, count = self._monotonic(), 0
            for record in self._secrets.values():
                if record.generation < generation and not record.retired:
                    record.touched, record.retired = now, True
                    count += 1
            if count:
                self._next_expiry = min(self._next_expiry, now + self.retention)
            return count

    def expire(self) -> int:
        """Drop retired secrets unseen for ``retention`` seconds; returns how many (redaction calls this too)."""
        with self._lock:
            now = self._monotonic()
            gone = [v for v, r in self._secrets.items() if r.retired and now - r.touched >= self.retention]
            for value in gone:
                del self._secrets[value]
            retired = [r.touched for r in self._secrets.values() if r.retired]
            self._next_expiry = min(retired) + self.retention if retired else float("inf")
            if gone:
                self._dirty = True
            return len(gone)

    def clear(self) -> None:
        """Forget every secret (for tests and benchmarks)."""
        with self._lock:
            self._secrets.clear()
            self._dirty, self._next_expiry = True, float("inf")

    def _current(self) -> _Matcher | None:
        if self._next_expiry <= self._monotonic():
            self.expire()
        if self._dirty:
            with self._lock:
                if self._dirty:  # another thread may have built it while this one waited
                    self._matcher = self._build(self._secrets)
                    self._dirty = False
        return self._matcher

    @staticmethod
    def _build(secrets: dict[str, _Secret]) -> _Matcher | None:
        if not secrets:
            return None
        # The automaton holds each form's first PROBE characters only, and a hit is checked against the
        # whole form: a third of the nodes for 40-character tokens, so a rebuild (a refreshed token) is cheap.
        candidates: dict[str, list[tuple[str, bool, str]]] = {}
        for value, record in secrets.items():
            exact, fragments = record.forms
            for form in exact:
                candidates.setdefault(form[:_PROBE], []).append((form, False, value))
            for form in fragments:
                candidates.setdefault(form[:_PROBE], []).append((form[:_PROBE], True, value))
        automaton = ahocorasick.Automaton()
        for probe, forms in candidates.items():
            automaton.add_word(probe, (len(probe), tuple(forms)))
        automaton.make_automaton()
        return _Matcher(automaton, dict(secrets))

    def _spans(self, matcher: _Matcher, text: str) -> list[tuple[int, int]]:
        spans = []
        for end, (length, forms) in matcher.automaton.iter(text):
            begin = end - length + 1
            for form, in_base64, value in forms:
                start, stop = begin, begin + len(form)
                if in_base64:  # the whole base64 word: its edges still encode bytes of the secret
                    while start > 0 and text[start - 1] in _BASE64_CHARS:
                        start -= 1
                    while stop < len(text) and (text[stop] in _BASE64_CHARS or text[stop] == "="):
                        stop += 1
                elif not text.startswith(form, begin):
                    continue
                spans.append((start, stop))
                record = matcher.records.get(value)
                if record is not None and record.retired:
                    record.touched = self._monotonic()  # still echoed somewhere: keep it
        return spans

    def __call__(self, text: str) -> str:
        """``text`` with every registered secret and every header credential replaced by ``[redacted]``."""
        if not text:
            return text
        matcher = self._current()
        if matcher is not None:
            spans = self._spans(matcher, text)
            if spans:
                text = _cut(text, spans)
        lowered = text.lower()
        if "authorization" in lowered or "bearer" in lowered or "basic" in lowered:
            text = self._headers(text, matcher)
        return text

    def _headers(self, text: str, matcher: _Matcher | None) -> str:
        quoted, bare, bearer, basic, scheme = _header_patterns()

        def keep_scheme(value: str) -> str:
            if value == REDACTED:
                return value
            word = scheme.match(value)
            return (word.group(1) if word else "") + REDACTED

        text = quoted.sub(lambda m: m.group(1) + m.group(2) + keep_scheme(m.group(3)) + m.group(4), text)
        text = bare.sub(lambda m: m.group(1) + keep_scheme(m.group(2)), text)
        text = bearer.sub(lambda m: m.group(1) + REDACTED, text)
        return basic.sub(
            lambda m: m.group(1) + REDACTED if self._is_credential(m.group(2), matcher) else m.group(0), text
        )

    def _is_credential(self, word: str, matcher: _Matcher | None) -> bool:
        """Whether a Basic value decodes to a user:password pair or to anything holding a secret."""
        try:
            decoded = base64.b64decode(word, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not decoded.isprintable():
            return False
        if ":" in decoded:
            return True
        return matcher is not None and bool(self._spans(matcher, decoded))


def _cut(text: str, spans: Iterable[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    pieces: list[str] = []
    position = 0
    for start, stop in merged:
        pieces += (text[position:start], REDACTED)
        position = stop
    pieces.append(text[position:])
    return "".join(pieces)


secrets = SecretRedactor()
"""The process's registry: what ``register_secret`` fills and every log line passes through."""


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log line and from ``redact``; registering again renews it."""
    secrets.register(value)


def retire_secret(value: str) -> None:
    """``value`` is out of use: it stays redacted until unseen for the retention time, then is dropped."""
    secrets.retire(value)


def new_generation() -> int:
    """Begin a generation (before a campaign reload re-resolves its credentials)."""
    return secrets.new_generation()


def retire_older_than(generation: int) -> int:
    """Retire the secrets not registered again since ``generation`` began (after the reload)."""
    return secrets.retire_older_than(generation)


def set_retention(seconds: float) -> None:
    """How long a retired secret stays redacted after it was last registered, retired or seen."""
    secrets.retention = seconds


def redact(text: str) -> str:
    """``text`` without any registered secret or header credential: for error texts that are stored or shown."""
    return secrets(text)
