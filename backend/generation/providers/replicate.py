"""One gateway to many video models (Kling, Seedance, Hailuo, Wan, Veo…): Replicate's
predictions API.

``POST /v1/models/{owner}/{name}/predictions`` with ``{input, webhook, webhook_events_filter}``,
``GET /v1/predictions/{id}`` (starting → processing → succeeded | failed | canceled) and
``POST /v1/predictions/{id}/cancel``. Models name their inputs differently; a model entry's
``extra_input`` is merged over the defaults and may carry ``input_names`` to rename Riffle's
fields for that model (a name mapped to "" leaves the field out). Shapes follow the
``replicate`` package (checked by the contract tests). Completion arrives by a signed webhook
when one is configured (see :mod:`.webhooks`), with polling as the fallback.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path
from typing import Any

import httpx

from backend.generation.providers import http as h
from backend.generation.providers.base import ProviderError, TakeRequest, TakeState, TakeStatus

SERVICE = "the video gateway"
DEFAULT_NAMES = {
    "prompt": "prompt",
    "seconds": "duration",
    "aspect_ratio": "aspect_ratio",
    "image": "start_image",
    "negative_prompt": "negative_prompt",
    "seed": "seed",
}
_POLICY = re.compile(r"safety|nsfw|sensitive|flagged|content policy|moderation", re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,3})%")
_STATES = {
    "starting": TakeState.PENDING,
    "processing": TakeState.RUNNING,
    "succeeded": TakeState.SUCCEEDED,
    "failed": TakeState.FAILED,
    "canceled": TakeState.CANCELED,
}


def prediction_input(request: TakeRequest) -> dict[str, Any]:
    extra = dict(request.extra_input)
    renames: Any = extra.pop("input_names", None) or {}
    names = {**DEFAULT_NAMES, **renames}
    values: dict[str, Any] = {
        "prompt": request.prompt,
        "seconds": request.seconds,
        "aspect_ratio": request.aspect_ratio,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
    }
    if request.reference_image is not None:
        kind = request.reference_image_type or "image/png"
        values["image"] = f"data:{kind};base64,{base64.b64encode(request.reference_image).decode()}"
    built = {names[k]: v for k, v in values.items() if v is not None and names.get(k)}
    return {**built, **extra}


def status_from_prediction(payload: dict[str, Any]) -> tuple[str, TakeStatus]:
    """The prediction id and its state, from a poll answer or a webhook body."""
    prediction_id, state = payload.get("id"), _STATES.get(str(payload.get("status")))
    if not isinstance(prediction_id, str) or state is None:
        raise ProviderError("transient", h.UNREADABLE, code="provider_unreadable")
    if state == TakeState.SUCCEEDED:
        output = payload.get("output")
        url = (
            output if isinstance(output, str) else next((o for o in output or [] if isinstance(o, str)), None)
        )
        if not url:
            return prediction_id, TakeStatus(
                TakeState.FAILED,
                error=ProviderError("transient", "the gateway returned no video", code="no_video"),
            )
        return prediction_id, TakeStatus(state, progress=100, video_url=url)
    if state == TakeState.FAILED:
        error = str(payload.get("error") or "")
        if _POLICY.search(error):
            refusal = ProviderError("policy", "the video model refused this prompt under its safety rules")
            return prediction_id, TakeStatus(state, error=refusal)
        return prediction_id, TakeStatus(
            state,
            error=ProviderError("fatal", "the video model could not make this video", code="provider_failed"),
        )
    progress = None
    logs = payload.get("logs")
    if isinstance(logs, str) and (found := _PERCENT.findall(logs)):
        progress = min(99, int(found[-1]))
    return prediction_id, TakeStatus(state, progress=progress)


class ReplicateProvider:
    name = "replicate"

    def __init__(
        self,
        *,
        api_token: str,
        base_url: str = "https://api.replicate.com",
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._http = http or h.client(base_url, {"Authorization": f"Bearer {api_token}"}, timeout_s)

    @staticmethod
    def body(request: TakeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"input": prediction_input(request)}
        if request.webhook_url:
            body["webhook"] = request.webhook_url
            body["webhook_events_filter"] = ["completed"]
        return body

    async def submit(self, request: TakeRequest) -> str:
        answer = await h.request(
            self._http, "POST", f"/v1/models/{request.model}/predictions", SERVICE, json=self.body(request)
        )
        prediction_id, _ = status_from_prediction(answer)
        return prediction_id

    async def poll(self, provider_job_id: str) -> TakeStatus:
        answer = await h.request(self._http, "GET", f"/v1/predictions/{provider_job_id}", SERVICE)
        return status_from_prediction(answer)[1]

    async def cancel(self, provider_job_id: str) -> None:
        with contextlib.suppress(ProviderError):  # best effort: a finished prediction stays finished
            await h.request(self._http, "POST", f"/v1/predictions/{provider_job_id}/cancel", SERVICE)

    async def download(self, status: TakeStatus, destination: Path) -> None:
        if not status.video_url:
            raise ProviderError("fatal", "the gateway gave no video to fetch")
        # Output files live on the gateway's CDN; the API token is not sent there.
        async with httpx.AsyncClient(timeout=self._http.timeout) as cdn:
            await h.download(cdn, status.video_url, destination, SERVICE)

    async def aclose(self) -> None:
        await self._http.aclose()
