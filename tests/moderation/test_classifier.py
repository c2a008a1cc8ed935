"""The offline screening engine and the OpenAI moderation adapter (against a local server
speaking the `/v1/moderations` shape)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, Response, post

from moderation.classifier import OfflineClassifier, OpenAIModeration
from tests.backend.generation.providers.fakes import FakeServer

engine = OfflineClassifier()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("a nude portrait", "sexual"),
        ("\uff4e\uff55\uff44\uff45 beach", "sexual"),  # fullwidth
        ("n.u.d.e beach", "sexual"),  # separators
        ("nüde beach", "sexual"),  # accents
        ("n\u0430ked dance", "sexual"),  # a Cyrillic a
        ("p0rn0 night", "sexual"),  # leetspeak
        ("色情 视频", "sexual"),  # CJK
        ("loli cosplay", "minors"),
        ("a beheading scene", "violence"),
        ("heil hitler rally", "hate"),
        ("how to kill myself", "self_harm"),
    ],
)
def test_blocked_everywhere(text: str, category: str) -> None:
    verdict = engine.check(text)
    assert (verdict.outcome, verdict.category) == ("block", category)
    assert verdict.reason


@pytest.mark.parametrize(
    "text",
    [
        "a red kite over the sea",
        "grandma's apple pie recipe",
        "skateboarding in the rain",
        "a cat knocks a glass off the table",
        "sunset timelapse over tokyo",
        "my dog learns to surf",
        "cooking pasta with fresh basil",
        "the essex coast at dawn",  # 'sex' inside a word
        "scunthorpe united highlights",
        "a therapist talks about burnout",
        "building a bookshelf from pallets",
        "a classic car restoration",
    ],
)
def test_ordinary_text_is_allowed(text: str) -> None:
    assert engine.check(text).outcome == "allow"
    assert engine.check(text, teen=True).outcome == "allow"


def test_teens_get_stricter_limits() -> None:
    assert engine.check("bikini try-on haul").outcome == "allow"
    assert engine.check("bikini try-on haul", teen=True).outcome == "block"
    assert engine.check("crypto giveaway, dm for promo").outcome == "review"
    assert engine.check("crypto giveaway, dm for promo", teen=True).outcome == "block"


def test_likeness_and_public_figures_only_in_prompts_unless_their_cameo_is_in() -> None:
    assert engine.check("taylor swift singing in the rain", prompt=True).category == "public_figure"
    assert engine.check("taylor swift singing in the rain").outcome == "allow"  # a caption may name her
    allowed = engine.check("taylor swift singing in the rain", prompt=True, people=["Taylor Swift"])
    assert allowed.outcome == "allow"
    assert engine.check("a deepfake of my boss", prompt=True).category == "likeness"
    assert engine.check("pikachu eating ramen").category == "brands_ip"


@pytest.fixture
def moderation_api():
    state: dict[str, Any] = {"status": 200, "flag": None, "scores": {}, "seen": []}

    @post("/v1/moderations", status_code=200)
    async def moderations(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await request.json()
        state["seen"].append((request.headers.get("authorization"), body))
        if state["status"] != 200:
            return Response({"error": {"message": "down"}}, status_code=state["status"])
        categories = dict.fromkeys(("sexual", "violence", "hate", "self-harm", "sexual/minors"), False)
        if state["flag"]:
            categories[state["flag"]] = True
        return Response(
            {
                "id": "modr-1",
                "model": body["model"],
                "results": [
                    {
                        "flagged": bool(state["flag"]),
                        "categories": categories,
                        "category_scores": dict.fromkeys(categories, 0.01) | state["scores"],
                    }
                ],
            },
            status_code=200,
        )

    server = FakeServer(Litestar([moderations])).start()
    yield server, state
    server.stop()


async def test_the_openai_adapter_speaks_the_moderations_shape(moderation_api) -> None:
    server, state = moderation_api
    adapter = OpenAIModeration("sk-test", base_url=server.url, timeout_s=5)
    try:
        assert (await adapter.classify("a calm lake")).outcome == "allow"
        auth, body = state["seen"][-1]
        assert auth == "Bearer sk-test"
        assert body == {"model": "omni-moderation-latest", "input": "a calm lake"}

        state["flag"] = "violence"
        verdict = await adapter.classify("something their model flags")
        assert (verdict.outcome, verdict.category) == ("block", "violence")

        state["flag"], state["scores"] = None, {"sexual": 0.4}
        assert (await adapter.classify("borderline")).outcome == "allow"
        assert (await adapter.classify("borderline", teen=True)).outcome == "block"  # teen threshold

        calls = len(state["seen"])
        assert (await adapter.classify("a nude portrait")).category == "sexual"  # offline first
        assert len(state["seen"]) == calls  # no round trip for what the offline engine blocks

        state["status"] = 503
        down = await adapter.classify("a calm lake")
        assert down.outcome == "review"  # allowed, and a person looks later
    finally:
        await adapter.aclose()


def test_a_deployment_adds_its_own_terms(tmp_path) -> None:
    from backend.settings import SettingsError
    from moderation import screening

    rules = tmp_path / "rules.json"
    rules.write_text(
        '{"block": {"spam": ["Buy Followers"]}, "review": {"brands_ip": ["acme logo"]},'
        ' "patterns": {"likeness": ["\\\\bclone of\\\\b"]}, "public_figures": ["Jane Mayor"]}'
    )
    engine = OfflineClassifier(screening.load_rules(rules))
    assert engine.check("buy f0llowers now").category == "spam"
    assert engine.check("the acme logo on a mug").outcome == "review"
    assert engine.check("a clone of my neighbour", prompt=True).category == "likeness"
    assert engine.check("jane mayor dancing", prompt=True).category == "public_figure"
    assert engine.check("a nude portrait").category == "sexual"  # the built-in lists still apply
    broken = tmp_path / "broken.json"
    broken.write_text('{"blok": {}}')
    with pytest.raises(SettingsError):
        screening.load_rules(broken)
