"""The real thing on a socket: `riffle serve` against the test PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from backend.embedded import free_port
from tests.factories import PASSWORD


def _serve(*args: str, within_s: float, **settings: str) -> tuple[subprocess.Popen[str], str]:
    """`riffle serve` on a free port with only these RIFFLE_* settings, once it answers
    /readyz: the process and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")} | settings
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become ready:\n" + proc.communicate()[0])


def test_riffle_serve_answers_on_a_socket_and_stops_cleanly(database_url, redis_url, tmp_path):
    proc, base = _serve(
        "--workers",
        "2",
        within_s=30,
        RIFFLE_DATABASE_URL=database_url,
        RIFFLE_REDIS_URL=redis_url,
        RIFFLE_DATA_DIR=str(tmp_path),
        RIFFLE_ARGON2_MEMORY_KIB="64",
        RIFFLE_ARGON2_TIME_COST="1",
        RIFFLE_METRICS_TOKEN="scrape-me",
    )
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            assert (
                http.post(
                    "/v1/accounts", json={"handle": "sock", "email": "s@x.io", "password": PASSWORD}
                ).status_code
                == 201
            )
            token = http.post("/v1/sessions", json={"login": "sock", "password": PASSWORD}).json()["token"]
            # Several requests, so both worker processes are likely to serve one.
            for _ in range(6):
                me = http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200
                assert me.json()["handle"] == "sock"
            bad = http.post("/v1/accounts", content=b"{", headers={"content-type": "application/json"})
            assert bad.status_code == 400
            assert bad.headers["content-type"].startswith("application/problem+json")
            # Metrics: for the scraper only, summed over both processes, ids grouped away.
            assert http.get("/metrics").status_code == 401
            metrics = http.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).text
            served = [
                line
                for line in metrics.splitlines()
                if line.startswith("riffle_requests_total{") and 'path="/v1/me"' in line
            ]
            assert len(served) == 1, metrics[:3000]
            assert float(served[0].rsplit(" ", 1)[1]) == 6.0
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"Riffle API      {base}" in out
    assert "/docs" in out


def test_riffle_serve_on_sigterm_stops_the_servers_it_started(tmp_path):
    """As a service manager stops it: the embedded PostgreSQL (a daemon of its own) and Redis
    go down with it, rather than being left running on the data folder."""
    proc, _ = _serve(within_s=60, RIFFLE_DATA_DIR=str(tmp_path), RIFFLE_RUN_WORKER="false")
    try:
        postgres = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        redis = int((tmp_path / "redis" / "redis.pid").read_text().strip())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    for pid in (postgres, redis):
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} outlived riffle serve"
