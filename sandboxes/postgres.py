"""A throwaway PostgreSQL cluster on a private loopback port (for the Bluesky AppView, two-worker tests, benches)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_CANDIDATES = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found; run scripts/setup (installs postgresql)")


class Postgres:
    """``initdb`` + ``pg_ctl start`` in a temp dir, run as the ``postgres`` user when we are root."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        self.data = self.dir / "data"
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def plain_url(self) -> str:
        """libpq URL, for non-Python clients."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str) -> str:
        """Create an empty database ``name`` on this server; its SQLAlchemy URL."""
        import sqlalchemy as sa

        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def _run(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            for path in self.dir.rglob("*"):
                os.lchown(path, pw.pw_uid, pw.pw_gid)
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> Postgres:
        bin_dir = pg_bin()
        self._run(bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server on its data (again, after ``pause``)."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} -c fsync=off -c max_connections=200"
        self._run(pg_bin() / "pg_ctl", "-D", self.data, "-o", opts, "-w", "-l", self.dir / "log", "start")

    def pause(self) -> None:
        """Stop the server, keeping its data: a database outage for tests (``resume`` ends it)."""
        self._run(pg_bin() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(pg_bin() / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
