"""The product studio API: script requests, runs, breakdowns of clips and take scores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from backend.accounts.schemas import Input
from backend.generation.schemas import Generation, Size

Goal = Literal["awareness", "conversion"]
Language = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 tag; scripts are written for its language (en, es, fr, de, pt, ja, zh, ko).",
    ),
]
Style = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=32,
        description="ugc, cinematic, minimal, energetic or testimonial.",
    ),
]
Variants = Annotated[int, Meta(ge=1, le=4, description="How many scripts, one generation each (1-4).")]
Seconds = Annotated[int, Meta(ge=1, le=60, description="Length of each clip; the model must offer it.")]
Model = Annotated[str, Meta(min_length=1, max_length=64)]


class StudioCreate(Input):
    goal: Goal
    style: Style = "ugc"
    language: Language = "en"
    variants: Variants = 2
    seconds: Seconds = 8
    model: Model = "local"
    size: Size = "720x1280"


class ReplicateCreate(Input):
    """Make studio scripts for one of your products in the shape of a clip you broke down."""

    product_id: int
    goal: Goal = "conversion"
    style: Style = "ugc"
    language: Language = "en"
    variants: Variants = 2
    seconds: Seconds | None = None  # default: the studied clip's length, rounded to what the model offers
    model: Model = "local"
    size: Size = "720x1280"


class Beat(msgspec.Struct, kw_only=True):
    kind: Literal["hook", "demo", "point", "cta"]
    start_s: float
    end_s: float
    visual: str  # direction for the video model (English)
    voice_over: str  # in the script's language
    on_screen_text: str


class Script(msgspec.Struct, kw_only=True):
    variant: int
    language: str
    style: str
    goal: str
    hook: str
    demo: str
    selling_points: list[str]
    call_to_action: str
    beats: list[Beat]
    voice_over: str


class StudioVariant(msgspec.Struct, kw_only=True):
    variant: int
    script: Script
    prompt: str  # the storyboard as the generation received it
    generation: Generation  # its takes are listed best first once the judge has scored them


class StudioRun(msgspec.Struct, kw_only=True):
    id: int
    product_id: int
    breakdown_id: int | None
    goal: str
    style: str
    language: str
    variants: int
    seconds: int
    writer: str  # "template" or "llm:<model>"
    items: list[StudioVariant]
    generation_ids: list[int]
    draft_clip_ids: list[int]  # drafts made so far, each carrying the product
    created_at: datetime


class BreakdownCreate(Input):
    clip_id: int


class BreakdownBeat(msgspec.Struct, kw_only=True):
    start_s: float
    end_s: float
    text: str
    is_cta: bool


class Structure(msgspec.Struct, kw_only=True):
    hook: str
    hook_kind: Literal["question", "exclamation", "statement"]
    beats: list[BreakdownBeat]
    beats_per_second: float
    pacing: Literal["slow", "steady", "fast"]
    call_to_action: str | None
    duration_s: float


class Metrics(msgspec.Struct, kw_only=True):
    impressions: int
    watches: int
    completes: int
    likes: int
    shares: int
    views: int
    comments: int
    remixes: int
    completion_rate: float | None
    like_rate: float | None
    share_rate: float | None


class Breakdown(msgspec.Struct, kw_only=True):
    id: int
    clip_id: int
    structure: Structure
    metrics: Metrics
    created_at: datetime
