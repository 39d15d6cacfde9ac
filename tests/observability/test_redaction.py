"""Redaction: every registered secret is cut in its plain and encoded forms, at any number of secrets, and retired ones expire."""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse

import pytest

from bot.observability import redaction
from bot.observability.redaction import REDACTED, SecretRedactor

SECRET = "s3cr3t/Tok+en=value~42"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redact() -> SecretRedactor:
    redactor = SecretRedactor()
    redactor.register(SECRET)
    return redactor


def test_plain_secret_is_cut_anywhere_in_text(redact: SecretRedactor) -> None:
    """The secret is replaced wherever it occurs, and the rest of the text is kept."""
    assert redact(f"before {SECRET} middle {SECRET}after") == f"before {REDACTED} middle {REDACTED}after"


def test_text_without_secrets_is_returned_unchanged(redact: SecretRedactor) -> None:
    """Ordinary text, including words such as Basic, passes untouched."""
    text = "Basic plan: 3 posts published to @andrei on x, token bucket refilled"
    assert redact(text) == text


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote(s),
        lambda s: urllib.parse.quote_plus(s),
        lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(s, safe="")),
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.b64encode(s.encode()).decode().rstrip("="),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
    ],
    ids=["quote", "quote-slash-safe", "quote_plus", "lower-hex", "b64", "b64-unpadded", "urlsafe", "urlsafe-unpadded"],
)
def test_encoded_forms_are_cut(redact: SecretRedactor, encode) -> None:
    """The URL-encoded and base64 forms a server may echo are cut whole."""
    form = encode(SECRET)
    out = redact(f"url=https://h/cb?t={form}&x=1")
    assert SECRET not in out and form not in out
    assert out.startswith("url=https://h/cb?t=") and out.endswith("&x=1")


@pytest.mark.parametrize("prefix", ["", "u:", "us:", "user:", "account-name:"])
def test_base64_of_a_longer_string_holding_the_secret_is_cut(redact: SecretRedactor, prefix: str) -> None:
    """Whatever the secret's offset inside encoded data (Basic user:password), the whole base64 word is cut."""
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        word = encode(f"{prefix}{SECRET}&tail".encode()).decode()
        assert redact(f"X-Echo: {word} end") == f"X-Echo: {REDACTED} end"


def test_basic_header_of_a_short_secret_is_cut_by_decoding() -> None:
    """A Basic value decoding to something holding a secret is cut, even when too short for a base64 fragment."""
    redactor = SecretRedactor()
    redactor.register("pw1234")
    value = base64.b64encode(b"ab" + b"pw1234").decode()  # no ':' and a secret at an awkward offset
    assert redactor(f"sent Basic {value}") == f"sent Basic {REDACTED}"


def test_basic_user_password_pair_is_cut_even_if_unregistered() -> None:
    """A Basic header value that decodes to user:password is a credential whoever registered it."""
    value = base64.b64encode(b"someone:hunter2").decode()
    assert SecretRedactor()(f"Authorization: Basic {value}") == f"Authorization: Basic {REDACTED}"
    assert SecretRedactor()(f"basic {value}!") == f"basic {REDACTED}!"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def.ghi", f"Authorization: Bearer {REDACTED}"),
        ("{'Authorization': 'OAuth oauth_nonce=\"1\", oauth_signature=\"x\"', 'Host': 'h'}", None),
        ('{"authorization": "tok_live_123456"}', f'{{"authorization": "{REDACTED}"}}'),
        ('"reason": "headers {\\"Authorization\\": \\"Bearer zz.yy.xx\\"}"', None),
        ("retrying with bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"retrying with bearer {REDACTED}"),
        ("Proxy-Authorization: Basic Zm9vOmJhcg==", f"Proxy-Authorization: Basic {REDACTED}"),
    ],
)
def test_header_credentials_are_cut_unregistered(text: str, expected: str | None) -> None:
    """Authorization values and Bearer tokens are cut even when nobody registered them; scheme words stay."""
    out = SecretRedactor()(text)
    if expected is not None:
        assert out == expected
    assert REDACTED in out
    for leaked in ("abc.def", "oauth_signature", "tok_live", "zz.yy", "eyJhbGci", "Zm9vOmJhcg"):
        assert leaked not in out
    if "Host" in text:
        assert out.endswith("'Host': 'h'}")


def test_secret_inside_bearer_header_is_cut_once(redact: SecretRedactor) -> None:
    """A registered secret in a Bearer header leaves one marker, not a nested one."""
    assert redact(f"Authorization: Bearer {SECRET}") == f"Authorization: Bearer {REDACTED}"


def test_overlapping_secrets_leave_one_marker() -> None:
    """Secrets that overlap or contain one another are cut as one span."""
    redactor = SecretRedactor()
    for value in ("abcdef123", "def123xyz", "abcdef123xyz-long"):
        redactor.register(value)
    assert redactor("[abcdef123xyz]") == f"[{REDACTED}]"
    assert redactor("(abcdef123xyz-long)") == f"({REDACTED})"


def test_short_values_are_not_registered() -> None:
    """Values under six characters are ignored: they would cut ordinary words."""
    redactor = SecretRedactor()
    redactor.register("abc")
    redactor.register(None)
    redactor.register("")
    assert len(redactor) == 0
    assert redactor("abc abc") == "abc abc"


def test_many_registrations_build_the_matcher_once(monkeypatch) -> None:
    """Registering 2,000 secrets one by one builds the automaton once, at the next redaction."""
    builds = []
    real = SecretRedactor._build
    monkeypatch.setattr(SecretRedactor, "_build", staticmethod(lambda s: builds.append(len(s)) or real(s)))
    redactor = SecretRedactor()
    for i in range(2000):
        redactor.register(f"account-{i:04d}-token-value")
    assert builds == []
    assert redactor("x account-1999-token-value y") == f"x {REDACTED} y"
    assert redactor("account-0000-token-value") == REDACTED
    assert builds == [2000]


def test_concurrent_registration_and_redaction() -> None:
    """Threads registering while others redact never miss a secret registered before their call."""
    redactor = SecretRedactor()
    failures: list[str] = []

    def worker(n: int) -> None:
        for i in range(200):
            value = f"thread{n}-secret-{i:03d}"
            redactor.register(value)
            if value in redactor(f"<{value}>"):
                failures.append(value)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(redactor) == 800


def test_retired_secret_expires_after_retention() -> None:
    """A retired secret is still cut during the retention time and dropped after it."""
    clock = FakeClock()
    redactor = SecretRedactor(retention=60, monotonic=clock)
    redactor.register(SECRET)
    redactor.retire(SECRET)
    clock.now += 59
    assert redactor(SECRET) == REDACTED
    clock.now += 59  # it was just seen in a line: the retention counts from there
    assert redactor(SECRET) == REDACTED
    clock.now += 61
    assert redactor(SECRET) == SECRET
    assert SECRET not in redactor


def test_registering_again_revives_a_retired_secret() -> None:
    """A secret registered again after retirement never expires while in use."""
    clock = FakeClock()
    redactor = SecretRedactor(retention=60, monotonic=clock)
    redactor.register(SECRET)
    redactor.retire(SECRET)
    redactor.register(SECRET)
    clock.now += 3600
    assert redactor(SECRET) == REDACTED


def test_unretired_secrets_never_expire() -> None:
    """A secret in use stays redacted however long it goes unseen."""
    clock = FakeClock()
    redactor = SecretRedactor(retention=60, monotonic=clock)
    redactor.register(SECRET)
    clock.now += 10 * 24 * 3600
    assert redactor(SECRET) == REDACTED


def test_generation_retires_what_a_reload_did_not_register() -> None:
    """After a reload registers its credentials in a new generation, the others are retired and later expire."""
    clock = FakeClock()
    redactor = SecretRedactor(retention=60, monotonic=clock)
    redactor.register("old-account-token")
    redactor.register("kept-account-token")
    generation = redactor.new_generation()
    redactor.register("kept-account-token")
    redactor.register("new-account-token")
    assert redactor.retire_older_than(generation) == 1
    assert redactor("old-account-token") == REDACTED
    clock.now += 61
    assert redactor("old-account-token kept-account-token new-account-token") == (
        f"old-account-token {REDACTED} {REDACTED}"
    )


def test_module_redact_uses_the_process_registry() -> None:
    """``redact`` cuts what ``register_secret`` registered, for error texts stored in the ledger."""
    value = "ledger-error-secret-0042"
    redaction.register_secret(value)
    assert redaction.redact(f"401: {value} is invalid") == f"401: {REDACTED} is invalid"
