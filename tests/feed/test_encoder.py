"""The encoders: the built-in one's sense of topic, and the OpenAI-compatible adapter's protocol."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from feed.encoder import EMBEDDING_DIM, EncoderError, HashedEncoder, OpenAIEncoder


async def test_hashed_vectors_are_unit_length_and_close_for_shared_topics():
    encoder = HashedEncoder()
    pasta, recipe, skate, empty = await encoder.encode(
        [
            "Cooking pasta at home #food",
            "home cooking: an easy pasta recipe",
            "skateboard tricks in the park",
            "",
        ]
    )
    assert pasta.shape == (EMBEDDING_DIM,)
    assert abs(float(np.linalg.norm(pasta)) - 1) < 1e-5
    assert float(pasta @ recipe) > 0.3 > abs(float(pasta @ skate))
    assert not empty.any()
    # Full-width letters ("ＣＯＯＫＩＮＧ"), case and unspaced scripts are handled.  # noqa: RUF003
    assert (
        float(
            encoder.encode_one("\uff23\uff2f\uff2f\uff2b\uff29\uff2e\uff27") @ encoder.encode_one("cooking")
        )
        > 0.99
    )
    noodles, noodle_recipe, cat = (
        encoder.encode_one(t) for t in ("在家做意大利面", "意大利面的做法", "小猫睡觉")
    )
    assert float(noodles @ noodle_recipe) > 0.4 > abs(float(noodles @ cat))


def fake_embeddings(status: int = 200, body: object = None, seen: list | None = None) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        if seen is not None:
            seen.append((request.headers.get("authorization"), payload))
        if body is not None:
            return httpx.Response(status, json=body)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1)] * payload["dimensions"]}
            for i in range(len(payload["input"]))
        ]
        return httpx.Response(
            status, json={"object": "list", "data": list(reversed(data)), "model": payload["model"]}
        )

    return httpx.AsyncClient(base_url="http://embeddings.test", transport=httpx.MockTransport(handler))


async def test_openai_adapter_speaks_the_embeddings_api():
    seen: list = []
    encoder = OpenAIEncoder(
        base_url="http://embeddings.test",
        api_key="k",
        model="text-embedding-3-small",
        http=fake_embeddings(seen=seen),
    )
    vectors = await encoder.encode(["a", "b"])
    assert seen[0][1] == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "dimensions": EMBEDDING_DIM,
        "encoding_format": "float",
    }
    assert [round(float(v[0]) * np.sqrt(EMBEDDING_DIM), 3) for v in vectors] == [
        1.0,
        1.0,
    ]  # in input order, unit
    await encoder.aclose()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": {"message": "boom"}}),
        (429, {"error": {"message": "slow down"}}),
        (200, {"data": [{"index": 0, "embedding": [0.1, 0.2]}]}),  # wrong dimension
        (200, {"unexpected": True}),
    ],
)
async def test_openai_adapter_failures_are_encoder_errors(status, body):
    encoder = OpenAIEncoder(
        base_url="http://embeddings.test", api_key=None, model="m", http=fake_embeddings(status, body)
    )
    with pytest.raises(EncoderError):
        await encoder.encode(["a"])
