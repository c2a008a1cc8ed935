"""The API against its own OpenAPI document, fuzzed by schemathesis (a bounded, seeded run).

The app runs on a real socket over the test database; a signed-in user and a published clip
give the fuzzer something real to reach. Every response must be documented (status, content
type, schema) and none may be a 5xx. Logging out is left out, since it would end the run's
session half way. One schemathesis worker, so a seeded run sends the same requests in the
same order every time and a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.factories import make_draft
from tests.live import Server, sign_up

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("st")
    return str(found) if found.exists() else (shutil.which("st") or "st")


async def test_every_operation_answers_as_documented_and_never_with_a_5xx(
    database_url, redis_url, tmp_path, conn
):
    settings = make_settings(database_url, redis_url, tmp_path, comments_per_minute=10_000)
    with Server(settings) as server:
        user_id, token = await sign_up(server.http, "fuzzer")

        class Author:
            id = user_id

        take_id, _ = await make_draft(conn, Author())  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.http) as http:
            published = await http.post(
                "/v1/clips", json={"take_id": take_id}, headers={"Authorization": f"Bearer {token}"}
            )
            assert published.status_code == 201, published.text
        proc = await asyncio.create_subprocess_exec(
            _schemathesis(),
            "run",
            f"{server.http}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "12",
            "--seed",
            "20261124",
            "--workers",
            "1",
            "--exclude-path-regex",
            "^/v1/sessions/",
            "--no-color",
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path / "schemathesis"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
    report = output.decode(errors="replace")
    assert proc.returncode == 0, report[-20000:]
