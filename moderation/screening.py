"""Prompt screening, the minimal rule until the moderation issue brings the full classifier.

A small term list per category, matched on a normalised form of the text (case, width and
accents folded; separators between letters removed) so the obvious evasions do not pass.
Generation calls :func:`screen_prompt` before anything is queued or charged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Categories and terms are deliberately few: this is the floor, not the classifier.
_TERMS: dict[str, tuple[str, ...]] = {
    "sexual": ("nude", "naked", "porn", "nsfw", "explicit sex"),
    "minors": ("child porn", "cp video", "underage"),
    "violence": ("behead", "gore", "massacre", "mass shooting"),
    "hate": ("ethnic cleansing", "white power", "heil hitler"),
    "self_harm": ("suicide tutorial", "how to kill myself", "self harm"),
}
_TEEN_ONLY: dict[str, tuple[str, ...]] = {
    "violence": ("blood", "gun", "weapon"),
    "sexual": ("sexy", "lingerie", "bikini"),
}
_REASONS = {
    "sexual": "Sexual content can't be generated on Riffle.",
    "minors": "Content sexualising or endangering minors is never allowed.",
    "violence": "Graphic violence can't be generated on Riffle.",
    "hate": "Hateful content can't be generated on Riffle.",
    "self_harm": (
        "We can't help make content about hurting yourself. "
        "If you are struggling, please reach out to someone you trust."
    ),
}


# Single letters joined by separators: "n.u.d.e", "g o r e".
_SPELLED_OUT = re.compile(r"(?<!\w)(?:\w[\s._\-*]+){2,}\w(?!\w)")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    category: str | None = None
    reason: str | None = None


ALLOW = Verdict(allowed=True)


def normalise(text: str) -> str:
    """Fold width, case and accents, and collapse whitespace."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", folded)


def spelled_out(normal: str) -> list[str]:
    """Runs of single letters split by separators, joined: "a n.u.d.e pic" → ["anude"].

    A run may swallow a real one-letter word next to it, so terms are looked for anywhere
    inside a run rather than at word boundaries.
    """
    return [re.sub(r"[\s._\-*]+", "", m.group(0)) for m in _SPELLED_OUT.finditer(normal)]


def _matches(text: str, runs: list[str], term: str) -> bool:
    if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None:
        return True
    squashed = term.replace(" ", "")
    return any(squashed in run for run in runs)


def screen_prompt(text: str, *, teen: bool = False) -> Verdict:
    normal = normalise(text)
    runs = spelled_out(normal)
    lists = [_TERMS, _TEEN_ONLY] if teen else [_TERMS]
    for table in lists:
        for category, terms in table.items():
            for term in terms:
                if _matches(normal, runs, term):
                    return Verdict(allowed=False, category=category, reason=_REASONS[category])
    return ALLOW
