"""One contract for every video provider.

Each case builds an adapter against its fake (a real HTTP server speaking the vendor's shape)
or, for the local renderer, against a folder; the same tests then run for all of them. Adding
a provider is one entry in PROVIDERS and its fake server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backend.generation.providers.base import ProviderError, TakeRequest, TakeState, VideoProvider
from backend.generation.providers.google import GoogleProvider
from backend.generation.providers.local import LocalProvider
from backend.generation.providers.replicate import ReplicateProvider
from tests.backend.generation.providers.fakes import VIDEO, FakeServer, Script, google_app, replicate_app

REMOTE = ["google", "replicate"]
PROVIDERS = ["local", *REMOTE]
MARKERS = {
    "ok": "",
    "policy": " [[fail:policy]]",
    "failed": " [[fail:fatal]]",
    "server_error": " [[fail:transient]]",
}


@dataclass
class Case:
    name: str
    provider: VideoProvider
    script: Script | None  # None for the local renderer (it is scripted by prompt markers)
    model: str

    def request(self, scenario: str = "ok", **overrides: Any) -> TakeRequest:
        prompt = "a paper boat on a rainy street" + (MARKERS.get(scenario, "") if self.script is None else "")
        if self.script is not None:
            self.script.scenario = scenario
        values: dict[str, Any] = {
            "prompt": prompt,
            "model": self.model,
            "seconds": 2,
            "width": 144,
            "height": 256,
        }
        return TakeRequest(**(values | overrides))


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[FakeServer, Script]]]:
    made = {}
    for name, build in (("google", google_app), ("replicate", replicate_app)):
        script = Script()
        made[name] = (FakeServer(build(script)).start(), script)
    try:
        yield made
    finally:
        for server, _ in made.values():
            server.stop()


@pytest.fixture(params=PROVIDERS)
async def case(request: pytest.FixtureRequest, servers, tmp_path: Path) -> AsyncIterator[Case]:
    name = request.param
    if name == "local":
        built = Case(name, LocalProvider(tmp_path, allow_test_markers=True), None, "riffle-local-1")
    else:
        server, script = servers[name]
        script.__init__()  # a fresh script per test
        if name == "google":
            adapter: VideoProvider = GoogleProvider(api_key="test-key", base_url=server.url, timeout_s=0.5)
            built = Case(name, adapter, script, "veo-3.1-fast-generate-preview")
        else:
            adapter = ReplicateProvider(api_token="r8_test", base_url=server.url, timeout_s=0.5)
            built = Case(name, adapter, script, "kwaivgi/kling-v2.1")
    try:
        yield built
    finally:
        await built.provider.aclose()


async def run_to_end(case: Case, job_id: str) -> Any:
    for _ in range(200):
        status = await case.provider.poll(job_id)
        if status.state in (TakeState.SUCCEEDED, TakeState.FAILED, TakeState.CANCELED):
            return status
        assert status.progress is None or 0 <= status.progress <= 100
        await asyncio.sleep(0.05)
    raise AssertionError("the take never finished")


async def test_a_take_runs_to_a_downloadable_video(case: Case, tmp_path: Path):
    job_id = await case.provider.submit(case.request())
    assert isinstance(job_id, str)
    assert job_id
    status = await run_to_end(case, job_id)
    assert status.state == TakeState.SUCCEEDED, status
    target = tmp_path / "out.mp4"
    await case.provider.download(status, target)
    if case.script is not None:
        assert target.read_bytes() == VIDEO
    else:
        assert target.stat().st_size > 1000


async def test_a_failed_take_is_reported_and_not_retryable(case: Case):
    status = await run_to_end(case, await case.provider.submit(case.request("failed")))
    assert status.state == TakeState.FAILED
    assert status.error is not None
    assert not status.error.retryable
    assert status.error.message


async def test_a_safety_refusal_is_a_policy_error(case: Case):
    status = await run_to_end(case, await case.provider.submit(case.request("policy")))
    assert status.state == TakeState.FAILED
    assert status.error is not None
    assert status.error.kind == "policy"
    assert not status.error.retryable


async def test_server_errors_are_transient(case: Case):
    if case.script is not None:
        case.script.submit_fails = True
    with pytest.raises(ProviderError) as caught:
        await case.provider.submit(case.request("server_error"))
    assert caught.value.kind == "transient"
    assert caught.value.retryable


@pytest.mark.parametrize("provider_name", REMOTE)
async def test_remote_rate_limits_timeouts_and_garbage(provider_name, servers, tmp_path):
    server, script = servers[provider_name]
    expectations = {"rate_limited": "rate_limited", "timeout": "transient", "malformed": "transient"}
    for scenario, kind in expectations.items():
        for at_submit in (True, False):
            script.__init__()
            script.submit_fails = at_submit
            if provider_name == "google":
                adapter: VideoProvider = GoogleProvider(
                    api_key="test-key", base_url=server.url, timeout_s=0.5
                )
                model = "veo-3.1-fast-generate-preview"
            else:
                adapter = ReplicateProvider(api_token="r8_test", base_url=server.url, timeout_s=0.5)
                model = "kwaivgi/kling-v2.1"
            try:
                request = TakeRequest(prompt="p", model=model, seconds=4, width=720, height=1280)
                if at_submit:
                    script.scenario = scenario
                    with pytest.raises(ProviderError) as caught:
                        await adapter.submit(request)
                else:
                    job_id = await adapter.submit(request)
                    script.scenario = scenario
                    with pytest.raises(ProviderError) as caught:
                        await adapter.poll(job_id)
                assert caught.value.kind == kind, (scenario, at_submit, caught.value)
                if scenario == "rate_limited":
                    assert caught.value.retry_after_s == 7
            finally:
                await adapter.aclose()


async def test_cancel_is_accepted(case: Case):
    job_id = await case.provider.submit(case.request())
    await case.provider.cancel(job_id)
    if case.script is not None:
        assert case.script.canceled
    else:
        assert (await case.provider.poll(job_id)).state in (TakeState.CANCELED, TakeState.SUCCEEDED)
