"""A local S3-compatible bucket on 127.0.0.1: moto's server behind a gate that checks signatures as S3 does.

``S3Sandbox().start()`` runs ``moto_server`` (moto in server mode, a subprocess on a free loopback port)
with one bucket, and in front of it a small gate on another free port that the bot talks to. The gate is
there because moto's server, out of the box, accepts any key and never expires a presigned URL, and with
its IAM checks on it fails presigned GETs with a 500: the gate verifies AWS Signature V4 (header-signed
calls and presigned URLs alike) against the sandbox's one key pair and refuses an expired URL with
S3's own 403 ``AccessDenied`` / ``Request has expired``, an unknown key id with ``InvalidAccessKeyId``
and a wrong secret with ``SignatureDoesNotMatch``; everything else is forwarded to moto untouched.

``env`` holds the key pair under the variable names that ``media_host_block()`` (the ``media_host``
block of config/media_host.yaml) names. Used by tests/mediahost, the demo and the benchmarks.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from sandboxes.base import serve_loopback, shut

ACCESS_KEY_ID = "AKIASANDBOXMEDIAKEY1"
SECRET_ACCESS_KEY = "sandbox-media-secret-key-0123456789abcdef"
REGION = "us-east-1"
START_TIMEOUT = 30.0


class S3Sandbox:
    """moto's S3 server plus a signature-checking gate; ``endpoint_url`` is the gate's address."""

    def __init__(
        self,
        bucket: str = "campaign-media",
        *,
        key_var: str = "MEDIA_S3_ACCESS_KEY_ID",
        secret_var: str = "MEDIA_S3_SECRET_ACCESS_KEY",
    ) -> None:
        self.bucket = bucket
        self.key_var, self.secret_var = key_var, secret_var
        self.env = {key_var: ACCESS_KEY_ID, secret_var: SECRET_ACCESS_KEY}
        self.keys = {ACCESS_KEY_ID: SECRET_ACCESS_KEY}  # key id -> secret the gate accepts
        self.log: list[tuple[str, str, int]] = []  # (method, path and query without signatures, status)
        self._lock = threading.Lock()
        self._moto: subprocess.Popen[bytes] | None = None
        self._gate: ThreadingHTTPServer | None = None
        self.upstream = ""

    # ---- life ----

    def start(self) -> S3Sandbox:
        port = _free_port()
        moto_server = Path(sys.executable).with_name("moto_server")
        self._moto = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.upstream = f"http://127.0.0.1:{port}"
        _wait_for(port, self._moto)
        self._gate = serve_loopback(_gate_handler(self), "s3-gate")
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        shut(self._gate)
        self._gate = None
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(5)
            except subprocess.TimeoutExpired:
                self._moto.kill()
                self._moto.wait()
            self._moto = None

    def __enter__(self) -> S3Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what the bot and the tests use ----

    @property
    def endpoint_url(self) -> str:
        assert self._gate is not None, "start() first"
        return f"http://127.0.0.1:{self._gate.server_address[1]}"

    def media_host_block(self, **overrides: Any) -> dict[str, Any]:
        """The ``media_host`` block of config/media_host.yaml pointing at this sandbox."""
        block: dict[str, Any] = {
            "bucket": self.bucket,
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "path_style": True,
            "url_lifetime": "1h",
            "credentials": {"access_key_id": self.key_var, "secret_access_key": self.secret_var},
        }
        block.update(overrides)
        return block

    def client(self) -> Any:
        """A boto3 client on moto directly (past the gate), for setting up and asserting."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.upstream,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def keys_in_bucket(self, prefix: str = "") -> list[str]:
        page = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in page.get("Contents", []))

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, int]]:
        with self._lock:
            return [r for r in self.log if (method is None or r[0] == method) and contains in r[1]]


# ---- the gate ----


def _error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check(sandbox: S3Sandbox, method: str, target: str, headers: Any, now: float) -> tuple[int, bytes] | None:
    """None when the request is signed by a known key and not expired; else S3's 403 answer."""
    path, _, raw_query = target.partition("?")
    query = parse_qsl(raw_query, keep_blank_values=True)
    params = dict(query)
    if "X-Amz-Signature" in params:
        credential, signed, signature = (
            params["X-Amz-Credential"],
            params["X-Amz-SignedHeaders"],
            params["X-Amz-Signature"],
        )
        stamp = params.get("X-Amz-Date", "")
        issued = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        if now > issued + int(params.get("X-Amz-Expires", "0")):
            return 403, _error("AccessDenied", "Request has expired")
        query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        payload = "UNSIGNED-PAYLOAD"
    elif headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
        fields = dict(
            part.strip().split("=", 1) for part in headers["Authorization"][len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        stamp = headers.get("X-Amz-Date", "")
        payload = headers.get("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")
    else:
        return 403, _error("AccessDenied", "Access Denied")
    key_id, date, region, service, _ = credential.split("/")
    secret = sandbox.keys.get(key_id)
    if secret is None:
        return 403, _error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{' '.join((headers.get(n) or '').split())}\n" for n in names)
    canonical = "\n".join([method, path, canonical_query, canonical_headers, signed, payload])
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            stamp,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    expected = hmac.new(_signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return 403, _error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
    return None


def _gate_handler(sandbox: S3Sandbox) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(sandbox.upstream)

    class Gate(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            refused = _check(sandbox, self.command, self.path, self.headers, time.time())
            if refused is not None:
                status, headers, answer = refused[0], {"Content-Type": "application/xml"}, refused[1]
            else:
                status, headers, answer = self._forward(body)
            with sandbox._lock:
                sandbox.log.append((self.command, self.path.split("?X-Amz-")[0].split("&X-Amz-")[0], status))
            # A HEAD answer has no body but says how long the object is.
            length = headers.pop("Content-Length", None) if self.command == "HEAD" else None
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", length or str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                skip = {"host", "content-length", "connection", "transfer-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                kept = {
                    k: v
                    for k, v in answer.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date")
                }
                if self.command == "HEAD":
                    kept["Content-Length"] = answer.getheader("Content-Length") or "0"
                return answer.status, kept, data
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return Gate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"moto_server did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


if __name__ == "__main__":  # a bucket for trying things by hand: python -m sandboxes.s3
    with S3Sandbox() as sandbox:
        print(f"endpoint_url: {sandbox.endpoint_url}  bucket: {sandbox.bucket}")
        for name, value in sandbox.env.items():
            print(f"export {name}={value}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    os._exit(0)
