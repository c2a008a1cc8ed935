"""The model table: which video models Riffle offers, through which provider, at what price.

Riffle's model ids ("veo-3.1-fast", "kling", "local") are stable for clients; each maps to a
provider and the provider's own model name. A model is offered only when its provider is
configured (an API key is set), so `GET /v1/models` never lists something that cannot run.
The built-in table can be replaced with ``RIFFLE_MODELS_FILE`` (JSON, same shape).

Prices are per second of video in minor units of ``currency``; the defaults are list prices
at the time of writing and only set what a take is recorded to cost — operators set their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from backend.errors import ValidationFailed


class ModelSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    id: str
    provider: str  # "google" | "replicate" | "local" | any other registered adapter
    provider_model: str
    label: str
    seconds: list[int]
    sizes: list[str]  # "WIDTHxHEIGHT"
    price_per_second_minor: int
    currency: str = "USD"
    # Model ids tried, in order, when this one keeps failing; a fallback is used only for takes
    # whose seconds and size it offers (so a take never changes length or price per second
    # unexpectedly).
    fallbacks: list[str] = []
    # Input names the gateway model expects, merged over the adapter's defaults.
    extra_input: dict[str, Any] = {}
    default_size: str | None = None

    def check(self, *, seconds: int, size: str) -> tuple[int, int]:
        if seconds not in self.seconds:
            allowed = ", ".join(str(s) for s in self.seconds)
            raise ValidationFailed(
                f"{self.id} makes clips of {allowed} seconds", code="seconds_not_allowed", field="seconds"
            )
        if size not in self.sizes:
            raise ValidationFailed(
                f"{self.id} makes clips of size {', '.join(self.sizes)}",
                code="size_not_allowed",
                field="size",
            )
        width, height = (int(part) for part in size.split("x"))
        return width, height


_PORTRAIT_HD = ["720x1280", "1280x720"]

BUILT_IN: list[ModelSpec] = [
    ModelSpec(
        id="local",
        provider="local",
        provider_model="riffle-local-1",
        label="Riffle local renderer (offline, free)",
        seconds=[2, 4, 6, 8],
        sizes=["720x1280", "1280x720", "360x640", "640x360", "144x256"],
        price_per_second_minor=0,
    ),
    ModelSpec(
        id="veo-3.1-fast",
        provider="google",
        provider_model="veo-3.1-fast-generate-preview",
        label="Google Veo 3.1 Fast",
        seconds=[4, 6, 8],
        sizes=[*_PORTRAIT_HD, "1080x1920", "1920x1080"],
        price_per_second_minor=15,
        fallbacks=["hailuo"],
    ),
    ModelSpec(
        id="veo-3.1",
        provider="google",
        provider_model="veo-3.1-generate-preview",
        label="Google Veo 3.1",
        seconds=[4, 6, 8],
        sizes=[*_PORTRAIT_HD, "1080x1920", "1920x1080"],
        price_per_second_minor=40,
        fallbacks=["veo-3.1-fast"],
    ),
    ModelSpec(
        id="kling",
        provider="replicate",
        provider_model="kwaivgi/kling-v2.1",
        label="Kling 2.1 (via Replicate)",
        seconds=[5, 10],
        sizes=_PORTRAIT_HD,
        price_per_second_minor=28,
        extra_input={"mode": "standard"},
        fallbacks=["seedance"],
    ),
    ModelSpec(
        id="seedance",
        provider="replicate",
        provider_model="bytedance/seedance-1-pro",
        label="Seedance 1 Pro (via Replicate)",
        seconds=[5, 10],
        sizes=_PORTRAIT_HD,
        price_per_second_minor=15,
        extra_input={"resolution": "720p"},
        fallbacks=["kling"],
    ),
    ModelSpec(
        id="hailuo",
        provider="replicate",
        provider_model="minimax/hailuo-02",
        label="Hailuo 02 (via Replicate)",
        seconds=[6, 10],
        sizes=_PORTRAIT_HD,
        price_per_second_minor=8,
    ),
]


class ModelTable:
    """The models that can run here: the configured table filtered to available providers."""

    def __init__(self, specs: list[ModelSpec], available_providers: set[str]) -> None:
        ids = [s.id for s in specs]
        if len(ids) != len(set(ids)):
            raise ValueError("model ids must be unique")
        self._all = {s.id: s for s in specs}
        self._available = {s.id: s for s in specs if s.provider in available_providers}

    @classmethod
    def load(cls, models_file: str | None, available_providers: set[str]) -> ModelTable:
        specs = BUILT_IN
        if models_file:
            specs = msgspec.json.decode(Path(models_file).read_bytes(), type=list[ModelSpec])
        return cls(specs, available_providers)

    def available(self) -> list[ModelSpec]:
        return list(self._available.values())

    def get(self, model_id: str) -> ModelSpec:
        spec = self._available.get(model_id)
        if spec is None:
            offered = ", ".join(self._available)
            raise ValidationFailed(
                f"unknown model {model_id!r}; this server offers: {offered}",
                code="unknown_model",
                field="model",
            )
        return spec

    def fallback_chain(self, model_id: str) -> list[ModelSpec]:
        """The model followed by its available fallbacks (each once), in order."""
        chain: list[ModelSpec] = []
        pending = [model_id]
        while pending:
            current = pending.pop(0)
            spec = self._available.get(current)
            if spec is None or spec in chain:
                continue
            chain.append(spec)
            pending.extend(spec.fallbacks)
        return chain
