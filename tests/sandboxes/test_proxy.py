"""The fault-injecting reverse proxy in front of sandbox servers, against a small upstream on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandboxes.proxy import FaultProxy


class Upstream(BaseHTTPRequestHandler):
    """Echoes a digest of what it received; /stream answers in chunks without a length."""

    protocol_version = "HTTP/1.1"
    received: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        digest, size = hashlib.sha256(), 0
        if "chunked" in self.headers.get("transfer-encoding", ""):
            while (n := int(self.rfile.readline().strip(), 16)) > 0:
                chunk = self.rfile.read(n)
                digest.update(chunk)
                size += n
                self.rfile.readline()
            self.rfile.readline()
        else:
            remaining = int(self.headers["content-length"])
            while remaining:
                chunk = self.rfile.read(min(remaining, 65536))
                digest.update(chunk)
                size, remaining = size + len(chunk), remaining - len(chunk)
        Upstream.received.append(self.path)
        body = json.dumps({"sha256": digest.hexdigest(), "size": size}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Upstream.received.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("connection", "close")
        self.end_headers()
        for n in range(5):
            self.wfile.write(f"part {n}\n".encode())
            self.wfile.flush()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, args=(0.05,), daemon=True).start()
    Upstream.received.clear()
    proxy = FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}").start()
    yield proxy
    proxy.stop()
    upstream.shutdown()
    upstream.server_close()


def test_large_and_streamed_uploads_pass_through_unchanged(proxy: FaultProxy) -> None:
    """A 30 MB body with a length and a chunked streamed body reach the upstream byte for byte."""
    data = bytes(range(256)) * (30 * 4096)
    sent = requests.post(f"{proxy.url}/upload", data=data, timeout=30).json()
    assert sent == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    streamed = requests.post(f"{proxy.url}/upload", data=iter([b"a" * 1000, b"b" * 5]), timeout=30).json()
    assert streamed == {"sha256": hashlib.sha256(b"a" * 1000 + b"b" * 5).hexdigest(), "size": 1005}


def test_answer_without_length_is_streamed_to_the_end(proxy: FaultProxy) -> None:
    """An upstream answer without Content-Length arrives whole and the request is logged with its status."""
    answer = requests.get(f"{proxy.url}/stream?x=1", timeout=10)
    assert answer.text == "".join(f"part {n}\n" for n in range(5))
    assert proxy.requests() == [{"method": "GET", "path": "/stream", "query": "x=1", "status": 200, "fault": None}]


def test_faults_answer_in_xrpc_shape_and_only_on_matching_paths(proxy: FaultProxy) -> None:
    """A rate_limited fault answers 429 with ratelimit headers and an XRPC body, for the matching path only, once."""
    proxy.fail_next("rate_limited", retry_after=40, path="/limited")
    assert requests.post(f"{proxy.url}/other", data=b"x", timeout=10).status_code == 200
    before = time.time()
    limited = requests.post(f"{proxy.url}/limited", data=b"x", timeout=10)
    assert limited.status_code == 429
    assert limited.json() == {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    assert limited.headers["ratelimit-remaining"] == "0"
    assert before + 39 <= int(limited.headers["ratelimit-reset"]) <= time.time() + 40
    assert requests.post(f"{proxy.url}/limited", data=b"x", timeout=10).status_code == 200
    assert Upstream.received == ["/other", "/limited"]  # the faulted request never reached the upstream


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        ("unavailable", 503, "UpstreamFailure"),
        ("auth", 401, "AuthenticationRequired"),
        ("rejected", 400, "InvalidRequest"),
    ],
)
def test_each_fault_has_its_status_and_error_name(proxy: FaultProxy, fault: str, status: int, error: str) -> None:
    """unavailable, auth and rejected answer with their HTTP status and XRPC error name."""
    proxy.fail_next(fault)
    answer = requests.get(f"{proxy.url}/any", timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_timeout_fault_forwards_then_answers_late(proxy: FaultProxy) -> None:
    """A timeout fault lets the request reach the upstream but holds the answer past the client's patience."""
    proxy.fail_next("timeout", delay=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{proxy.url}/slow", data=b"x", timeout=0.3)
    assert Upstream.received == ["/slow"]


def test_latency_is_added_to_every_request(proxy: FaultProxy) -> None:
    """With a latency set, each answer comes at least that much later."""
    proxy.latency = 0.2
    started = time.monotonic()
    requests.post(f"{proxy.url}/x", data=b"x", timeout=10)
    assert time.monotonic() - started >= 0.2
