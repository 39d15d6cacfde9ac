"""A small fault-injecting HTTP reverse proxy on 127.0.0.1, in front of a sandbox server.

It forwards every request to ``upstream`` (bodies streamed both ways, so large
uploads and long answers pass through untouched; a WebSocket upgrade is tunnelled as it is), keeps a request log, adds an
optional latency, and answers the next matching requests with an injected fault
instead. Fault answers come from a ``responder`` so each platform can give them
its own shape; the default speaks XRPC (AT Protocol) errors.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandboxes.base import Fault, FaultQueue, serve_loopback, shut

CHUNK = 256 * 1024
TIMEOUT_DELAY = 5.0  # how late a "timeout" fault lets the forwarded answer come, unless told otherwise
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[Fault, float], Answer]


def xrpc_fault(fault: Fault, now: float) -> Answer:
    """Fault answers shaped as the reference PDS sends them (``{"error", "message"}``)."""
    kinds: dict[str, tuple[int, str, str]] = {
        "rate_limited": (429, "RateLimitExceeded", "Rate Limit Exceeded"),
        "unavailable": (503, "UpstreamFailure", "Service temporarily unavailable"),
        "auth": (401, "AuthenticationRequired", "Authentication Required"),
        "rejected": (400, "InvalidRequest", "Record/text must not be longer than 3000 graphemes"),
        "duplicate": (400, "InvalidRequest", "Record already exists"),
    }
    status, error, message = kinds[fault.kind]
    if fault.error == "ExpiredToken":
        error, message = "ExpiredToken", "Token has expired"
    elif fault.error:
        error = fault.error
    headers = {"content-type": "application/json; charset=utf-8"}
    if fault.kind == "rate_limited":
        window = 3600
        reset = int(now + (fault.retry_after if fault.retry_after is not None else 60))
        headers |= {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(reset),
            "ratelimit-policy": f"5000;w={window}",
        }
    if fault.kind == "unavailable" and fault.retry_after is not None:
        headers["retry-after"] = str(int(fault.retry_after))
    return status, headers, json.dumps({"error": error, "message": message}).encode()


class FaultProxy:
    """Reverse proxy with fault injection, latency and a request log. ``upstream`` may be set after start."""

    def __init__(self, upstream: str | None = None, *, latency: float = 0.0, responder: Responder = xrpc_fault) -> None:
        self.upstream = upstream
        self.latency = latency
        self.responder = responder
        self.faults = FaultQueue()
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "proxy not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._server = serve_loopback(_handler_for(self), "fault-proxy")
        return self

    def stop(self) -> None:
        shut(self._server)
        self._server = None

    def fail_next(
        self,
        fault: str,
        *,
        count: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        error: str | None = None,
        delay: float = TIMEOUT_DELAY,
    ) -> None:
        """Answer the next ``count`` requests (whose path contains ``path``) with ``fault``; ``error`` names the
        XRPC error, ``delay`` is how late a "timeout" lets the forwarded request's answer come."""
        self.faults.add(fault, count=count, retry_after=retry_after, path=path, error=error, delay=delay)

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def _record(self, method: str, target: str, status: int, fault: Fault | None) -> None:
        parts = urlsplit(target)
        entry = {
            "method": method,
            "path": parts.path,
            "query": parts.query,
            "status": status,
            "fault": fault.kind if fault else None,
        }
        with self._lock:
            self._log.append(entry)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, a kept-alive connection waits for the
        # client's delayed ACK (40 ms on Linux) before the body. Real APIs answer at once.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            if proxy.latency:
                time.sleep(proxy.latency)
            fault = proxy.faults.take(urlsplit(self.path).path)
            # Each request is logged before its answer goes out, so a client that got its answer
            # always finds the request in the log.
            if fault is not None and fault.kind != "timeout":
                self._drain_body()
                status, headers, body = proxy.responder(fault, time.time())
                proxy._record(self.command, self.path, status, fault)
                self._answer(status, headers, body)
                return
            try:
                if self.headers.get("upgrade", "").lower() == "websocket":
                    self._tunnel()  # the firehose (com.atproto.sync.subscribeRepos) is a WebSocket
                else:
                    self._forward(fault)
            except (ConnectionError, OSError):
                self.close_connection = True  # the client went away (e.g. its timeout fired)

        def _tunnel(self) -> None:
            """Pass an upgraded connection through byte for byte, both ways, until either side closes."""
            assert proxy.upstream, "proxy upstream not set"
            target = urlsplit(proxy.upstream)
            self.close_connection = True
            try:
                upstream = socket.create_connection((target.hostname, target.port), timeout=10)
            except OSError:
                proxy._record(self.command, self.path, 502, None)
                self._answer(502, {"content-type": "text/plain"}, b"upstream unreachable")
                return
            proxy._record(self.command, self.path, 101, None)
            upstream.settimeout(None)
            lines = [f"{self.command} {self.path} HTTP/1.1", f"Host: {target.netloc}"]
            lines += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() != "host"]
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            client = self.connection
            client.settimeout(None)
            # A WebSocket client sends nothing before the handshake's answer, so no request bytes wait in rfile.
            self.wfile.flush()

            def pump(src: socket.socket, dst: socket.socket) -> None:
                try:
                    while data := src.recv(CHUNK):
                        dst.sendall(data)
                except OSError:
                    pass
                finally:
                    for end in (src, dst):
                        try:
                            end.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

            back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            back.start()
            pump(client, upstream)
            back.join()
            upstream.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        def _request_body(self) -> Iterator[bytes] | None:
            length = self.headers.get("content-length")
            if length is not None:
                remaining = int(length)

                def fixed() -> Iterator[bytes]:
                    nonlocal remaining
                    while remaining > 0:
                        chunk = self.rfile.read(min(CHUNK, remaining))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                        yield chunk

                return fixed()
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                return self._dechunk()
            return None

        def _dechunk(self) -> Iterator[bytes]:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()

        def _drain_body(self) -> None:
            body = self._request_body()
            for _ in body or ():
                pass

        def _forward(self, fault: Fault | None) -> None:
            assert proxy.upstream, "proxy upstream not set"
            target = urlsplit(proxy.upstream)
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                headers["Host"] = target.netloc
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                chunked = "content-length" not in {k.lower() for k in headers} and self.command in (
                    "POST",
                    "PUT",
                    "PATCH",
                )
                if chunked:
                    headers["Transfer-Encoding"] = "chunked"
                for key, value in headers.items():
                    conn.putheader(key, value)
                conn.endheaders()
                for chunk in self._request_body() or ():
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    conn.send(b"0\r\n\r\n")
                try:
                    upstream = conn.getresponse()
                except (ConnectionError, OSError):
                    proxy._record(self.command, self.path, 502, fault)
                    self._answer(502, {"content-type": "text/plain"}, b"upstream unreachable")
                    return
                proxy._record(self.command, self.path, upstream.status, fault)
                if fault is not None:  # "timeout": the upstream has acted; the answer comes late
                    time.sleep(TIMEOUT_DELAY if fault.delay is None else fault.delay)
                self._relay(upstream)
            finally:
                conn.close()

        def _relay(self, upstream: http.client.HTTPResponse) -> None:
            self.send_response_only(upstream.status, upstream.reason)
            length = upstream.getheader("content-length")
            for key, value in upstream.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            if length is None and self.command != "HEAD":
                self.send_header("Connection", "close")  # stream until EOF: no length known in advance
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            while chunk := upstream.read1(CHUNK) if hasattr(upstream, "read1") else upstream.read(CHUNK):
                self.wfile.write(chunk)
            self.wfile.flush()

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response_only(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    return Handler
