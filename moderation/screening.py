"""The screening calls the other domains make, on the configured classifier.

:func:`screen_prompt` (a generation prompt: public figures and real people's likeness are
refused too, unless their verified cameo is included) and :func:`screen_text` (captions,
comments, cameo rules) answer with the built-in offline engine, synchronously, so they cost no
round trip; :func:`classify` asks the configured classifier (the OpenAI adapter when
``RIFFLE_MODERATION_BACKEND=openai``) and is what request handlers await.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import msgspec

from backend.settings import Settings, SettingsError
from moderation.classifier import (
    ALLOW,
    DEFAULT_RULES,
    Classifier,
    OfflineClassifier,
    OpenAIModeration,
    Rules,
    Verdict,
    normalise,
    spelled_out,
)

__all__ = [
    "ALLOW",
    "Verdict",
    "classifier_for",
    "classify",
    "normalise",
    "screen_prompt",
    "screen_text",
    "spelled_out",
]

_OFFLINE = OfflineClassifier()


def load_rules(path: str | Path) -> Rules:
    """DEFAULT_RULES extended by a JSON file: ``{"block": {category: [terms]}, "review": {…},
    "teen": {…}, "patterns": {category: [regex]}, "public_figures": [names]}``; every key is
    optional, terms are normalised like the text they are matched against."""
    try:
        raw = msgspec.json.decode(Path(path).read_bytes(), type=_RulesFile)
        for patterns in raw.patterns.values():
            for pattern in patterns:
                re.compile(pattern)
    except (OSError, msgspec.DecodeError, re.error) as exc:
        raise SettingsError(f"RIFFLE_MODERATION_RULES_FILE: {exc}") from None

    def merged(
        base: Mapping[str, Sequence[str]], extra: Mapping[str, list[str]], norm: bool = True
    ) -> dict[str, tuple[str, ...]]:
        out = {k: tuple(v) for k, v in base.items()}
        for category, terms in extra.items():
            out[category] = (*out.get(category, ()), *(normalise(t) if norm else t for t in terms))
        return out

    base = DEFAULT_RULES
    return Rules(
        block=merged(base.block, raw.block),
        review=merged(base.review, raw.review),
        patterns=merged(base.patterns, raw.patterns, norm=False),
        teen=merged(base.teen, raw.teen),
        public_figures=(*base.public_figures, *(normalise(n) for n in raw.public_figures)),
    )


class _RulesFile(msgspec.Struct, forbid_unknown_fields=True):
    block: dict[str, list[str]] = msgspec.field(default_factory=dict)
    review: dict[str, list[str]] = msgspec.field(default_factory=dict)
    patterns: dict[str, list[str]] = msgspec.field(default_factory=dict)
    teen: dict[str, list[str]] = msgspec.field(default_factory=dict)
    public_figures: list[str] = msgspec.field(default_factory=list)


def configure(settings: Settings) -> None:
    """Use the deployment's term lists (``RIFFLE_MODERATION_RULES_FILE``) in this process."""
    global _OFFLINE
    _OFFLINE = (
        OfflineClassifier(load_rules(settings.moderation_rules_file))
        if settings.moderation_rules_file
        else OfflineClassifier()
    )
    _openai.cache_clear()


def screen_prompt(text: str, *, teen: bool = False, people: Sequence[str] = ()) -> Verdict:
    return _OFFLINE.check(text, teen=teen, prompt=True, people=people)


def screen_text(text: str, *, teen: bool = False) -> Verdict:
    return _OFFLINE.check(text, teen=teen)


@lru_cache(maxsize=4)
def _openai(api_key: str, base_url: str) -> OpenAIModeration:
    return OpenAIModeration(api_key, base_url=base_url, fallback=_OFFLINE)


def classifier_for(settings: Settings) -> Classifier:
    if settings.moderation_backend == "openai" and settings.moderation_api_key:
        return _openai(settings.moderation_api_key, settings.moderation_base_url)
    return _OFFLINE


async def classify(
    settings: Settings, text: str, *, teen: bool = False, prompt: bool = False, people: Sequence[str] = ()
) -> Verdict:
    return await classifier_for(settings).classify(text, teen=teen, prompt=prompt, people=people)
