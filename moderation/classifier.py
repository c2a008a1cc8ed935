"""Screening text: the `Classifier` protocol, the built-in offline engine and the OpenAI adapter.

Every text a user writes that others will see or a model will render goes through a
classifier: generation prompts, captions, comments and cameo rules. A verdict is ``allow``,
``block`` (with a category and a reason the user can read) or ``review`` (allowed for now, and
a case is opened for a moderator).

The offline engine matches configurable term and pattern lists per category on a normalised
form of the text: width, case and accents folded (NFKC + casefold + no combining marks),
look-alike letters mapped to Latin (Cyrillic and Greek homoglyphs, leetspeak digits and
symbols), separators between single letters removed ("n.u.d.e", "g o r e"), and CJK terms
matched as substrings (no word boundaries in those scripts). Teen accounts get a stricter
list and "review" becomes "block" for them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx
import msgspec

Outcome = Literal["allow", "block", "review"]
Category = Literal[
    "sexual", "minors", "violence", "hate", "self_harm", "public_figure", "likeness", "brands_ip", "spam"
]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    category: str | None = None
    reason: str | None = None
    matched: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome != "block"


ALLOW = Verdict("allow")

REASONS: dict[str, str] = {
    "sexual": "Sexual content can't be made or shown on Riffle.",
    "minors": "Content sexualising or endangering minors is never allowed.",
    "violence": "Graphic violence can't be made or shown on Riffle.",
    "hate": "Hateful content can't be made or shown on Riffle.",
    "self_harm": (
        "We can't help make content about hurting yourself. "
        "If you are struggling, please reach out to someone you trust."
    ),
    "public_figure": (
        "Real public figures can't be depicted unless their own verified cameo is in the clip "
        "with their consent."
    ),
    "likeness": "Real people can't be depicted without their verified cameo and consent.",
    "brands_ip": "This looks like someone else's brand or characters; a review will check it.",
    "spam": "This looks like spam.",
}


class Classifier(Protocol):
    name: str

    async def classify(
        self, text: str, *, teen: bool = False, prompt: bool = False, people: Sequence[str] = ()
    ) -> Verdict: ...


# --- normalisation -------------------------------------------------------------------------------

# Letters that look Latin, and the digits and symbols people use for letters.
# Cyrillic and Greek letters that look Latin (written as escapes: they are invisible tricks),
# and the digits and symbols people type for letters.
_HOMOGLYPHS = (
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455"
    "\u043a\u043c\u0442\u0432\u043d\u0501\u0261\u03b1\u03bf\u03c1"
    "\u03bd\u03b9\u03ba\u03c4\u03c5\u03c7"
)
_LATIN = "aeopcyxijskmtbhdgaopviktux"
_LOOKALIKES = str.maketrans(_HOMOGLYPHS + "013457@$!|\u20ac", _LATIN + "oieastasile")
_SEPARATORS = r"[\s._\-*+~'\"`/\\|:]+"
_SPELLED_OUT = re.compile(rf"(?<!\w)(?:\w{_SEPARATORS}){{2,}}\w(?!\w)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def normalise(text: str) -> str:
    """Fold width, case and accents, and collapse whitespace (what users see as "the same")."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", folded).strip()


def deobfuscate(normal: str) -> str:
    """Look-alike letters and leetspeak mapped to the letters they imitate."""
    return normal.translate(_LOOKALIKES)


def spelled_out(normal: str) -> list[str]:
    """Runs of single letters split by separators, joined: "a n.u.d.e pic" → ["anude"]."""
    return [re.sub(_SEPARATORS, "", m.group(0)) for m in _SPELLED_OUT.finditer(normal)]


# --- the offline engine --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """Term lists per category (matched as whole words, or as substrings for CJK terms) and
    regular expressions, each with the outcome it gives. ``teen`` lists apply to teen
    accounts only."""

    block: Mapping[str, Sequence[str]]
    review: Mapping[str, Sequence[str]] = field(default_factory=dict)
    patterns: Mapping[str, Sequence[str]] = field(default_factory=dict)  # block
    teen: Mapping[str, Sequence[str]] = field(default_factory=dict)  # block for teens
    public_figures: Sequence[str] = ()


DEFAULT_PUBLIC_FIGURES = (
    "taylor swift",
    "elon musk",
    "donald trump",
    "joe biden",
    "barack obama",
    "kamala harris",
    "vladimir putin",
    "xi jinping",
    "narendra modi",
    "emmanuel macron",
    "king charles",
    "pope francis",
    "beyonce",
    "rihanna",
    "kim kardashian",
    "cristiano ronaldo",
    "lionel messi",
    "lebron james",
    "tom cruise",
    "scarlett johansson",
    "keanu reeves",
    "oprah winfrey",
    "mark zuckerberg",
    "bill gates",
)

DEFAULT_RULES = Rules(
    block={
        "sexual": (
            "nude",
            "naked",
            "porn",
            "porno",
            "nsfw",
            "explicit sex",
            "sex tape",
            "hentai",
            "色情",
            "裸体",
            "エロ",
        ),
        "minors": ("child porn", "cp video", "underage", "loli", "preteen", "jailbait", "儿童色情"),
        "violence": ("behead", "beheading", "gore", "massacre", "mass shooting", "dismember", "斩首", "血腥"),
        "hate": ("ethnic cleansing", "white power", "heil hitler", "gas the", "kill all"),
        "self_harm": (
            "suicide tutorial",
            "how to kill myself",
            "self harm",
            "self-harm",
            "cut myself",
            "自杀",
        ),
    },
    review={
        "brands_ip": (
            "mickey mouse",
            "pikachu",
            "spider-man",
            "spiderman",
            "darth vader",
            "nike logo",
            "coca-cola logo",
        ),
        "spam": ("free followers", "click the link in bio", "dm for promo", "crypto giveaway"),
    },
    patterns={
        "likeness": (
            r"\b(?:real|actual)\s+(?:person|people|photo of)\b",
            r"\b(?:deepfake|face ?swap)\b",
            r"\bmy (?:ex|neighbou?r|boss|teacher|classmate)\b.*\b(?:naked|kissing|fighting)\b",
        ),
    },
    teen={
        "violence": ("blood", "gun", "guns", "weapon", "knife fight"),
        "sexual": ("sexy", "lingerie", "bikini", "twerk"),
        "self_harm": ("diet pills", "starve"),
    },
    public_figures=DEFAULT_PUBLIC_FIGURES,
)


def _has(text: str, runs: Sequence[str], term: str) -> bool:
    if _CJK.search(term):
        return term in text
    if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text):
        return True
    squashed = re.sub(r"[\s\-]", "", term)
    return len(squashed) >= 4 and any(squashed in run for run in runs)


class OfflineClassifier:
    """The built-in engine: no network, no model weights, deterministic."""

    name = "builtin"

    def __init__(self, rules: Rules = DEFAULT_RULES) -> None:
        self.rules = rules
        self._patterns = {c: [re.compile(p) for p in ps] for c, ps in rules.patterns.items()}

    def check(
        self, text: str, *, teen: bool = False, prompt: bool = False, people: Sequence[str] = ()
    ) -> Verdict:
        """``prompt``: the text asks a model to make something, so naming a real public figure or
        asking for a real person's likeness is refused too, unless the person is among ``people``
        (the display names of verified cameos included with consent)."""
        normal = normalise(text)
        allowed = {normalise(p) for p in people}
        forms = list(dict.fromkeys((normal, deobfuscate(normal))))
        runs = [run for form in forms for run in spelled_out(form)]
        tables: list[Mapping[str, Sequence[str]]] = (
            [self.rules.block, self.rules.teen] if teen else [self.rules.block]
        )
        for form in forms:
            for table in tables:
                for category, terms in table.items():
                    for term in terms:
                        if _has(form, runs, term):
                            return Verdict("block", category, REASONS.get(category), term)
            if not prompt:
                continue
            for category, patterns in self._patterns.items():
                for pattern in patterns:
                    if pattern.search(form):
                        return Verdict("block", category, REASONS.get(category), pattern.pattern)
            for figure in self.rules.public_figures:
                if figure not in allowed and _has(form, runs, figure):
                    return Verdict("block", "public_figure", REASONS["public_figure"], figure)
        for category, terms in self.rules.review.items():
            for term in terms:
                if any(_has(form, runs, term) for form in forms):
                    outcome: Outcome = "block" if teen else "review"
                    return Verdict(outcome, category, REASONS.get(category), term)
        return ALLOW

    async def classify(
        self, text: str, *, teen: bool = False, prompt: bool = False, people: Sequence[str] = ()
    ) -> Verdict:
        return self.check(text, teen=teen, prompt=prompt, people=people)


# --- OpenAI's moderation endpoint ----------------------------------------------------------------


class _Result(msgspec.Struct):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]


class _Answer(msgspec.Struct):
    results: list[_Result]


# OpenAI's categories → ours.
_OPENAI_CATEGORIES = {
    "sexual/minors": "minors",
    "sexual": "sexual",
    "violence/graphic": "violence",
    "violence": "violence",
    "hate/threatening": "hate",
    "hate": "hate",
    "harassment/threatening": "hate",
    "self-harm/instructions": "self_harm",
    "self-harm/intent": "self_harm",
    "self-harm": "self_harm",
}
TEEN_THRESHOLD = 0.3  # a category scored above this blocks for teens even when not flagged


class OpenAIModeration:
    """``POST /v1/moderations`` (model ``omni-moderation-latest``) over httpx. Flagged
    categories block; for teens a lower score threshold applies. The offline engine runs too,
    for what OpenAI's categories do not cover (public figures, likeness, brands, spam)."""

    name = "openai"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.openai.com",
        model: str = "omni-moderation-latest",
        timeout_s: float = 10.0,
        fallback: OfflineClassifier | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self.model = model
        self.offline = fallback or OfflineClassifier()

    async def classify(
        self, text: str, *, teen: bool = False, prompt: bool = False, people: Sequence[str] = ()
    ) -> Verdict:
        local = self.offline.check(text, teen=teen, prompt=prompt, people=people)
        if local.outcome == "block":
            return local
        try:
            response = await self._http.post("/v1/moderations", json={"model": self.model, "input": text})
            response.raise_for_status()
            result = msgspec.json.decode(response.content, type=_Answer).results[0]
        except (httpx.HTTPError, msgspec.DecodeError, IndexError):
            # The service is away: the offline verdict stands, and a person looks later.
            return (
                local
                if local.outcome == "review"
                else Verdict("review", None, None, "moderation service unavailable")
            )
        for theirs, ours in _OPENAI_CATEGORIES.items():
            score = result.category_scores.get(theirs, 0.0)
            if result.categories.get(theirs) or (teen and score >= TEEN_THRESHOLD):
                return Verdict("block", ours, REASONS.get(ours), theirs)
        return local

    async def aclose(self) -> None:
        await self._http.aclose()
