"""A MediaHost for tests: files served by a real loopback HTTP server at expiring URLs, on the test's clock.

It stands where ``bot.mediahost.S3MediaHost`` stands in production (public URLs that expire, released after the
post): the Graph sandbox downloads from it as Instagram downloads from a bucket. ``expire_next`` hands out URLs
that have already expired when the platform comes to fetch them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIFETIME = 3600.0


class LoopbackMediaHost:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self.files: dict[str, tuple[Path, str]] = {}  # token -> (file, publication)
        self.handed: list[str] = []  # every URL given out
        self.released: list[str] = []
        self.served: list[tuple[str, int]] = []  # (token, status)
        self._expire = 0
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                token = url.path.strip("/").split("/")[-2] if url.path.count("/") >= 2 else ""
                expires = float(parse_qs(url.query).get("expires", ["0"])[0])
                with host._lock:
                    entry = host.files.get(token)
                status = 200 if entry and expires > host.wall() else 403 if entry else 404
                with host._lock:
                    host.served.append((token, status))
                body = entry[0].read_bytes() if status == 200 and entry else b"AccessDenied: Request has expired"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url_for(self, path: Path, *, publication: str) -> str:
        token = secrets.token_urlsafe(8)
        with self._lock:
            self.files[token] = (Path(path), publication)
            expires = self.wall() + LIFETIME
            if self._expire > 0:
                self._expire -= 1
                expires = self.wall() - 1  # expired before the platform comes for it
        url = f"http://127.0.0.1:{self.server.server_address[1]}/media/{token}/{Path(path).name}?expires={expires:.0f}"
        with self._lock:
            self.handed.append(url)
        return url

    def release(self, publication: str) -> None:
        with self._lock:
            self.released.append(publication)
            self.files = {t: (p, pub) for t, (p, pub) in self.files.items() if pub != publication}

    def expire_next(self, count: int = 1) -> None:
        with self._lock:
            self._expire = count

    def reset(self) -> None:
        with self._lock:
            self._expire = 0
            self.wall = time.time

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
