"""The app on real sockets, for tests that need what a test client cannot give: WebSockets,
several processes, a process killed or restarted, or an outside tool (schemathesis) calling it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from backend.app import create_app
from backend.embedded import free_port
from backend.settings import Settings
from tests.factories import PASSWORD

SECRET = "test-secret-key-that-is-long-enough-0123456789"


class Server:
    """The app on a real socket, in a thread of the test process (its lifespan runs there too)."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"


class Process(subprocess.Popen[str]):
    """A child process whose output goes to a file (a pipe nobody reads would fill and stall
    a busy server); :func:`stop` returns what it wrote."""

    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def riffle(
    command: str, database_url: str, redis_url: str, data_dir: Path, *args: str, **env: str
) -> Process:
    """A `riffle <command>` process (``args`` go to the CLI, ``env`` adds RIFFLE_* settings)."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")},
        "RIFFLE_ENVIRONMENT": "test",
        "RIFFLE_DATABASE_URL": database_url,
        "RIFFLE_REDIS_URL": redis_url,
        "RIFFLE_DATA_DIR": str(data_dir),
        "RIFFLE_SECRET_KEY": SECRET,
        "RIFFLE_ARGON2_MEMORY_KIB": "64",
        "RIFFLE_ARGON2_TIME_COST": "1",
        **env,
    }
    log = data_dir / "logs" / f"{command}-{uuid.uuid4().hex[:8]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = Process(
            [sys.executable, "-m", "backend.cli", command, *args],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.log = log
    return proc


def serve(database_url: str, redis_url: str, data_dir: Path, port: int, *args: str, **env: str) -> Process:
    """`riffle serve` as its own process, as production runs it."""
    return riffle("serve", database_url, redis_url, data_dir, "--port", str(port), *args, **env)


def worker(database_url: str, redis_url: str, data_dir: Path, **env: str) -> Process:
    """`riffle worker`, a standalone background worker."""
    return riffle("worker", database_url, redis_url, data_dir, **env)


async def wait_ready(base: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base} did not become ready")


def stop(proc: Process, signal_number: int = 2) -> str:
    """Stop a process (SIGINT by default: a clean shutdown) and return what it printed."""
    proc.send_signal(signal_number)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.output()


def kill(proc: Process) -> None:
    """SIGKILL: the process gets no chance to clean up."""
    proc.kill()
    proc.wait(timeout=10)


async def sign_up(base: str, handle: str) -> tuple[int, str]:
    async with httpx.AsyncClient(base_url=base) as http:
        body = {"handle": handle, "email": f"{handle}@example.com", "password": PASSWORD}
        user_id = (await http.post("/v1/accounts", json=body)).json()["id"]
        token = (await http.post("/v1/sessions", json={"login": handle, "password": PASSWORD})).json()[
            "token"
        ]
    return user_id, token


async def next_event(socket: Any, kind: str, within_s: float = 5.0) -> dict[str, Any]:
    """The next event of ``kind`` on a /v1/stream socket (others are skipped)."""
    deadline = time.monotonic() + within_s
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} event"
        event = json.loads(await asyncio.wait_for(socket.recv(), timeout=remaining))
        if event["type"] == kind:
            return dict(event)
