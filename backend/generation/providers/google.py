"""Veo through the Gemini API (``generativelanguage.googleapis.com``).

A take is one long-running operation: ``POST /v1beta/models/{model}:predictLongRunning`` with
``instances[0].prompt`` (and ``image`` for a reference) and ``parameters`` (durationSeconds,
aspectRatio, resolution, negativePrompt, personGeneration, seed); then ``GET
/v1beta/{operation.name}`` until ``done``. The video is at
``response.generateVideoResponse.generatedSamples[0].video.uri`` and is fetched with the API
key. A result the safety filters removed (``raiMediaFilteredCount`` with reasons, no samples)
is a policy refusal: the worker does not retry it and charges nothing. Field names follow the
``google-genai`` package's converters (checked by the contract tests).
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any

import httpx

from backend.generation.providers import http as h
from backend.generation.providers.base import ProviderError, TakeRequest, TakeState, TakeStatus

SERVICE = "the Veo service"
_CODES = {
    400: "invalid",
    "INVALID_ARGUMENT": "invalid",
    429: "rate_limited",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "UNAVAILABLE": "transient",
    "INTERNAL": "transient",
    "DEADLINE_EXCEEDED": "transient",
}


class GoogleProvider:
    name = "google"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://generativelanguage.googleapis.com",
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._http = http or h.client(base_url, {"x-goog-api-key": api_key}, timeout_s)
        self._key = api_key

    @staticmethod
    def body(request: TakeRequest) -> dict[str, Any]:
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.reference_image is not None:
            instance["image"] = {
                "bytesBase64Encoded": base64.b64encode(request.reference_image).decode(),
                "mimeType": request.reference_image_type or "image/png",
            }
        parameters: dict[str, Any] = {
            "durationSeconds": request.seconds,
            "aspectRatio": request.aspect_ratio,
            "resolution": "1080p" if min(request.width, request.height) >= 1080 else "720p",
            "personGeneration": "allow_adult",
        }
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        if request.seed is not None:
            parameters["seed"] = request.seed
        return {"instances": [instance], "parameters": parameters}

    async def submit(self, request: TakeRequest) -> str:
        answer = await h.request(
            self._http,
            "POST",
            f"/v1beta/models/{request.model}:predictLongRunning",
            SERVICE,
            json=self.body(request),
        )
        name = answer.get("name")
        if not isinstance(name, str) or not name:
            raise ProviderError("transient", h.UNREADABLE, code="provider_unreadable")
        return name

    async def poll(self, provider_job_id: str) -> TakeStatus:
        operation = await h.request(self._http, "GET", f"/v1beta/{provider_job_id}", SERVICE)
        if not operation.get("done"):
            return TakeStatus(TakeState.RUNNING, progress=_progress(operation.get("metadata")))
        if isinstance(operation.get("error"), dict):
            return TakeStatus(TakeState.FAILED, error=_operation_error(operation["error"]))
        result = (operation.get("response") or {}).get("generateVideoResponse")
        if not isinstance(result, dict):
            raise ProviderError("transient", h.UNREADABLE, code="provider_unreadable")
        samples = result.get("generatedSamples") or []
        uri = samples[0].get("video", {}).get("uri") if samples and isinstance(samples[0], dict) else None
        if isinstance(uri, str) and uri:
            return TakeStatus(TakeState.SUCCEEDED, progress=100, video_url=uri)
        if result.get("raiMediaFilteredCount") or result.get("raiMediaFilteredReasons"):
            reasons = result.get("raiMediaFilteredReasons") or []
            why = str(reasons[0]) if reasons else "the video model's safety filters removed the result"
            return TakeStatus(
                TakeState.FAILED, error=ProviderError("policy", why[:300], code="policy_refusal")
            )
        return TakeStatus(
            TakeState.FAILED,
            error=ProviderError("transient", "the video service returned no video", code="no_video"),
        )

    async def cancel(self, provider_job_id: str) -> None:
        # Best effort: the operation may have finished, or may not support cancelling.
        with contextlib.suppress(ProviderError):
            await h.request(self._http, "POST", f"/v1beta/{provider_job_id}:cancel", SERVICE, json={})

    async def download(self, status: TakeStatus, destination: Path) -> None:
        if not status.video_url:
            raise ProviderError("fatal", "the video service gave no video to fetch")
        await h.download(
            self._http, status.video_url, destination, SERVICE, headers={"x-goog-api-key": self._key}
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _progress(metadata: Any) -> int | None:
    if isinstance(metadata, dict):
        for key in ("progressPercent", "progress"):
            value = metadata.get(key)
            if isinstance(value, int | float):
                return max(0, min(99, int(value)))
    return None


def _operation_error(error: dict[str, Any]) -> ProviderError:
    code, status = error.get("code"), error.get("status")
    kind = _CODES.get(status or "", _CODES.get(code if isinstance(code, int) else -1, ""))
    if not kind:
        kind = "transient" if isinstance(code, int) and code >= 500 else "fatal"
    message = "the video service could not make this video"
    if kind == "invalid":
        message = "the video service could not accept this request"
    return ProviderError(kind, message, code=f"provider_{str(status or code).lower()}")  # type: ignore[arg-type]
