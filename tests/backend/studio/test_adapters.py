"""The language-model script writer and the vision judge against a local server that speaks
the OpenAI chat completions API; when a model answers badly the templates and the heuristic
take over."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.commerce.judge import HeuristicJudge, TakeEvidence, VisionJudge
from backend.commerce.llm import ChatClient, ChatError, ChatWriter
from backend.commerce.studio_tasks import judge_take
from backend.commerce.studio_templates import ProductFacts
from tests.backend.studio.chat_server import chat_server, completion
from tests.backend.studio.products import make_product
from tests.backend.studio.test_judge import render
from tests.conftest import make_settings
from tests.factories import UserFactory

MUG = ProductFacts(
    title="Aurora Mug", description="Hot for hours.", brand="Aurora", price_minor=None, currency=None
)


def script(seconds: int = 8) -> dict[str, Any]:
    return {
        "hook": "¿Tu café se enfría?",
        "demo": "Mira cómo funciona.",
        "selling_points": ["Caliente durante horas."],
        "call_to_action": "Toca la etiqueta y cómpralo.",
        "beats": [
            {
                "kind": "hook",
                "start_s": 0,
                "end_s": 2,
                "visual": "Steam over a mug",
                "voice_over": "¿Tu café se enfría?",
            },
            {
                "kind": "demo",
                "start_s": 2,
                "end_s": 4.5,
                "visual": "Pouring coffee",
                "voice_over": "Mira cómo funciona.",
            },
            {
                "kind": "point",
                "start_s": 4.5,
                "end_s": 6,
                "visual": "Thermometer",
                "voice_over": "Caliente durante horas.",
            },
            {
                "kind": "cta",
                "start_s": 6,
                "end_s": seconds,
                "visual": "Mug hero shot",
                "voice_over": "Toca la etiqueta y cómpralo.",
                "on_screen_text": "COMPRA",
            },
        ],
    }


def overrun() -> dict[str, Any]:
    """A script whose selling point runs past the end of an 8 s clip."""
    bad = script()
    bad["beats"][2] = bad["beats"][2] | {"end_s": 12}
    bad["beats"][3] = bad["beats"][3] | {"start_s": 12, "end_s": 14}
    return bad


def scripts_answer(n: int, **override: Any):
    def answer(body: dict[str, Any]) -> tuple[int, Any]:
        items = [script() | override for _ in range(n)]
        return 200, completion(json.dumps({"scripts": items}, ensure_ascii=False))

    return answer


async def test_the_llm_writer_speaks_chat_completions_and_its_scripts_drive_the_run(
    database_url, redis_url, tmp_path, conn
):
    with chat_server(scripts_answer(2)) as server:
        settings = make_settings(
            database_url,
            redis_url,
            tmp_path,
            studio_writer="llm",
            studio_llm_base_url=server.url,
            studio_llm_api_key="sk-test",
            studio_llm_model="test-model",
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            alice = await UserFactory(conn, client).make("alice")
            product = await make_product(conn, alice, title="Aurora Mug")
            body = {"goal": "conversion", "language": "es", "variants": 2, "seconds": 8}
            r = await client.post(
                f"/v1/products/{product}/studio",
                json=body,
                headers=alice.headers | {"Idempotency-Key": "k-llm-0001"},
            )
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["writer"] == "llm:test-model"
    first = run["items"][0]["script"]
    assert first["hook"] == "¿Tu café se enfría?"
    assert [b["kind"] for b in first["beats"]] == ["hook", "demo", "point", "cta"]
    assert first["beats"][-1]["end_s"] == 8
    assert 'Voice-over (es): "¿Tu café se enfría?"' in run["items"][0]["prompt"]
    path, headers, sent = server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert sent["model"] == "test-model"
    assert sent["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    brief = json.loads(sent["messages"][1]["content"])
    assert brief["product"]["title"] == "Aurora Mug"
    assert (brief["language"], brief["scripts"], brief["seconds"]) == ("es", 2, 8)


@pytest.mark.parametrize(
    "answer",
    [
        lambda body: (500, {"error": {"message": "boom"}}),
        lambda body: (200, completion("not json")),
        lambda body: (200, completion(json.dumps({"scripts": []}))),
        lambda body: (200, completion(json.dumps({"scripts": [script(), script()]}), finish_reason="length")),
        # A script whose beats overrun the clip, or that ends without a call to action.
        lambda body: (200, completion(json.dumps({"scripts": [overrun()] * 2}))),
        lambda body: (
            200,
            completion(json.dumps({"scripts": [script() | {"beats": script()["beats"][:3]}] * 2})),
        ),
    ],
)
async def test_a_bad_model_answer_falls_back_to_the_templates(
    database_url, redis_url, tmp_path, conn, answer
):
    with chat_server(answer) as server:
        writer = ChatWriter(ChatClient(base_url=server.url, api_key=None, model="m"))
        with pytest.raises(ChatError):
            await writer.write(
                MUG, goal="conversion", style="ugc", language="es", variants=2, seconds=8, structure=None
            )
        await writer.aclose()
        settings = make_settings(
            database_url, redis_url, tmp_path, studio_writer="llm", studio_llm_base_url=server.url
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            alice = await UserFactory(conn, client).make("alice")
            product = await make_product(conn, alice)
            body = {"goal": "conversion", "language": "es", "variants": 2, "seconds": 8}
            r = await client.post(
                f"/v1/products/{product}/studio",
                json=body,
                headers=alice.headers | {"Idempotency-Key": f"k-{uuid.uuid4().hex}"},
            )
    assert r.status_code == 202, r.text
    assert r.json()["writer"] == "template"
    assert r.json()["items"][0]["script"]["language"] == "es"


def marks_answer(**marks: Any):
    def answer(body: dict[str, Any]) -> tuple[int, Any]:
        values = {"realism": 0.9, "product_consistency": 0.8, "voice_over": 0.7, "script_structure": 0.6}
        return 200, completion(json.dumps(values | marks | {"reason": "looks real"}))

    return answer


def evidence(tmp_path) -> TakeEvidence:
    from backend.media.video import extract_poster

    video = render(tmp_path / "v.mp4", width=144, height=256, seconds=2, textured=True)
    extract_poster(video, tmp_path / "p.jpg")
    return TakeEvidence(
        prompt="Aurora Mug on a desk",
        requested_seconds=2,
        requested_width=144,
        requested_height=256,
        video_path=video,
        video_bytes=video.stat().st_size,
        poster=(tmp_path / "p.jpg").read_bytes(),
        product=MUG,
    )


async def test_the_vision_judge_sends_the_poster_and_reads_its_marks(tmp_path):
    facts = evidence(tmp_path)
    with chat_server(marks_answer()) as server:
        judge = VisionJudge(ChatClient(base_url=server.url, api_key="sk-j", model="vision-model"))
        verdict = await judge.score(facts)
        await judge.aclose()
    assert verdict.judge == "vision:vision-model"
    assert (verdict.realism, verdict.product_consistency, verdict.voice_over, verdict.script_structure) == (
        0.9,
        0.8,
        0.7,
        0.6,
    )
    assert verdict.overall == pytest.approx(0.3 * 0.9 + 0.25 * 0.8 + 0.2 * 0.7 + 0.25 * 0.6)
    _, headers, sent = server.requests[0]
    assert headers["Authorization"] == "Bearer sk-j"
    parts = sent["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == facts.poster
    assert json.loads(parts[0]["text"])["product"]["title"] == "Aurora Mug"


@pytest.mark.parametrize("marks", [{"realism": 1.5}, {"realism": "great"}, {"voice_over": None}])
async def test_bad_marks_fall_back_to_the_heuristic(tmp_path, marks):
    facts = evidence(tmp_path)
    with chat_server(marks_answer(**marks)) as server:
        judge = VisionJudge(ChatClient(base_url=server.url, api_key=None, model="m"))
        with pytest.raises(ChatError):
            await judge.score(facts)
        verdict = await judge_take(judge, facts)
        await judge.aclose()
    assert verdict.judge == HeuristicJudge.name
