"""Bluesky videos through the video service (``app.bsky.video.*``), the way the official app sends them.

The account's PDS signs a short service token (``getServiceAuth``, audience the PDS itself,
bound to ``com.atproto.repo.uploadBlob``); the video service takes the MP4 with that token,
transcodes it, and uploads the result to the PDS on the account's behalf. We poll the job
until it holds the blob ref, then the post record embeds that blob like any other.

A job the service already ran for the same bytes answers 409 ``already_exists`` with that
job's status: a retry after a crash or timeout reuses it instead of failing.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bot.core.errors import AuthFailed, ContentRejected, PlatformUnavailable, RateLimited
from bot.core.values import Progress
from bot.platforms.base import RateGate

OFFICIAL = "https://video.bsky.app"
UPLOAD_LXM = "com.atproto.repo.uploadBlob"
LIMITS_LXM = "app.bsky.video.getUploadLimits"
TOKEN_LIFE = 30 * 60  # seconds; the app asks for the same, long enough for a slow upload
CHUNK = 256 * 1024
DONE, FAILED = "JOB_STATE_COMPLETED", "JOB_STATE_FAILED"
KEEP_SECONDS = 15 * 60  # a processed blob is reused this long; the PDS drops blobs no record holds after a while
KEEP_COUNT = 16
_OFF = {"", "none", "off", "false", "no", "direct"}

Call = Callable[[Callable[[Any], Any]], Any]
"""The adapter's ``_call``: runs a function on its logged-in atproto client, refreshing the session if needed."""


def service_for(base_url: str, option: Any) -> str | None:
    """The video service an account uploads through, or None for a plain ``uploadBlob`` to its PDS.

    Unset means the official service for accounts hosted by Bluesky (bsky.social and its
    ``*.host.bsky.network`` PDSes) and none elsewhere: a self-hosted PDS takes videos as blobs,
    and the official service may not be able to reach it.
    """
    if option is None or option is True:
        host = (urlsplit(base_url).hostname or "").lower()
        return OFFICIAL if host == "bsky.social" or host.endswith(".bsky.network") else None
    if option is False or str(option).strip().lower() in _OFF:
        return None
    url = str(option).strip().rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError(f"{url!r} is not a URL (expected an https URL, or none)")
    return url


def did_web(url: str) -> str:
    """The did:web of the server at ``url`` (a port is percent-encoded, as did:web spells it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"did:web:{host}%3A{parts.port}" if parts.port else f"did:web:{host}"


class _Body:
    """The video bytes as a sized file object, so requests streams it and we can report progress."""

    def __init__(self, data: bytes, progress: Progress | None, total: int) -> None:
        self.data, self.progress, self.total, self.sent = memoryview(data), progress, total, 0

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        size = CHUNK if size is None or size < 0 else min(size, CHUNK)
        chunk = bytes(self.data[self.sent : self.sent + size])
        self.sent += len(chunk)
        if chunk and self.progress:
            self.progress(self.sent, self.total)
        return chunk


class VideoService:
    """One account's client of a video service."""

    def __init__(
        self,
        url: str,
        *,
        did: str,
        call: Call,
        gate: RateGate,
        wall: Callable[[], float],
        sleep: Callable[[float], None],
        poll_interval: float,
        processing_wait: float,
        timeout: float,
        log: Any,
    ) -> None:
        import requests

        from bot.platforms.base import environment_read_once

        self.url, self.did, self._call = url, did, call
        self._pds_did: str | None = None
        self.gate, self._wall, self._sleep, self.log = gate, wall, sleep, log
        self.poll_interval, self.processing_wait, self.timeout = poll_interval, processing_wait, timeout
        self.service_did = did_web(url)
        self.http = environment_read_once(requests.Session())
        self._recent: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()  # digest -> (when, blob)

    def close(self) -> None:
        self.http.close()

    def pds_did(self) -> str:
        """The DID of the account's PDS: the audience it checks upload tokens against."""
        # Only the PDS can say for sure: an entryway such as bsky.social hands accounts to PDSes with other names.
        if self._pds_did is None:
            self._pds_did = self._call(lambda client: client.com.atproto.server.describe_server()).did
        return self._pds_did

    def _token(self, aud: str, lxm: str) -> str:
        from bot.observability.redaction import register_secret, retire_secret

        # The PDS judges expiry by its own (real) clock, whatever clock the worker runs on.
        params = {"aud": aud, "lxm": lxm, "exp": int(time.time()) + TOKEN_LIFE}
        token: str = self._call(lambda client: client.com.atproto.server.get_service_auth(params)).token
        # A bearer credential for half an hour: never in a log line. Retired at once, so it stays redacted for the
        # registry's retention (a day) after it was last seen, then is forgotten: uploads do not grow the registry.
        register_secret(token)
        retire_secret(token)
        return token

    def upload(self, data: bytes, name: str, progress: Progress | None, total: int) -> dict[str, Any]:
        """Send the video, wait for its job, and return the blob ref the service stored on the PDS."""
        digest = hashlib.sha256(data).hexdigest()
        kept = self._recent.get(digest)
        if kept and time.monotonic() - kept[0] < KEEP_SECONDS:
            # A retry after the record failed: the blob is on the PDS already, and today's budget may be spent.
            if progress:
                progress(len(data), total)
            return kept[1]
        wait = self.gate.wait_needed("video")
        if wait > 0:
            raise RateLimited(f"bluesky video service rate limit: waiting {wait:.0f}s", retry_after=wait)
        blob = self._processed(data, name, progress, total)
        self._recent[digest] = (time.monotonic(), blob)
        while len(self._recent) > KEEP_COUNT:
            self._recent.popitem(last=False)
        return blob

    def _processed(self, data: bytes, name: str, progress: Progress | None, total: int) -> dict[str, Any]:
        self._check_limits(len(data))
        token = self._token(self.pds_did(), UPLOAD_LXM)
        answer = self._send(
            "POST",
            "app.bsky.video.uploadVideo",
            params={"did": self.did, "name": name},
            token=token,
            data=_Body(data, progress, total),
            headers={"Content-Type": "video/mp4"},
            accept=(409,),
        )
        status = answer.get("jobStatus", answer)  # the service answers a bare jobStatus, the lexicon wraps it
        if answer.get("error") == "already_exists" or status.get("error") == "already_exists":
            self.log.info("video_upload_reused", job=status.get("jobId"))
        elif "jobId" not in status:
            raise ContentRejected(f"bluesky video service refused the upload: {_reason(status)}")
        return self._await_blob(status)

    def _check_limits(self, size: int) -> None:
        token = self._token(self.service_did, LIMITS_LXM)
        limits = self._send("GET", "app.bsky.video.getUploadLimits", token=token)
        if not limits.get("canUpload", True):
            raise ContentRejected(f"bluesky video service refuses uploads for now: {_reason(limits)}")
        left = limits.get("remainingDailyBytes")
        if left is not None and size > int(left):
            raise ContentRejected(f"bluesky video service: {size} bytes exceed today's remaining {left}")

    def _await_blob(self, status: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.processing_wait
        interval, polls = self.poll_interval, 0
        while True:
            if status.get("blob"):  # already_exists and COMPLETED both carry it
                self.log.info("video_processed", job=status.get("jobId"), polls=polls, bytes=status["blob"].get("size"))
                blob: dict[str, Any] = status["blob"]
                return blob
            state = status.get("state")
            if state == FAILED:
                raise ContentRejected(f"bluesky video service could not process the video: {_reason(status)}")
            if state == DONE:
                raise PlatformUnavailable(f"bluesky video job {status.get('jobId')} completed without a blob")
            if time.monotonic() >= deadline:
                raise PlatformUnavailable(
                    f"bluesky video job {status.get('jobId')} still {state} after {self.processing_wait:.0f}s"
                )
            self._sleep(interval)
            interval = min(interval * 2, max(self.poll_interval, 5.0))  # long videos take minutes
            polls += 1
            answer = self._send("GET", "app.bsky.video.getJobStatus", params={"jobId": status["jobId"]})
            status = answer.get("jobStatus", answer)

    def _send(
        self, method: str, nsid: str, *, token: str | None = None, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> dict[str, Any]:
        import requests

        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.http.request(
                method, f"{self.url}/xrpc/{nsid}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            # No record exists yet, so a retry is safe: the service answers it with the same job.
            raise PlatformUnavailable(f"bluesky video service {nsid}: {type(exc).__name__}") from exc
        self._observe(response)
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code < 400 or response.status_code in accept:
            return body
        raise self._error(nsid, response, body)

    def _observe(self, response: Any) -> None:
        remaining, reset = response.headers.get("ratelimit-remaining"), response.headers.get("ratelimit-reset")
        if remaining is not None and reset is not None:
            self.gate.observe("video", int(remaining), float(reset))

    def _error(self, nsid: str, response: Any, body: dict[str, Any]) -> Exception:
        code, reason = response.status_code, _reason(body)
        if code in (401, 403):
            return AuthFailed(f"bluesky video service refused the service token for {nsid} ({reason})")
        if code == 429:
            reset = response.headers.get("ratelimit-reset")
            after = float(reset) - self._wall() if reset else _seconds(response.headers.get("retry-after"))
            self.gate.block("video", after)
            return RateLimited(f"bluesky video service rate limit on {nsid} ({reason})", retry_after=after)
        if code >= 500:
            return PlatformUnavailable(f"bluesky video service {nsid}: {code} {reason}")
        return ContentRejected(f"bluesky video service refused {nsid}: {code} {reason}")


def _reason(body: dict[str, Any]) -> str:
    parts = [str(body[k]) for k in ("error", "failureCode", "message") if body.get(k)]
    return ": ".join(parts) or "no reason given"


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
