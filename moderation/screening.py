"""The screening calls the other domains make, on the configured classifier.

:func:`screen_prompt` (a generation prompt: public figures and real people's likeness are
refused too, unless their verified cameo is included) and :func:`screen_text` (captions,
comments, cameo rules) answer with the built-in offline engine, synchronously, so they cost no
round trip; :func:`classify` asks the configured classifier (the OpenAI adapter when
``RIFFLE_MODERATION_BACKEND=openai``) and is what request handlers await.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from backend.settings import Settings
from moderation.classifier import (
    ALLOW,
    Classifier,
    OfflineClassifier,
    OpenAIModeration,
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
