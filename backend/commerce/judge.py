"""Judging takes: realism, product consistency, voice-over and script structure, each in [0, 1].

``Judge`` is the protocol; :class:`HeuristicJudge` measures what can be measured offline (the
decoded video's size, length and bitrate, the poster's detail, contrast and exposure, the
storyboard's beats and their timing, how much of the product's name the prompt carries, whether
there is a sound track at all), and :class:`VisionJudge` asks a vision-capable model behind an
OpenAI-compatible chat API to look at the poster with the script and the product beside it.
The generation worker queues ``score_take`` for every finished take; the generation API lists
scored takes best first.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import msgspec
from PIL import Image, ImageStat

from backend.commerce.llm import ChatClient, ChatError, image_part
from backend.commerce.studio_templates import (
    LANGUAGES,
    ProductFacts,
    parse_storyboard,
    speaking_rate,
    speech_units,
)
from backend.media.video import InvalidVideo, probe_video

WEIGHTS = {"realism": 0.3, "product_consistency": 0.25, "voice_over": 0.2, "script_structure": 0.25}


@dataclass(frozen=True)
class TakeEvidence:
    """What a judge may look at for one take."""

    prompt: str
    requested_seconds: int
    requested_width: int
    requested_height: int
    video_path: Path
    video_bytes: int
    poster: bytes
    product: ProductFacts | None


@dataclass(frozen=True)
class Verdict:
    realism: float
    product_consistency: float
    voice_over: float
    script_structure: float
    judge: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def overall(self) -> float:
        parts = {
            "realism": self.realism,
            "voice_over": self.voice_over,
            "script_structure": self.script_structure,
        }
        if self.notes.get("has_product", True):
            parts["product_consistency"] = self.product_consistency
        total = sum(WEIGHTS[k] for k in parts)
        return round(sum(WEIGHTS[k] * v for k, v in parts.items()) / total, 4)


class Judge(Protocol):
    name: str

    async def score(self, evidence: TakeEvidence) -> Verdict: ...

    async def aclose(self) -> None: ...


def _unit(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 4)


_WORD = re.compile(r"[^\W\d_]{3,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", re.UNICODE)


def name_coverage(name: str, text: str) -> float:
    """Share of a name's words (or CJK characters) that appear in ``text``."""
    words = {w.casefold() for w in _WORD.findall(name)}
    if not words:
        return 1.0
    haystack = text.casefold()
    return sum(1 for w in words if w in haystack) / len(words)


def poster_signals(poster: bytes) -> dict[str, float]:
    with Image.open(io.BytesIO(poster)) as image:
        grey = image.convert("L")
        stat = ImageStat.Stat(grey)
        return {
            "entropy": round(float(grey.entropy()), 3),  # bits of detail, 0..8
            "contrast": round(float(stat.stddev[0]), 2),
            "brightness": round(float(stat.mean[0]), 2),
        }


def has_audio(path: Path) -> bool:
    try:
        with av.open(str(path), "r") as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError):
        return False


class HeuristicJudge:
    """Scores from measurements; works offline and costs nothing."""

    name = "heuristic"

    async def score(self, evidence: TakeEvidence) -> Verdict:
        # Decoding and image statistics are CPU work: keep them off the event loop.
        return await asyncio.to_thread(self.score_now, evidence)

    def score_now(self, evidence: TakeEvidence) -> Verdict:
        try:
            info = probe_video(evidence.video_path)
        except InvalidVideo:
            info = None
        notes: dict[str, Any] = {"has_product": evidence.product is not None}
        # Realism: a sharp, well-exposed, detailed picture at the size asked for, with enough bits.
        poster = poster_signals(evidence.poster)
        notes["poster"] = poster
        if info is None:
            realism = 0.0
            duration_s = 0.0
        else:
            duration_s = info.duration_ms / 1000
            bits_per_pixel_s = evidence.video_bytes * 8 / max(info.width * info.height * duration_s, 1)
            notes["video"] = {
                "width": info.width,
                "height": info.height,
                "duration_s": duration_s,
                "bits_per_pixel_second": round(bits_per_pixel_s, 3),
            }
            resolution = min(1.0, min(info.width, info.height) / 720)
            bitrate = min(1.0, bits_per_pixel_s / 1.5)
            detail = min(1.0, poster["entropy"] / 7.0)
            contrast = min(1.0, poster["contrast"] / 55)
            exposure = 1 - abs(poster["brightness"] - 128) / 128
            realism = 0.2 * resolution + 0.2 * bitrate + 0.3 * detail + 0.15 * contrast + 0.15 * exposure
            if (info.width, info.height) != (evidence.requested_width, evidence.requested_height):
                realism *= 0.8
        # Product consistency: the clip is about the product the seller named.
        product_consistency = 1.0
        if evidence.product is not None:
            title = name_coverage(evidence.product.title, evidence.prompt)
            brand = name_coverage(evidence.product.brand, evidence.prompt) if evidence.product.brand else 1.0
            product_consistency = 0.7 * title + 0.3 * brand
            notes["product_name_coverage"] = {"title": round(title, 3), "brand": round(brand, 3)}
        # Voice-over and structure read the storyboard the take was made from.
        beats = parse_storyboard(evidence.prompt)
        audio = has_audio(evidence.video_path)
        notes["beats"] = len(beats)
        notes["audio_track"] = audio
        if beats:
            fits = []
            for beat in beats:
                length = max(beat.end_s - beat.start_s, 0.1)
                language = beat.language if beat.language in LANGUAGES else "en"
                load = speech_units(beat.voice_over, language) / (speaking_rate(language) * length + 1)
                # Crammed lines cannot be spoken; a silent beat wastes the time it has.
                fits.append(1 / load if load > 1 else 0.4 + 0.6 * min(load / 0.4, 1.0))
            voice_over = 0.75 * (sum(fits) / len(fits)) + 0.25 * (1.0 if audio else 0.0)
        else:
            voice_over = 0.25 if audio else 0.1
        voice_over = _unit(voice_over)
        structure = 0.0
        if beats:
            kinds = [b.kind for b in beats]
            structure += 0.2 if kinds[0] == "hook" else 0.0
            structure += 0.2 if kinds[-1] == "cta" else 0.0
            structure += 0.15 if ("demo" in kinds or "point" in kinds) else 0.0
            gaps = sum(abs(b.start_s - a.end_s) for a, b in itertools.pairwise(beats))
            cover = beats[-1].end_s - beats[0].start_s
            asked = evidence.requested_seconds
            timing = max(0.0, 1 - (gaps + abs(cover - asked)) / asked)
            structure += 0.15 * timing
            structure += 0.05 if beats[0].end_s - beats[0].start_s <= 3.0 else 0.0  # a hook lands fast
        length_match = (
            max(0.0, 1 - abs(duration_s - evidence.requested_seconds) / evidence.requested_seconds)
            if info is not None
            else 0.0
        )
        structure += 0.25 * length_match
        notes["length_match"] = round(length_match, 3)
        return Verdict(
            realism=_unit(realism),
            product_consistency=_unit(product_consistency),
            voice_over=voice_over,
            script_structure=_unit(structure),
            judge=self.name,
            notes=notes,
        )

    async def aclose(self) -> None:
        return None


class _Marks(msgspec.Struct, forbid_unknown_fields=False):
    realism: float
    product_consistency: float
    voice_over: float
    script_structure: float
    reason: str = ""


_SYSTEM = """You judge takes of short product videos for a seller. You see the take's first frame,
the storyboard it was generated from and the product. Give four marks from 0 to 1:
realism (does the frame look like real footage, free of artefacts and distortions),
product_consistency (does the frame show the product described, true to its name and brand),
voice_over (is the storyboard's voice-over natural, speakable in each beat's time, in one language),
script_structure (does it open with a hook, show the product, give selling points, end with a call
to action, in time). Answer with one JSON object:
{"realism": n, "product_consistency": n, "voice_over": n, "script_structure": n, "reason": str}"""


class VisionJudge:
    """A vision-capable model behind an OpenAI-compatible chat API looks at the poster frame."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.name = f"vision:{client.model}"

    async def score(self, evidence: TakeEvidence) -> Verdict:
        product = (
            {
                "title": evidence.product.title,
                "brand": evidence.product.brand,
                "description": evidence.product.description[:1000],
            }
            if evidence.product is not None
            else None
        )
        text = msgspec.json.encode(
            {"product": product, "storyboard": evidence.prompt, "seconds": evidence.requested_seconds}
        ).decode()
        answer = await self.client.json_answer(
            _SYSTEM, [{"type": "text", "text": text}, image_part(evidence.poster, "image/jpeg")]
        )
        try:
            marks = msgspec.convert(answer, _Marks)
        except msgspec.ValidationError as exc:
            raise ChatError(f"the judge's answer does not have the expected shape: {exc}") from exc
        values = [marks.realism, marks.product_consistency, marks.voice_over, marks.script_structure]
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
            raise ChatError("the judge's marks must be numbers from 0 to 1")
        return Verdict(
            realism=_unit(marks.realism),
            product_consistency=_unit(marks.product_consistency) if product else 1.0,
            voice_over=_unit(marks.voice_over),
            script_structure=_unit(marks.script_structure),
            judge=self.name,
            notes={"has_product": product is not None, "reason": marks.reason[:500]},
        )

    async def aclose(self) -> None:
        await self.client.aclose()
