"""The generation API: requests, jobs and their takes, models and usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from backend.accounts.schemas import Input

Prompt = Annotated[str, Meta(min_length=1, max_length=2000)]
Size = Annotated[
    str, Meta(pattern=r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", description="WIDTHxHEIGHT, e.g. 720x1280")
]


class GenerationCreate(Input):
    prompt: Prompt
    model: Annotated[str, Meta(min_length=1, max_length=64)] = "local"
    seconds: Annotated[int, Meta(ge=1, le=60)] = 4
    size: Size = "720x1280"
    takes: Annotated[int, Meta(ge=1, le=4, description="How many takes to generate (1-4).")] = 1
    cameo_ids: Annotated[list[int], Meta(max_length=3)] = []
    remix_of: int | None = None
    product_id: int | None = None
    reference_image: int | None = None


class TakeError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class TakeScore(msgspec.Struct, kw_only=True):
    """The judge's marks for a take, each in [0, 1] (see backend/commerce/judge.py)."""

    overall: float
    realism: float
    product_consistency: float
    voice_over: float
    script_structure: float
    judge: str


class Take(msgspec.Struct, kw_only=True):
    id: int
    position: int
    status: str
    progress: int
    model: str  # the model that made (or is making) it
    fallback_from: str | None  # the model asked for, when the take fell back to another
    provider: str | None
    attempts: int
    error: TakeError | None
    cost_minor: int
    currency: str
    clip_id: int | None
    duration_ms: int | None
    created_at: datetime
    finished_at: datetime | None
    score: TakeScore | None = None  # takes are listed best first once scored


class Generation(msgspec.Struct, kw_only=True):
    id: int
    status: str
    prompt: str
    model: str
    seconds: int
    size: str
    takes_requested: int
    cameo_ids: list[int]
    remix_of: int | None
    product_id: int | None = None
    reference_image: int | None
    cost_minor: int
    currency: str
    takes: list[Take]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Model(msgspec.Struct, kw_only=True):
    id: str
    label: str
    provider: str
    seconds: list[int]
    sizes: list[str]
    default_size: str
    price_per_second_minor: int
    currency: str
    fallbacks: list[str]


class Usage(msgspec.Struct, kw_only=True):
    """Today's generation allowance and what the caller has spent."""

    day: str
    limit_seconds: int
    reserved_seconds: int
    remaining_seconds: int
    resets_at: datetime
    spend_today_minor: int
    spend_total_minor: int
    currency: str
