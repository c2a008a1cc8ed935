"""Our requests and the fakes' answers, checked against the vendors' own Python packages, so
the contract suite tests the real shapes rather than our guess of them."""

from __future__ import annotations

import pytest
from google.genai import models as genai_models
from google.genai import types as genai
from google.genai._operations_converters import _GenerateVideosOperation_from_mldev
from replicate.prediction import Prediction, _create_prediction_body

from backend.generation.providers.base import TakeRequest
from backend.generation.providers.google import GoogleProvider
from backend.generation.providers.replicate import ReplicateProvider, prediction_input
from tests.backend.generation.providers.fakes import FakeServer, Script, google_app, replicate_app

REQUEST = TakeRequest(
    prompt="a lighthouse in a storm",
    model="m",
    seconds=8,
    width=720,
    height=1280,
    negative_prompt="blurry",
    seed=42,
    reference_image=b"\x89PNG...",
    reference_image_type="image/png",
    webhook_url="https://riffle.example/v1/generation/webhooks/replicate",
)


def test_the_veo_request_is_what_google_genai_would_send():
    config = genai.GenerateVideosConfig(
        duration_seconds=8,
        aspect_ratio="9:16",
        resolution="720p",
        person_generation="allow_adult",
        negative_prompt="blurry",
        seed=42,
    )
    expected: dict = {}
    genai_models._GenerateVideosConfig_to_vertex(config, expected, None)
    image = genai_models._Image_to_vertex(
        genai.Image(image_bytes=REQUEST.reference_image, mime_type="image/png")
    )
    expected["instances"] = [{"prompt": REQUEST.prompt, "image": image}]
    assert GoogleProvider.body(REQUEST) == expected


def test_the_replicate_request_is_what_the_replicate_client_would_send():
    expected = _create_prediction_body(
        None, prediction_input(REQUEST), webhook=REQUEST.webhook_url, webhook_events_filter=["completed"]
    )
    assert ReplicateProvider.body(REQUEST) == expected
    assert expected["input"]["duration"] == 8
    assert expected["input"]["start_image"].startswith("data:image/png;base64,")


def test_model_entries_rename_and_drop_inputs():
    request = TakeRequest(
        prompt="p",
        model="minimax/hailuo-02",
        seconds=6,
        width=720,
        height=1280,
        seed=1,
        extra_input={"input_names": {"seconds": "duration_s", "seed": ""}, "prompt_optimizer": False},
    )
    assert prediction_input(request) == {
        "prompt": "p",
        "duration_s": 6,
        "aspect_ratio": "9:16",
        "prompt_optimizer": False,
    }


@pytest.mark.parametrize("scenario", ["ok", "policy", "failed"])
async def test_the_fake_veo_answers_parse_with_google_genai(scenario):
    script = Script(scenario=scenario, polls_before_done=0)
    server = FakeServer(google_app(script)).start()
    try:
        provider = GoogleProvider(api_key="test-key", base_url=server.url)
        name = await provider.submit(REQUEST)
        raw = (await provider._http.get(f"/v1beta/{name}")).json()
        await provider.aclose()
    finally:
        server.stop()
    operation = genai.GenerateVideosOperation.model_validate(_GenerateVideosOperation_from_mldev(raw))
    assert operation.done is True
    if scenario == "ok":
        assert operation.response.generated_videos[0].video.uri.endswith("alt=media")
    elif scenario == "policy":
        assert operation.response.rai_media_filtered_count == 1
        assert operation.response.rai_media_filtered_reasons
    else:
        assert operation.error["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("scenario", ["ok", "policy", "failed"])
async def test_the_fake_replicate_answers_parse_as_replicate_predictions(scenario):
    script = Script(scenario=scenario, polls_before_done=0)
    server = FakeServer(replicate_app(script)).start()
    try:
        provider = ReplicateProvider(api_token="r8_test", base_url=server.url)
        created = (
            await provider._http.post("/v1/models/kwaivgi/kling-v2.1/predictions", json={"input": {}})
        ).json()
        polled = (await provider._http.get(f"/v1/predictions/{created['id']}")).json()
        await provider.aclose()
    finally:
        server.stop()
    assert Prediction(**created).status == "starting"
    prediction = Prediction(**polled)
    assert prediction.status == ("succeeded" if scenario == "ok" else "failed")
