"""A fake of Bluesky's video service (video.bsky.app) on 127.0.0.1, for the Bluesky sandbox.

It speaks ``app.bsky.video.uploadVideo`` (raw MP4 body, ``?did=&name=``, a service token for
the user's PDS bound to ``com.atproto.repo.uploadBlob``), ``getJobStatus`` and
``getUploadLimits`` (a token for this service itself). Answers keep the real service's shapes:
``uploadVideo`` returns a bare jobStatus, also inside its 409 ``already_exists`` answer, and
``getJobStatus`` wraps it in ``{"jobStatus": ...}``. Uploads carry ``ratelimit-*`` headers for
the daily video budget. Faults: ``rate_limited`` (429), ``unavailable`` (503), ``auth`` (401)
answer the next matching request; ``rejected`` makes the next job end in JOB_STATE_FAILED.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandboxes.base import Fault, FaultQueue, serve_loopback, shut
from sandboxes.bluesky.video_jobs import LIMITS_LXM, UPLOAD_LXM, Jobs, Refused, Tokens

MB = 1024 * 1024
DAY = 86_400
FAULT_ANSWERS = {
    "rate_limited": (429, "RateLimitExceeded", "Rate Limit Exceeded"),
    "unavailable": (503, "ServiceUnavailable", "Service temporarily unavailable"),
    "auth": (401, "InvalidToken", "Bad token"),
}


class VideoService:
    """The fake video service. ``pds_did`` is the audience upload tokens must name."""

    def __init__(
        self,
        *,
        plc_url: str,
        pds_did: str,
        max_bytes: int = 100 * MB,
        processing_polls: int = 1,
        daily_videos: int = 25,
        daily_bytes: int = 10 * 1024 * MB,
        latency: float = 0.0,
    ) -> None:
        self.pds_did = pds_did
        self.latency = latency  # seconds added to every answer, like the sandbox's proxy in front of the PDS
        self.max_bytes = max_bytes
        self.tokens = Tokens(plc_url)
        self.jobs = Jobs(
            self.tokens, processing_polls=processing_polls, daily_videos=daily_videos, daily_bytes=daily_bytes
        )
        self.faults = FaultQueue()  # answered instead of the request
        self.rejections = FaultQueue()  # "rejected": the next upload's job fails, as a bad video's would
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- life cycle ----

    def start(self) -> VideoService:
        self._server = serve_loopback(_handler_for(self), "bluesky-video")
        return self

    def stop(self) -> None:
        shut(self._server)
        self._server = None
        self.jobs.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "video service not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def did(self) -> str:
        host, port = self.url.removeprefix("http://").split(":")
        return f"did:web:{host}%3A{port}"

    # ---- knobs, faults and the request log ----

    def set_processing_polls(self, polls: int) -> None:
        """How many ``getJobStatus`` answers say ENCODING before the one that says COMPLETED."""
        self.jobs.processing_polls = polls

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        if fault not in (*FAULT_ANSWERS, "rejected"):
            raise ValueError(f"the video service cannot inject {fault!r}")
        queue = self.rejections if fault == "rejected" else self.faults
        queue.add(fault, count=count, retry_after=retry_after, path=path)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.rejections.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    # ---- XRPC methods: (status, headers, body) ----

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict, dict]:
        fault = self.faults.take(path)
        if fault is not None:
            status, extra, payload = self._fault_answer(fault)
            return status, extra | {"x-sandbox-fault": fault.kind}, payload
        nsid = path.removeprefix("/xrpc/")
        try:
            if nsid == "app.bsky.video.uploadVideo" and method == "POST":
                return self._upload(query, headers, body)
            if nsid == "app.bsky.video.getJobStatus" and method == "GET":
                job = self.jobs.get(query.get("jobId", ""))
                self.jobs.advance(job)
                return 200, {}, {"jobStatus": job.status()}
            if nsid == "app.bsky.video.getUploadLimits" and method == "GET":
                did = self.tokens.verify(headers.get("Authorization"), self.did, LIMITS_LXM)
                return 200, {}, self.jobs.limits(did)
            raise Refused(501, "MethodNotImplemented", f"{method} {nsid} is not implemented")
        except Refused as refused:
            return refused.status, {}, {"error": refused.error, "message": refused.message}

    def _upload(self, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, dict, dict]:
        did = self.tokens.verify(headers.get("Authorization"), self.pds_did, UPLOAD_LXM)
        if query.get("did") != did:
            raise Refused(400, "InvalidRequest", "did does not match the token's issuer")
        if len(body) > self.max_bytes:
            raise Refused(413, "PayloadTooLarge", f"video is {len(body)} bytes; the limit is {self.max_bytes}")
        token = headers["Authorization"].removeprefix("Bearer ").strip()
        rejected = self.rejections.take("/xrpc/app.bsky.video.uploadVideo") is not None
        job, earlier = self.jobs.create(did, token, body, fail=rejected)
        if earlier:
            return 409, {}, job.status() | {"error": "already_exists", "message": "Video already processed"}
        return 200, self._budget_headers(did), job.status()

    def _budget_headers(self, did: str) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.jobs.daily_videos),
            "ratelimit-remaining": str(self.jobs.remaining(did)),
            "ratelimit-reset": str(int(time.time()) + DAY),
            "ratelimit-policy": f"{self.jobs.daily_videos};w={DAY}",
        }

    @staticmethod
    def _fault_answer(fault: Fault) -> tuple[int, dict, dict]:
        status, error, message = FAULT_ANSWERS[fault.kind]
        headers: dict[str, str] = {}
        wait = fault.retry_after if fault.retry_after is not None else 60
        if fault.kind == "rate_limited":
            headers = {
                "ratelimit-limit": "25",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(time.time() + wait)),
                "ratelimit-policy": f"25;w={DAY}",
            }
        elif fault.kind == "unavailable" and fault.retry_after is not None:
            headers = {"retry-after": str(int(wait))}
        return status, headers, {"error": error, "message": message}

    def _record(self, method: str, parts: Any, status: int, size: int, fault: str | None) -> None:
        with self._lock:
            self._log.append(
                {
                    "method": method,
                    "path": parts.path,
                    "query": parts.query,
                    "status": status,
                    "bytes": size,
                    "fault": fault,
                }
            )


def _handler_for(service: VideoService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, a kept-alive connection waits for the
        # client's delayed ACK (40 ms on Linux) before the body. Real APIs answer at once.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""  # read whole: answering early breaks the client's send
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if service.latency:
                time.sleep(service.latency)
            status, headers, payload = service.handle(self.command, parts.path, query, self.headers, body)
            service._record(self.command, parts, status, len(body), headers.pop("x-sandbox-fault", None))
            raw = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _any

    return Handler
