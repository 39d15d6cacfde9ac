"""What the fake Bluesky video service knows: who may upload, the jobs, and how a job ends on the PDS.

Tokens are checked as the real service checks them: a JWT signed with the key in the issuer's
DID document (from the local PLC), for the expected audience and lexicon method, unexpired.
A job moves CREATED -> ENCODING (with progress) -> COMPLETED one ``getJobStatus`` at a time;
on completion the service uploads the video to the user's PDS (found in the DID document) with
the user's own service token, as the real one does, and the job then carries that blob ref.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import requests

UPLOAD_LXM = "com.atproto.repo.uploadBlob"
LIMITS_LXM = "app.bsky.video.getUploadLimits"
MAX_SECONDS = 180.0


class Refused(Exception):
    """An XRPC error answer: HTTP status, error name, message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class Tokens:
    """Verifies bearer service tokens against DID documents from the PLC directory."""

    def __init__(self, plc_url: str) -> None:
        from atproto_identity.did.resolver import DidResolver

        self.resolver = DidResolver(plc_url=plc_url, timeout=10)

    def verify(self, header: str | None, aud: str, lxm: str) -> str:
        """The issuer DID of a valid token for ``aud`` and ``lxm``; Refused(401) otherwise."""
        from atproto_server.auth.jwt import verify_jwt

        if not header or not header.startswith("Bearer "):
            raise Refused(401, "AuthMissing", "Authentication Required")
        try:
            payload = verify_jwt(header.removeprefix("Bearer ").strip(), self._key, own_did=aud)
        except Exception as exc:  # every way a token can be bad ends in the same answer
            raise Refused(401, "InvalidToken", f"invalid service token: {type(exc).__name__}") from exc
        if (payload.model_extra or {}).get("lxm") != lxm:
            raise Refused(401, "BadJwtLexiconMethod", f"token is not for {lxm}")
        return str(payload.iss)

    def _key(self, did: str, force_refresh: bool) -> str:
        return self.resolver.resolve_atproto_key(did, force_refresh)

    def pds_of(self, did: str) -> str:
        return str(self.resolver.resolve_atproto_data(did).pds).rstrip("/")


@dataclass
class Job:
    id: str
    did: str
    digest: str
    size: int
    token: str
    data: bytes | None
    fail: tuple[str, str] | None = None  # (failureCode, message) decided at upload, reported while encoding
    polls: int = 0
    state: str = "JOB_STATE_CREATED"
    progress: int | None = None
    blob: dict[str, Any] | None = None
    error: dict[str, str] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jobId": self.id, "did": self.did, "state": self.state}
        if self.progress is not None:
            out["progress"] = self.progress
        if self.blob:
            out["blob"] = self.blob
        return out | self.error


def check_video(data: bytes) -> tuple[str, str] | None:
    """Why the service would fail this upload ((failureCode, message)), or None for a playable MP4."""
    import av

    if data[4:8] != b"ftyp":
        return "validation_failure", "Unsupported video format: not an MP4 file"
    try:
        with av.open(io.BytesIO(data)) as container:
            if "mp4" not in container.format.name or not container.streams.video:
                return "validation_failure", "Unsupported video format: no video stream"
            seconds = container.duration / 1_000_000 if container.duration else 0.0
    except (av.FFmpegError, ValueError) as exc:
        return "validation_failure", f"Could not read the video: {type(exc).__name__}"
    if seconds > MAX_SECONDS:
        return "validation_failure", f"Video is {seconds:.0f} seconds long; the limit is {MAX_SECONDS:.0f}"
    return None


class Jobs:
    """Jobs by id and by (DID, content digest), daily budgets, and the PDS hand-over."""

    def __init__(self, tokens: Tokens, *, processing_polls: int, daily_videos: int, daily_bytes: int) -> None:
        self.tokens = tokens
        self.processing_polls = processing_polls
        self.daily_videos, self.daily_bytes = daily_videos, daily_bytes
        self._jobs: dict[str, Job] = {}
        self._by_content: dict[tuple[str, str], str] = {}
        self._used: dict[str, tuple[int, int]] = {}  # did -> (videos, bytes) today
        self._lock = threading.Lock()
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def limits(self, did: str) -> dict[str, Any]:
        with self._lock:
            videos, size = self._used.get(did, (0, 0))
        left_videos, left_bytes = max(self.daily_videos - videos, 0), max(self.daily_bytes - size, 0)
        out: dict[str, Any] = {
            "canUpload": left_videos > 0 and left_bytes > 0,
            "remainingDailyVideos": left_videos,
            "remainingDailyBytes": left_bytes,
        }
        if not out["canUpload"]:
            out |= {"error": "daily_limit", "message": "You have reached your daily limit for video uploads"}
        return out

    def remaining(self, did: str) -> int:
        return int(self.limits(did)["remainingDailyVideos"])

    def create(self, did: str, token: str, data: bytes, *, fail: bool) -> tuple[Job, bool]:
        """The new job for ``data``, or the earlier one for the same bytes from the same DID (second value True)."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            earlier = self._by_content.get((did, digest))
            if earlier is not None:
                return self._jobs[earlier], True
        problem = ("encoding_failure", "Failed to process video") if fail else check_video(data)
        with self._lock:
            videos, size = self._used.get(did, (0, 0))
            if videos >= self.daily_videos or size + len(data) > self.daily_bytes:
                raise Refused(429, "RateLimitExceeded", "daily video upload limit reached")
            self._used[did] = (videos + 1, size + len(data))
            job = Job(
                id=secrets.token_hex(10), did=did, digest=digest, size=len(data), token=token, data=data, fail=problem
            )
            self._jobs[job.id] = job
            self._by_content[(did, digest)] = job.id
        return job, False

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise Refused(404, "NotFound", f"no job {job_id}")
        return job

    def advance(self, job: Job) -> None:
        """One poll's worth of progress; the last poll hands the video to the PDS."""
        with self._lock:
            if job.state in ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED"):
                return
            job.polls += 1
            if job.fail is not None:
                code, message = job.fail
                self._end(
                    job,
                    "JOB_STATE_FAILED",
                    error={
                        "error": f"video processing error for job: {job.id}",
                        "failureCode": code,
                        "message": message,
                    },
                )
                return
            if job.polls <= self.processing_polls:
                job.state, job.progress = "JOB_STATE_ENCODING", round(100 * job.polls / (self.processing_polls + 1))
                return
            data, token = job.data, job.token
        blob, error = self._store_on_pds(job.did, token, data or b"")
        with self._lock:
            if blob is None:
                self._end(
                    job,
                    "JOB_STATE_FAILED",
                    error={
                        "error": error,
                        "failureCode": "pds_upload_failure",
                        "message": "Failed to upload video to your PDS",
                    },
                )
            else:
                job.blob = blob
                self._end(job, "JOB_STATE_COMPLETED")

    @staticmethod
    def _end(job: Job, state: str, error: dict[str, str] | None = None) -> None:
        job.state, job.progress, job.data, job.token = state, None, None, ""
        job.error = error or {}

    def _store_on_pds(self, did: str, token: str, data: bytes) -> tuple[dict[str, Any] | None, str]:
        try:
            response = self._http.post(
                f"{self.tokens.pds_of(did)}/xrpc/{UPLOAD_LXM}",
                data=data,
                timeout=60,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"},
            )
        except requests.RequestException as exc:
            return None, f"pds unreachable: {type(exc).__name__}"
        if response.status_code != 200:
            return None, f"pds answered {response.status_code}: {response.text[:200]}"
        return response.json()["blob"], ""
