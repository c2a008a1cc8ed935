"""The template writer: every language and style gives well-formed, speakable, timed scripts."""

from __future__ import annotations

import itertools

import pytest

from backend.commerce.studio import check_language_and_style
from backend.commerce.studio_templates import (
    GOALS,
    LANGUAGES,
    PROMPT_LIMIT,
    STYLES,
    ProductFacts,
    claims,
    fits,
    format_price,
    parse_storyboard,
    storyboard_prompt,
    write_scripts,
)
from backend.errors import ValidationFailed

LAMP = ProductFacts(
    title="Lumen Desk Lamp",
    description=(
        "Warm to cool light in one touch.\n• Charges your phone wirelessly • Folds flat for travel; "
        "Made from recycled aluminium. " + "Very long sentence that goes on and on " * 10
    ),
    brand="Lumen",
    price_minor=5900,
    currency="EUR",
)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("seconds", [2, 4, 6, 8, 15, 30])
def test_every_script_is_timed_to_the_clip_and_speakable(language, seconds):
    for style, goal in itertools.product(STYLES, GOALS):
        for s in write_scripts(LAMP, goal=goal, style=style, language=language, variants=4, seconds=seconds):
            beats = s.beats
            assert beats[0].kind == "hook"
            assert beats[-1].kind == "cta"
            assert beats[0].start_s == 0
            assert beats[-1].end_s == seconds
            assert all(a.end_s == b.start_s and a.start_s < a.end_s for a, b in itertools.pairwise(beats))
            assert all(fits(b.voice_over, language, b.end_s - b.start_s) for b in beats), s
            if seconds >= 8:  # room for the whole hook and call to action, untrimmed
                assert beats[0].voice_over == s.hook
                assert beats[-1].voice_over == s.call_to_action
            if seconds >= 15:
                assert any(b.kind == "point" for b in beats)
            if goal == "conversion":
                assert any(format_price(5900, "EUR", language) in p for p in s.selling_points)
            prompt = storyboard_prompt(s, title=LAMP.title, brand=LAMP.brand, seconds=seconds)
            assert len(prompt) <= PROMPT_LIMIT
            parsed = parse_storyboard(prompt)
            assert [(p.kind, p.start_s, p.end_s) for p in parsed] == [
                (b.kind, b.start_s, b.end_s) for b in beats
            ]


def test_claims_come_from_sentences_and_bullets():
    found = claims(LAMP.description)
    assert found[:4] == [
        "Warm to cool light in one touch.",
        "Charges your phone wirelessly",
        "Folds flat for travel",
        "Made from recycled aluminium.",
    ]
    assert found[4].endswith("…")
    assert len(found[4].split()) == 14


@pytest.mark.parametrize(
    ("minor", "currency", "language", "text"),
    [
        (2499, "USD", "en", "$24.99"),
        (123456, "EUR", "de", "1.234,56 €"),
        (123456, "EUR", "fr", "1.234,56 €"),
        (1500, "JPY", "ja", "¥1,500"),
        (990, "BRL", "pt", "9,90 R$"),
        (1000, "CHF", "en", "10.00 CHF"),
    ],
)
def test_prices_are_written_the_way_the_language_writes_them(minor, currency, language, text):
    assert format_price(minor, currency, language) == text


def test_unsupported_languages_and_styles_are_named():
    assert check_language_and_style("pt-BR", "ugc") == "pt"
    with pytest.raises(ValidationFailed) as lang:
        check_language_and_style("it", "ugc")
    assert (lang.value.code, lang.value.field) == ("unsupported_language", "language")
    assert "en, es, fr, de, pt, ja, zh, ko" in lang.value.detail
    with pytest.raises(ValidationFailed) as style:
        check_language_and_style("en", "noir")
    assert style.value.code == "unsupported_style"


def test_awareness_scripts_do_not_sell_on_price():
    s = write_scripts(LAMP, goal="awareness", style="cinematic", language="en", variants=1, seconds=15)[0]
    assert not any("€" in p for p in s.selling_points)
    assert "Lumen" in s.call_to_action or s.call_to_action == "Save this for later."
