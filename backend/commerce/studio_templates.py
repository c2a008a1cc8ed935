"""The built-in script writer: language-aware templates that turn a product into short-video scripts.

A script is a hook, a product demo, selling points and a call to action, laid out as timed beats
that fill the requested seconds. What is spoken and shown on screen is written in the requested
language; the visual direction of each beat stays in English, the language video models follow
best. Variants of one request differ in hook, camera style and the order of selling points, so
a seller gets takes worth comparing rather than four copies.

Selling points come from the product itself: its description (split into short claims), its
brand and, for a conversion goal, its price. Nothing here calls out; it works offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from backend.commerce.studio_schemas import Beat, Script

LANGUAGES = ("en", "es", "fr", "de", "pt", "ja", "zh", "ko")
STYLES = ("ugc", "cinematic", "minimal", "energetic", "testimonial")
GOALS = ("awareness", "conversion")

# Comfortable speaking rates: words per second for languages written with spaces, characters
# per second for those without.
# (Short-video voice-overs run fast: about three words a second in English.)
_RATE = {"en": 3.0, "es": 3.2, "fr": 3.1, "de": 2.7, "pt": 3.1, "ja": 8.0, "zh": 5.0, "ko": 6.0}
_NO_SPACES = frozenset({"ja", "zh", "ko"})
_COMMA_DECIMALS = frozenset({"es", "fr", "de", "pt"})
_NO_MINOR_UNITS = frozenset({"JPY", "KRW", "CLP", "VND", "ISK", "HUF", "TWD"})
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "KRW": "₩", "BRL": "R$", "INR": "₹"}


@dataclass(frozen=True)
class Phrases:
    """Everything a language needs; ``{title}``, ``{brand}``, ``{price}`` are filled in."""

    hooks: dict[str, tuple[str, ...]]  # by style
    question_hooks: tuple[str, ...]
    demo: tuple[str, ...]
    brand_point: str
    price_point: str
    cta: dict[str, tuple[str, ...]]  # by goal
    labels: tuple[str, str, str, str]  # on-screen labels: hook, demo, point, cta


PHRASES: dict[str, Phrases] = {
    "en": Phrases(
        hooks={
            "ugc": ("I didn't expect {title} to be this good.", "Stop scrolling: you need {title}."),
            "cinematic": ("Meet {title}.", "Some things are made to be noticed. {title}."),
            "minimal": ("{title}. That's it.", "One thing. {title}."),
            "energetic": ("This changes everything: {title}!", "Wait for it... {title}!"),
            "testimonial": ("I've used {title} every day for a month.", "Honest review: {title}."),
        },
        question_hooks=("Still looking for the perfect {title}?", "Have you seen {title} yet?"),
        demo=("Here's how it works.", "Watch this."),
        brand_point="Made by {brand}.",
        price_point="Only {price}.",
        cta={
            "awareness": ("Follow for more from {brand}.", "Save this for later."),
            "conversion": ("Tap the tag and get yours today.", "Shop now before it's gone."),
        },
        labels=("NEW", "HOW IT WORKS", "WHY IT'S GREAT", "SHOP NOW"),
    ),
    "es": Phrases(
        hooks={
            "ugc": ("No esperaba que {title} fuera tan bueno.", "Deja de deslizar: necesitas {title}."),
            "cinematic": ("Te presentamos {title}.", "Hay cosas hechas para destacar. {title}."),
            "minimal": ("{title}. Nada más.", "Una sola cosa. {title}."),
            "energetic": ("¡Esto lo cambia todo: {title}!", "Espera... ¡{title}!"),
            "testimonial": ("Llevo un mes usando {title} cada día.", "Opinión sincera: {title}."),
        },
        question_hooks=("¿Sigues buscando el {title} perfecto?", "¿Ya conoces {title}?"),
        demo=("Así funciona.", "Mira esto."),
        brand_point="Hecho por {brand}.",
        price_point="Solo {price}.",
        cta={
            "awareness": ("Síguenos para ver más de {brand}.", "Guárdalo para después."),
            "conversion": ("Toca la etiqueta y consíguelo hoy.", "Compra ahora antes de que se agote."),
        },
        labels=("NUEVO", "CÓMO FUNCIONA", "POR QUÉ GUSTA", "COMPRA YA"),
    ),
    "fr": Phrases(
        hooks={
            "ugc": (
                "Je ne pensais pas que {title} serait aussi bien.",
                "Arrête de scroller : il te faut {title}.",
            ),
            "cinematic": ("Voici {title}.", "Certaines choses sont faites pour être remarquées. {title}."),
            "minimal": ("{title}. C'est tout.", "Une seule chose. {title}."),
            "energetic": ("Ça change tout : {title} !", "Attends... {title} !"),
            "testimonial": ("J'utilise {title} tous les jours depuis un mois.", "Avis honnête : {title}."),
        },
        question_hooks=("Tu cherches encore le {title} idéal ?", "Tu connais déjà {title} ?"),
        demo=("Voilà comment ça marche.", "Regarde ça."),
        brand_point="Conçu par {brand}.",
        price_point="Seulement {price}.",
        cta={
            "awareness": ("Abonne-toi pour voir plus de {brand}.", "Enregistre cette vidéo."),
            "conversion": ("Touche l'étiquette et commande-le aujourd'hui.", "Achète-le avant qu'il parte."),
        },
        labels=("NOUVEAU", "COMMENT ÇA MARCHE", "POURQUOI ON L'AIME", "ACHETER"),
    ),
    "de": Phrases(
        hooks={
            "ugc": (
                "Ich hätte nicht gedacht, dass {title} so gut ist.",
                "Nicht weiterscrollen: du brauchst {title}.",
            ),
            "cinematic": ("Das ist {title}.", "Manche Dinge fallen einfach auf. {title}."),
            "minimal": ("{title}. Mehr nicht.", "Eine Sache. {title}."),
            "energetic": ("Das ändert alles: {title}!", "Warte kurz... {title}!"),
            "testimonial": ("Ich nutze {title} seit einem Monat jeden Tag.", "Ehrliche Meinung: {title}."),
        },
        question_hooks=("Suchst du noch das perfekte {title}?", "Kennst du schon {title}?"),
        demo=("So funktioniert es.", "Schau mal."),
        brand_point="Von {brand}.",
        price_point="Nur {price}.",
        cta={
            "awareness": ("Folge uns für mehr von {brand}.", "Speicher dir das."),
            "conversion": ("Tippe auf den Tag und hol es dir heute.", "Jetzt kaufen, solange es da ist."),
        },
        labels=("NEU", "SO GEHT'S", "DARUM", "JETZT KAUFEN"),
    ),
    "pt": Phrases(
        hooks={
            "ugc": ("Eu não esperava que {title} fosse tão bom.", "Para de rolar: você precisa de {title}."),
            "cinematic": ("Conheça {title}.", "Algumas coisas nasceram para chamar atenção. {title}."),
            "minimal": ("{title}. Só isso.", "Uma coisa só. {title}."),
            "energetic": ("Isso muda tudo: {title}!", "Espera só... {title}!"),
            "testimonial": ("Uso {title} todos os dias há um mês.", "Opinião sincera: {title}."),
        },
        question_hooks=("Ainda procurando o {title} perfeito?", "Já conhece {title}?"),
        demo=("Veja como funciona.", "Olha isso."),
        brand_point="Feito pela {brand}.",
        price_point="Apenas {price}.",
        cta={
            "awareness": ("Siga para ver mais da {brand}.", "Salve para depois."),
            "conversion": ("Toque na etiqueta e garanta o seu hoje.", "Compre agora antes que acabe."),
        },
        labels=("NOVO", "COMO FUNCIONA", "POR QUE AMAR", "COMPRE JÁ"),
    ),
    "ja": Phrases(
        hooks={
            "ugc": ("{title}、正直ここまで良いとは思わなかった。", "スクロールを止めて。{title}です。"),
            "cinematic": ("{title}、登場。", "目を引くために生まれた。{title}。"),
            "minimal": ("{title}。それだけ。", "ひとつだけ。{title}。"),
            "energetic": ("これは革命！{title}！", "見てて…{title}！"),
            "testimonial": ("{title}を1か月毎日使ってみた。", "正直レビュー：{title}。"),
        },
        question_hooks=("理想の{title}、まだ探してる？", "{title}、もう見た？"),
        demo=("使い方はこちら。", "見てください。"),
        brand_point="{brand}がつくりました。",
        price_point="たったの{price}。",
        cta={
            "awareness": ("{brand}をフォローしてね。", "保存してあとで見てね。"),
            "conversion": ("タグをタップして今すぐゲット。", "売り切れる前に今すぐ購入。"),
        },
        labels=("新登場", "使い方", "ここが魅力", "今すぐ購入"),
    ),
    "zh": Phrases(
        hooks={
            "ugc": ("没想到{title}这么好用。", "别划走：你需要{title}。"),
            "cinematic": ("认识一下{title}。", "有些东西生来就引人注目。{title}。"),
            "minimal": ("{title}。就这样。", "只有一件事。{title}。"),
            "energetic": ("这改变了一切：{title}！", "等一下……{title}！"),
            "testimonial": ("我每天用{title}，已经一个月了。", "真实测评：{title}。"),
        },
        question_hooks=("还在找完美的{title}吗？", "你见过{title}吗？"),
        demo=("看看怎么用。", "看这里。"),
        brand_point="{brand}出品。",
        price_point="只要{price}。",
        cta={
            "awareness": ("关注{brand}，看更多。", "先收藏起来。"),
            "conversion": ("点击商品标签，今天就入手。", "马上购买，卖完就没了。"),
        },
        labels=("新品", "使用方法", "亮点", "立即购买"),
    ),
    "ko": Phrases(
        hooks={
            "ugc": ("{title}이 이렇게 좋을 줄 몰랐어요.", "스크롤 멈추세요. {title}이 필요해요."),
            "cinematic": ("{title}을 소개합니다.", "눈길을 끌기 위해 태어났다. {title}."),
            "minimal": ("{title}. 그게 다예요.", "단 하나. {title}."),
            "energetic": ("이건 완전 달라요: {title}!", "잠깐만요... {title}!"),
            "testimonial": ("한 달 동안 매일 {title}을 써봤어요.", "솔직 후기: {title}."),
        },
        question_hooks=("아직도 완벽한 {title}을 찾고 있나요?", "{title} 보셨어요?"),
        demo=("이렇게 사용해요.", "이것 보세요."),
        brand_point="{brand}이 만들었어요.",
        price_point="단 {price}.",
        cta={
            "awareness": ("{brand}을 팔로우하고 더 보세요.", "저장해 두세요."),
            "conversion": ("태그를 눌러 오늘 바로 구매하세요.", "품절 전에 지금 구매하세요."),
        },
        labels=("신상품", "사용법", "장점", "지금 구매"),
    ),
}

_CAMERA = {
    "ugc": ("handheld selfie angle, natural window light", "phone camera close-up, casual home setting"),
    "cinematic": ("slow dolly-in, shallow depth of field, soft rim light", "sweeping orbit, moody lighting"),
    "minimal": ("static centred shot on a plain seamless background", "top-down flat lay, white surface"),
    "energetic": ("fast whip pans and punchy jump cuts", "quick zooms synced to the beat, bright colours"),
    "testimonial": ("medium shot of a person talking to camera", "over-the-shoulder shot while they use it"),
}


@dataclass(frozen=True)
class ProductFacts:
    title: str
    description: str
    brand: str | None
    price_minor: int | None
    currency: str | None


@dataclass(frozen=True)
class Structure:
    """The shape a breakdown of another clip asks scripts to follow: how many beats, what share
    of the time each takes, and whether the hook asks a question."""

    beat_fractions: tuple[float, ...]
    question_hook: bool


def base_language(language: str) -> str:
    """``pt-BR`` → ``pt``: the templates are per language, not per region."""
    return language.split("-", 1)[0].casefold()


def format_price(price_minor: int, currency: str, language: str) -> str:
    exponent = 0 if currency in _NO_MINOR_UNITS else 2
    amount = f"{price_minor / 10**exponent:,.{exponent}f}"
    if language in _COMMA_DECIMALS:  # 1,234.50 → 1.234,50
        amount = amount.replace(",", " ").replace(".", ",").replace(" ", ".")
    symbol = _SYMBOLS.get(currency)
    if symbol is None:
        return f"{amount} {currency}"
    return f"{amount} {symbol}" if language in _COMMA_DECIMALS else f"{symbol}{amount}"


_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*|\n+|\s*[•·;]\s*")


def claims(description: str, *, limit: int = 6) -> list[str]:
    """Short claims from a product description: its sentences and bullet items, trimmed."""
    out: list[str] = []
    for part in _SENTENCE.split(description):
        text = part.strip(" -*\t")
        if len(text) < 3:
            continue
        words = text.split()
        if len(words) > 14:
            text = " ".join(words[:14]).rstrip(",;:") + "…"
        if text.casefold() not in (c.casefold() for c in out):
            out.append(text)
        if len(out) >= limit:
            break
    return out


def fits(text: str, language: str, seconds: float) -> bool:
    """Whether ``text`` can be spoken in ``seconds`` at a comfortable rate."""
    return speech_units(text, language) <= _RATE[language] * seconds + 1


_LATIN_WORD = re.compile(r"[A-Za-z0-9$€£.,'-]+")


def speech_units(text: str, language: str) -> int:
    if language in _NO_SPACES:
        # Characters of the script, plus about three syllables for each Latin word (a brand name).
        latin = _LATIN_WORD.findall(text)
        rest = _LATIN_WORD.sub("", text)
        return len(re.sub(r"[\s\W]", "", rest)) + 3 * len(latin)
    return len(text.split())


def speaking_rate(language: str) -> float:
    return _RATE[language]


def _trim(text: str, language: str, seconds: float) -> str:
    """Cut a line that is too long to say in ``seconds`` (the last resort of a very short clip)."""
    if fits(text, language, seconds):
        return text
    if language in _NO_SPACES:
        cut = text
        while cut and not fits(cut, language, seconds):
            cut = cut[:-1]
        return cut.rstrip("、，, ") + "…"
    words = text.split()
    while len(words) > 1 and not fits(" ".join(words), language, seconds):
        words.pop()
    return " ".join(words).rstrip(",;:") + "…"


BeatKind = Literal["hook", "demo", "point", "cta"]
PAUSE_S = 0.15  # a breath between lines
# How spare time is shared once every line has what it needs.
_WEIGHT: dict[str, float] = {"hook": 0.2, "demo": 0.3, "point": 0.12, "cta": 0.15}


def _need(text: str, language: str) -> float:
    return speech_units(text, language) / _RATE[language] + PAUSE_S


def _timed(
    lines: list[tuple[BeatKind, str]], seconds: int, language: str, fractions: list[float] | None
) -> list[tuple[BeatKind, str, float, float]]:
    """Give each line its time: what it needs to be spoken, plus a share of what is left (or the
    shares a breakdown prescribes). The caller has already dropped what cannot fit."""
    if fractions is not None:
        lengths = [seconds * f for f in fractions]
    else:
        needs = [_need(text, language) for _, text in lines]
        slack = seconds - sum(needs)
        if slack >= 0:
            weights = [_WEIGHT[kind] for kind, _ in lines]
            lengths = [n + slack * w / sum(weights) for n, w in zip(needs, weights, strict=True)]
        else:  # even the hook and the call to action are long for this clip: share by need
            lengths = [seconds * n / sum(needs) for n in needs]
    out, start = [], 0.0
    for i, ((kind, text), length) in enumerate(zip(lines, lengths, strict=True)):
        end = float(seconds) if i == len(lines) - 1 else round(start + length, 2)
        out.append((kind, _trim(text, language, end - start), round(start, 2), end))
        start = end
    return out


def _fit_lines(
    hook: str,
    demo: str,
    points: list[str],
    cta: str,
    *,
    seconds: int,
    language: str,
    structure: Structure | None,
) -> list[tuple[BeatKind, str]]:
    """The lines a clip of ``seconds`` has room for. Selling points go first, then the demo line;
    the hook and the call to action always stay. A breakdown fixes the number of beats instead."""
    if structure is not None and len(structure.beat_fractions) >= 2:
        n = len(structure.beat_fractions)
        middle: list[tuple[BeatKind, str]] = [("demo", demo)] if n >= 3 else []
        for i in range(max(n - 3, 0)):
            middle.append(("point", points[i % len(points)] if points else demo))
        return [("hook", hook), *middle, ("cta", cta)]
    kept = points[: min(3, max(0, (seconds - 2) // 2))]

    def total() -> float:
        return sum(_need(t, language) for t in [hook, *([demo] if with_demo else []), *kept, cta])

    with_demo = seconds > 2
    while kept and total() > seconds:
        kept.pop()
    if with_demo and total() > seconds:
        with_demo = False
    lines: list[tuple[BeatKind, str]] = [("hook", hook)]
    if with_demo:
        lines.append(("demo", demo))
    lines += [("point", p) for p in kept]
    lines.append(("cta", cta))
    return lines


def _pick(options: tuple[str, ...], variant: int, fill: dict[str, str], language: str, room_s: float) -> str:
    """The variant's own option, unless it is too long to say in ``room_s``; then the shortest."""
    chosen = options[variant % len(options)].format(**fill)
    if _need(chosen, language) <= room_s:
        return chosen
    return min((o.format(**fill) for o in options), key=lambda t: _need(t, language))


def write_scripts(
    product: ProductFacts,
    *,
    goal: str,
    style: str,
    language: str,
    variants: int,
    seconds: int,
    structure: Structure | None = None,
) -> list[Script]:
    """One script per variant; the caller has checked ``language`` and ``style``.

    Selling points that the clip has no time to say are still shown: as on-screen text over the
    demo and the hook."""
    lang = base_language(language)
    phrases = PHRASES[lang]
    brand = product.brand or product.title
    fill = {"title": product.title, "brand": brand, "price": ""}
    points = claims(product.description)
    if product.brand:
        points.append(phrases.brand_point.format(**fill))
    if goal == "conversion" and product.price_minor is not None and product.currency:
        fill["price"] = format_price(product.price_minor, product.currency, lang)
        points.insert(0, phrases.price_point.format(**fill))
    hooks = phrases.question_hooks if structure and structure.question_hook else phrases.hooks[style]
    fractions = None
    if structure is not None and len(structure.beat_fractions) >= 2:
        total = sum(structure.beat_fractions) or 1.0
        fractions = [f / total for f in structure.beat_fractions]
    scripts = []
    for variant in range(variants):
        # The price (when there is one) leads; the other points rotate between variants.
        head, rest = (points[:1], points[1:]) if fill["price"] else ([], points)
        shift = variant % len(rest) if rest else 0
        ordered = head + rest[shift:] + rest[:shift]
        camera = _CAMERA[style][variant % len(_CAMERA[style])]
        hook = _pick(hooks, variant, fill, lang, 0.5 * seconds)
        demo = phrases.demo[variant % len(phrases.demo)]
        cta = _pick(phrases.cta[goal], variant, fill, lang, 0.35 * seconds)
        lines = _fit_lines(hook, demo, ordered, cta, seconds=seconds, language=lang, structure=structure)
        spoken = [text for kind, text in lines if kind == "point"]
        shown = [p for p in ordered[:3] if p not in spoken]
        beats: list[Beat] = []
        for kind, line, start, end in _timed(lines, seconds, lang, fractions):
            if kind == "hook":
                visual, label = f"Opening on {product.title}, {camera}", phrases.labels[0]
            elif kind == "demo":
                visual = f"Hands using {product.title}, showing what it does, {camera}"
                label = phrases.labels[1]
            elif kind == "point":
                visual = f"Close-up detail of {product.title} illustrating the point, {camera}"
                label = phrases.labels[2]
            else:
                visual, label = f"{product.title} hero shot with the brand {brand}", phrases.labels[3]
            if kind in ("demo", "hook") and shown:
                label = _clip(shown.pop(0), 40)
                spoken.append(label)
            beats.append(
                Beat(
                    kind=kind, start_s=start, end_s=end, visual=visual, voice_over=line, on_screen_text=label
                )
            )
        scripts.append(
            Script(
                variant=variant + 1,
                language=lang,
                style=style,
                goal=goal,
                hook=hook,
                demo=demo,
                selling_points=spoken,
                call_to_action=cta,
                beats=beats,
                voice_over=" ".join(b.voice_over for b in beats),
            )
        )
    return scripts


# --- the storyboard as a video model reads it ----------------------------------------------------

PROMPT_LIMIT = 2000  # GenerationCreate.prompt
_STYLE_LOOK = {
    "ugc": "authentic creator-shot",
    "cinematic": "cinematic, high-end commercial",
    "minimal": "minimal, clean studio",
    "energetic": "fast-paced, high-energy",
    "testimonial": "testimonial, talking-to-camera",
}
_BEAT_LINE = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?)-(?P<end>\d+(?:\.\d+)?) s\] (?P<kind>HOOK|DEMO|POINT|CTA) — (?P<visual>.*?)"
    r"(?: Voice-over \((?P<lang>[a-z]{2,3})\): \"(?P<vo>.*?)\")?(?: On-screen text: \"(?P<text>.*?)\")?$"
)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split()).replace('"', "'")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def storyboard_prompt(script: Script, *, title: str, brand: str | None, seconds: int) -> str:
    """The prompt a generation gets: the look, the product, then one line per timed beat."""
    maker = f" by {_clip(brand, 60)}" if brand else ""
    head = (
        f"{_STYLE_LOOK.get(script.style, script.style)} vertical product video of "
        f'"{_clip(title, 120)}"{maker}, {seconds} seconds, {script.goal} ad.\nStoryboard:'
    )
    per_beat = max(120, (PROMPT_LIMIT - len(head) - 20) // max(len(script.beats), 1))
    lines = [head]
    for beat in script.beats:
        prefix = f"[{beat.start_s:g}-{beat.end_s:g} s] {beat.kind.upper()} — "
        room = per_beat - len(prefix) - 60
        visual = _clip(beat.visual, max(40, room // 3))
        vo = _clip(beat.voice_over, max(40, room - len(visual)))
        text = _clip(beat.on_screen_text, 40)
        lines.append(f'{prefix}{visual}. Voice-over ({script.language}): "{vo}" On-screen text: "{text}"')
    return "\n".join(lines)[:PROMPT_LIMIT]


@dataclass(frozen=True)
class ParsedBeat:
    kind: str
    start_s: float
    end_s: float
    voice_over: str
    language: str | None


def parse_storyboard(prompt: str) -> list[ParsedBeat]:
    """The beats of a prompt written by :func:`storyboard_prompt` (none for any other prompt)."""
    out = []
    for line in prompt.splitlines():
        m = _BEAT_LINE.match(line.strip())
        if m is None:
            continue
        out.append(
            ParsedBeat(
                kind=m["kind"].lower(),
                start_s=float(m["start"]),
                end_s=float(m["end"]),
                voice_over=m["vo"] or "",
                language=m["lang"],
            )
        )
    return out
