"""Local HTTP servers that speak the Gemini API's and Replicate's shapes, with switchable
scenarios, for the contract suite. Each runs a small Litestar app under uvicorn in a thread."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from backend.embedded import free_port
from backend.generation.providers.local import render_clip


def _real_video() -> bytes:
    """A small real H.264 MP4 (the pipeline decodes what it downloads)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.mp4"
        render_clip({"prompt": "fake", "seconds": 1, "width": 144, "height": 256, "seed": 1}, path)
        return path.read_bytes()


VIDEO = _real_video()  # served as every finished video


@dataclass
class Script:
    """What the fake does next: ``scenario`` is one of ok, failed, policy, rate_limited,
    server_error, timeout, malformed; ``submit_fails`` applies it to the submit call."""

    scenario: str = "ok"
    submit_fails: bool = False
    polls_before_done: int = 1
    failing_models: set[str] = field(default_factory=set)  # submits for these answer 503
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    polls: int = 0
    canceled: list[str] = field(default_factory=list)


class FakeServer:
    def __init__(self, app: Litestar) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


async def _misbehave(script: Script) -> Response[Any] | None:
    if script.scenario == "rate_limited":
        return Response(
            {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}},
            status_code=429,
            headers={"Retry-After": "7"},
        )
    if script.scenario == "server_error":
        return Response({"error": {"code": 503, "status": "UNAVAILABLE"}}, status_code=503)
    if script.scenario == "timeout":
        await asyncio.sleep(2)
        return Response({}, status_code=200)
    if script.scenario == "malformed":
        return Response(b"<html>gateway error</html>", status_code=200, media_type="text/html")
    return None


def google_app(script: Script) -> Litestar:
    """``/v1beta/models/{model}:predictLongRunning`` and ``/v1beta/{operation}``."""

    @post("/v1beta/models/{model_action:str}", status_code=200)
    async def predict(request: Request[Any, Any, Any], model_action: FromPath[str]) -> Response[Any]:
        body = await request.json()
        script.requests.append(
            ("submit", model_action, body | {"_key": request.headers.get("x-goog-api-key")})
        )
        if script.submit_fails and (bad := await _misbehave(script)):
            return bad
        model = model_action.removesuffix(":predictLongRunning")
        return Response({"name": f"models/{model}/operations/op{len(script.requests)}"})

    @get("/v1beta/models/{model:str}/operations/{op:str}")
    async def operation(
        request: Request[Any, Any, Any], model: FromPath[str], op: FromPath[str]
    ) -> Response[Any]:
        name = f"models/{model}/operations/{op}"
        if op.endswith(":cancel"):
            return Response({}, status_code=405)
        script.polls += 1
        if not script.submit_fails and (bad := await _misbehave(script)):
            return bad
        if script.polls <= script.polls_before_done:
            return Response({"name": name, "metadata": {"progressPercent": 40}})
        if script.scenario == "failed":
            return Response(
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 3, "message": "bad", "status": "INVALID_ARGUMENT"},
                }
            )
        if script.scenario == "policy":
            response = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": [
                        "The prompt could not be submitted: it may violate our policies."
                    ],
                },
            }
            return Response({"name": name, "done": True, "response": response})
        video_uri = f"http://127.0.0.1:{request.url.port}/v1beta/files/video-{op}:download?alt=media"
        response = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
            "generateVideoResponse": {"generatedSamples": [{"video": {"uri": video_uri}}]},
        }
        return Response({"name": name, "done": True, "response": response})

    @post("/v1beta/models/{model:str}/operations/{op:str}", status_code=200)
    async def cancel(model: FromPath[str], op: FromPath[str]) -> dict[str, Any]:
        script.canceled.append(op.removesuffix(":cancel"))
        return {}

    @get("/v1beta/files/{file:str}", media_type="video/mp4")
    async def file(request: Request[Any, Any, Any], file: FromPath[str]) -> Response[bytes]:
        if request.headers.get("x-goog-api-key") != "test-key":
            return Response(b"", status_code=403)
        return Response(VIDEO, media_type="video/mp4")

    return Litestar([predict, operation, cancel, file], debug=False)


def replicate_app(script: Script) -> Litestar:
    """``/v1/models/{owner}/{name}/predictions``, ``/v1/predictions/{id}`` and ``…/cancel``."""

    def prediction(pid: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": pid,
            "model": "kwaivgi/kling-v2.1",
            "version": "hidden",
            "status": status,
            "input": {},
            "output": None,
            "logs": "",
            "error": None,
            "metrics": {},
            "created_at": "2026-11-24T00:00:00Z",
            "urls": {"get": f"/v1/predictions/{pid}", "cancel": f"/v1/predictions/{pid}/cancel"},
        } | extra

    @post("/v1/models/{owner:str}/{name:str}/predictions", status_code=201)
    async def create(
        request: Request[Any, Any, Any], owner: FromPath[str], name: FromPath[str]
    ) -> Response[Any]:
        body = await request.json()
        script.requests.append(
            ("submit", f"{owner}/{name}", body | {"_auth": request.headers.get("authorization")})
        )
        if script.submit_fails and (bad := await _misbehave(script)):
            return bad
        if f"{owner}/{name}" in script.failing_models:
            return Response({"detail": "the model is down"}, status_code=503)
        return Response(prediction(f"p{len(script.requests)}", "starting"), status_code=201)

    @get("/v1/predictions/{pid:str}")
    async def read(request: Request[Any, Any, Any], pid: FromPath[str]) -> Response[Any]:
        script.polls += 1
        if not script.submit_fails and (bad := await _misbehave(script)):
            return bad
        if script.polls <= script.polls_before_done:
            return Response(prediction(pid, "processing", logs="step 1\n 55%|#####     |"))
        if script.scenario == "failed":
            return Response(prediction(pid, "failed", error="CUDA out of memory"))
        if script.scenario == "policy":
            return Response(
                prediction(pid, "failed", error="The input or output was flagged as sensitive (E005)")
            )
        url = f"http://127.0.0.1:{request.url.port}/files/{pid}.mp4"
        return Response(prediction(pid, "succeeded", output=url, metrics={"predict_time": 41.2}))

    @post("/v1/predictions/{pid:str}/cancel", status_code=200)
    async def cancel(pid: FromPath[str]) -> dict[str, Any]:
        script.canceled.append(pid)
        return prediction(pid, "canceled")

    @get("/files/{name:str}", media_type="video/mp4")
    async def file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        if request.headers.get("authorization"):  # the API token must not leak to the CDN
            return Response(b"", status_code=400)
        return Response(VIDEO, media_type="video/mp4")

    return Litestar([create, read, cancel, file], debug=False)
