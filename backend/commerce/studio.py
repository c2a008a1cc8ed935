"""The product studio: a product in, scripted generations out; breakdowns of clips that worked.

``create_run`` writes one script per variant (templates or a language model, see ``llm.py``),
turns each into a storyboard prompt and creates one generation per variant through the
generation service, in the caller's transaction, so the prompt is screened, the daily allowance
reserved and the takes queued through the outbox exactly as for ``POST /v1/generations``. Each
generation carries the product, so the draft clips it leaves are tagged with it
(``clips.product_id``). A run is one row; its generations are read back from their service.

Who may use a product: the owner of its shop, or any creator when the shop allows affiliates
(the affiliate programme is how sellers let creators sell for them), never across a block.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import structlog

from backend import idempotency
from backend.auth import Viewer
from backend.clips import service as clips
from backend.commerce import studio_queries as q
from backend.commerce.judge import Verdict
from backend.commerce.llm import ChatError, ScriptWriter, TemplateWriter
from backend.commerce.studio_schemas import (
    Breakdown,
    BreakdownBeat,
    Metrics,
    Script,
    Structure,
    StudioRun,
    StudioVariant,
)
from backend.commerce.studio_templates import (
    LANGUAGES,
    STYLES,
    ProductFacts,
    base_language,
    parse_storyboard,
    storyboard_prompt,
)
from backend.commerce.studio_templates import Structure as ScriptShape
from backend.db import Conn
from backend.errors import NotFound, ValidationFailed
from backend.generation import service as generation
from backend.generation.models import ModelTable
from backend.generation.schemas import GenerationCreate
from backend.settings import Settings
from feed import service as feed

log = structlog.get_logger()

IDEMPOTENCY_SCOPE = "studio"
MAX_BEATS = 7


class RunRequest(msgspec.Struct, kw_only=True):
    """What a run is made from, whichever route asked (also the Idempotency-Key fingerprint)."""

    product_id: int
    breakdown_id: int | None
    goal: str
    style: str
    language: str
    variants: int
    seconds: int
    model: str
    size: str


def check_language_and_style(language: str, style: str) -> str:
    lang = base_language(language)
    if lang not in LANGUAGES:
        raise ValidationFailed(
            f"scripts can be written in {', '.join(LANGUAGES)}; not in {language!r}",
            code="unsupported_language",
            field="language",
        )
    if style not in STYLES:
        raise ValidationFailed(
            f"style must be one of {', '.join(STYLES)}", code="unsupported_style", field="style"
        )
    return lang


async def product_for_maker(conn: Conn, *, user_id: int, product_id: int, in_body: bool) -> ProductFacts:
    """The product, if ``user_id`` may make clips of it: a 404 when it was named in the URL, a
    422 when named in a body (as generation does)."""
    row = await conn.fetchrow(q.PRODUCT_FOR_MAKER, product_id, user_id)
    if row is None:
        error = ValidationFailed if in_body else NotFound
        raise error(
            f"no product {product_id} you may make clips of", code="unknown_product", field="product_id"
        )
    return ProductFacts(
        title=row["title"],
        description=row["description"],
        brand=row["brand"],
        price_minor=row["price_minor"],
        currency=row["currency"],
    )


def _generation_key(user_key: str, variant: int) -> str:
    # Derived from the run's key, so a replayed run can never make a second set of generations.
    return f"studio-{hashlib.sha256(user_key.encode()).hexdigest()[:40]}-{variant}"


async def _scripts(
    writer: ScriptWriter, product: ProductFacts, req: RunRequest, shape: ScriptShape | None
) -> tuple[list[Script], str]:
    kwargs: dict[str, Any] = {
        "goal": req.goal,
        "style": req.style,
        "language": req.language,
        "variants": req.variants,
        "seconds": req.seconds,
        "structure": shape,
    }
    try:
        return await writer.write(product, **kwargs), writer.name
    except ChatError as exc:
        # The seller asked for scripts, not for a particular writer: the templates always work.
        log.warning("studio.writer.failed", writer=writer.name, error=str(exc))
        fallback = TemplateWriter()
        return await fallback.write(product, **kwargs), fallback.name


async def create_run(
    conn: Conn,
    *,
    viewer: Viewer,
    req: RunRequest,
    idempotency_key: str,
    writer: ScriptWriter,
    models: ModelTable,
    settings: Settings,
    shape: ScriptShape | None = None,
    product_in_body: bool = False,
) -> tuple[StudioRun, bool]:
    """Scripts, one generation per variant, and the run that ties them together. Returns the run
    and whether it was made now (False: replayed from the Idempotency-Key)."""
    lang = check_language_and_style(req.language, req.style)
    fingerprint = idempotency.fingerprint(req)
    existing = await idempotency.claim(
        conn,
        user_id=viewer.user_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
    )
    if existing is not None:
        return await get_run(conn, user_id=viewer.user_id, run_id=existing), False
    product = await product_for_maker(
        conn, user_id=viewer.user_id, product_id=req.product_id, in_body=product_in_body
    )
    models.get(req.model).check(seconds=req.seconds, size=req.size)  # before a model is asked to write
    scripts, writer_name = await _scripts(writer, product, req, shape)
    generation_ids = []
    for script in scripts:
        prompt = storyboard_prompt(script, title=product.title, brand=product.brand, seconds=req.seconds)
        try:
            job, _ = await generation.create_generation(
                conn,
                viewer=viewer,
                data=GenerationCreate(
                    prompt=prompt,
                    model=req.model,
                    seconds=req.seconds,
                    size=req.size,
                    takes=1,
                    product_id=req.product_id,
                ),
                idempotency_key=_generation_key(f"{viewer.user_id}:{idempotency_key}", script.variant),
                models=models,
                settings=settings,
            )
        except ValidationFailed as exc:
            if exc.code == "prompt_blocked":  # the words came from the product, not from the caller
                raise ValidationFailed(
                    f"this product's text can't be used in a clip: {exc.detail}",
                    code="prompt_blocked",
                    field="product_id",
                ) from None
            raise
        generation_ids.append(job.id)
    run_id = await conn.fetchval(
        q.INSERT_RUN,
        viewer.user_id,
        req.product_id,
        req.breakdown_id,
        req.goal,
        req.style,
        lang,
        req.variants,
        req.seconds,
        writer_name,
        msgspec.to_builtins(scripts),
        generation_ids,
    )
    await idempotency.record(
        conn,
        user_id=viewer.user_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
        resource_id=run_id,
    )
    log.info("studio.run.created", run_id=run_id, product_id=req.product_id, variants=req.variants)
    return await get_run(conn, user_id=viewer.user_id, run_id=run_id), True


async def get_run(conn: Conn, *, user_id: int, run_id: int) -> StudioRun:
    row = await conn.fetchrow(q.RUN, run_id, user_id)
    if row is None:
        raise NotFound(f"no studio run {run_id}", code="unknown_studio_run")
    scripts = msgspec.convert(row["scripts"], list[Script])
    items = []
    drafts: list[int] = []
    for script, job_id in zip(scripts, row["generation_ids"], strict=True):
        job = await generation.get_generation(conn, user_id=user_id, job_id=job_id)
        drafts.extend(t.clip_id for t in job.takes if t.clip_id is not None)
        items.append(StudioVariant(variant=script.variant, script=script, prompt=job.prompt, generation=job))
    return StudioRun(
        id=row["id"],
        product_id=row["product_id"],
        breakdown_id=row["breakdown_id"],
        goal=row["goal"],
        style=row["style"],
        language=row["language"],
        variants=row["variants"],
        seconds=row["seconds"],
        writer=row["writer"],
        items=items,
        generation_ids=list(row["generation_ids"]),
        draft_clip_ids=drafts,
        created_at=row["created_at"],
    )


# --- breakdowns ----------------------------------------------------------------------------------

_SENTENCES = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_QUESTION_WORDS = re.compile(
    r"^(who|what|why|how|when|where|which|did|do|does|are|is|have|can|would|ever|"
    r"qui|que|pourquoi|comment|quién|qué|por qué|cómo|wer|was|warum|wie|quem|por que|como)\b",
    re.IGNORECASE,
)
# Calls to action in the languages the studio writes.
_CTA = re.compile(
    r"\b(shop|buy|order|tap|click|link in bio|get yours|follow|subscribe|save this|"
    r"compra|cómpralo|consíguelo|síguenos|achète|commande|abonne|kauf|bestell|folge|"
    r"compre|garanta|siga)\w*|購入|タップ|フォロー|购买|下单|关注|点击|구매|팔로우|눌러",
    re.IGNORECASE,
)


def analyse(prompt: str, caption: str, duration_ms: int) -> Structure:
    """The structure of a clip from its words: timed beats, the hook, pacing and its call to
    action. A storyboard written by the studio carries its own timings; any other prompt is split
    into sentences whose time is shared by length (speech takes time in proportion to words)."""
    duration_s = max(duration_ms / 1000, 0.1)
    parsed = parse_storyboard(prompt)
    if parsed:
        beats = [
            BreakdownBeat(
                start_s=min(b.start_s, duration_s),
                end_s=min(b.end_s, duration_s),
                text=b.voice_over,
                is_cta=b.kind == "cta" or bool(_CTA.search(b.voice_over)),
            )
            for b in parsed
        ]
    else:
        parts = [p.strip() for p in _SENTENCES.split(prompt) if p.strip()]
        if caption.strip():
            parts.append(caption.strip())
        parts = parts[: MAX_BEATS * 2] or [prompt.strip() or "(no words)"]
        total = sum(len(p) for p in parts)
        beats, start = [], 0.0
        for i, part in enumerate(parts):
            end = duration_s if i == len(parts) - 1 else start + duration_s * len(part) / total
            beats.append(
                BreakdownBeat(
                    start_s=round(start, 2), end_s=round(end, 2), text=part, is_cta=bool(_CTA.search(part))
                )
            )
            start = end
    hook = beats[0].text
    if hook.rstrip().endswith(("?", "？")) or _QUESTION_WORDS.match(hook):
        hook_kind = "question"
    elif hook.rstrip().endswith(("!", "！")):
        hook_kind = "exclamation"
    else:
        hook_kind = "statement"
    per_second = round(len(beats) / duration_s, 3)
    pacing = "fast" if per_second >= 0.75 else "steady" if per_second >= 0.35 else "slow"
    cta = next((b.text for b in reversed(beats) if b.is_cta), None)
    return Structure(
        hook=hook,
        hook_kind=hook_kind,  # type: ignore[arg-type]
        beats=beats,
        beats_per_second=per_second,
        pacing=pacing,  # type: ignore[arg-type]
        call_to_action=cta,
        duration_s=round(duration_s, 3),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


async def create_breakdown(conn: Conn, *, viewer_id: int, clip_id: int) -> Breakdown:
    source = await clips.published_source(conn, viewer_id=viewer_id, clip_id=clip_id)
    stats = await feed.clip_stats(conn, clip_id)
    structure = analyse(source.prompt, source.caption, source.duration_ms)
    metrics = Metrics(
        impressions=stats.impressions,
        watches=stats.watches,
        completes=stats.completes,
        likes=max(stats.likes, source.likes),
        shares=max(stats.shares, source.shares),
        views=source.views,
        comments=source.comments,
        remixes=source.remixes,
        completion_rate=_rate(stats.completes, stats.impressions),
        like_rate=_rate(stats.likes, stats.impressions),
        share_rate=_rate(stats.shares, stats.impressions),
    )
    row = await conn.fetchrow(
        q.INSERT_BREAKDOWN, viewer_id, clip_id, msgspec.to_builtins(structure), msgspec.to_builtins(metrics)
    )
    assert row is not None
    return _breakdown(row)


def _breakdown(row: Any) -> Breakdown:
    return Breakdown(
        id=row["id"],
        clip_id=row["clip_id"],
        structure=msgspec.convert(row["structure"], Structure),
        metrics=msgspec.convert(row["metrics"], Metrics),
        created_at=row["created_at"],
    )


async def get_breakdown(conn: Conn, *, user_id: int, breakdown_id: int) -> Breakdown:
    row = await conn.fetchrow(q.BREAKDOWN, breakdown_id, user_id)
    if row is None:
        raise NotFound(f"no breakdown {breakdown_id}", code="unknown_breakdown")
    return _breakdown(row)


def script_shape(structure: Structure) -> ScriptShape:
    """What a breakdown hands the script writer: beat count and time shares, the hook's kind."""
    beats = structure.beats[:MAX_BEATS]
    if len(beats) < 2:
        fractions: tuple[float, ...] = (0.6, 0.4)
    else:
        span = max(beats[-1].end_s - beats[0].start_s, 0.01)
        fractions = tuple(max(b.end_s - b.start_s, 0.01) / span for b in beats)
    return ScriptShape(beat_fractions=fractions, question_hook=structure.hook_kind == "question")


def nearest_seconds(models: ModelTable, model: str, duration_s: float) -> int:
    """The length the model offers that is closest to the studied clip's."""
    offered = models.get(model).seconds
    return min(offered, key=lambda s: (abs(s - duration_s), s))


# --- take scores -----------------------------------------------------------------------------------


async def product_facts(conn: Conn, product_id: int) -> ProductFacts | None:
    """The product as the judge compares a take with it (even when deleted since)."""
    row = await conn.fetchrow(q.PRODUCT, product_id)
    return ProductFacts(**dict(row)) if row is not None else None


async def save_score(conn: Conn, *, take_id: int, verdict: Verdict) -> None:
    await conn.execute(
        q.SAVE_SCORE,
        take_id,
        verdict.realism,
        verdict.product_consistency,
        verdict.voice_over,
        verdict.script_structure,
        verdict.overall,
        verdict.judge,
        verdict.notes,
    )
