"""The judge: the heuristic's marks follow what was measured, every finished take gets a score,
and scored takes are listed best first."""

from __future__ import annotations

import uuid
from pathlib import Path

import av
import numpy as np
import pytest

from backend.commerce.judge import HeuristicJudge, TakeEvidence, Verdict
from backend.commerce.studio import save_score
from backend.commerce.studio_templates import ProductFacts, storyboard_prompt, write_scripts
from backend.media.video import extract_poster

MUG = ProductFacts(
    title="Aurora Travel Mug",
    description="Keeps coffee hot for 12 hours. Leak-proof lid.",
    brand="Aurora",
    price_minor=2499,
    currency="USD",
)


def render(path: Path, *, width: int, height: int, seconds: float, textured: bool) -> Path:
    """A real H.264 file: a moving, detailed picture, or a flat black one."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for i in range(int(seconds * 24)):
            if textured:
                picture = np.roll(base, i * 2, axis=1)
            else:
                picture = np.zeros((height, width, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def evidence(tmp_path: Path, video: Path, *, prompt: str, product: ProductFacts | None = MUG) -> TakeEvidence:
    poster = tmp_path / f"{uuid.uuid4().hex}.jpg"
    extract_poster(video, poster)
    return TakeEvidence(
        prompt=prompt,
        requested_seconds=2,
        requested_width=144,
        requested_height=256,
        video_path=video,
        video_bytes=video.stat().st_size,
        poster=poster.read_bytes(),
        product=product,
    )


def storyboard(seconds: int = 2) -> str:
    script = write_scripts(MUG, goal="conversion", style="ugc", language="en", variants=1, seconds=seconds)[0]
    return storyboard_prompt(script, title=MUG.title, brand=MUG.brand, seconds=seconds)


def test_a_sharp_take_of_the_right_size_and_length_looks_more_real(tmp_path):
    good = render(tmp_path / "good.mp4", width=144, height=256, seconds=2, textured=True)
    flat = render(tmp_path / "flat.mp4", width=64, height=64, seconds=1, textured=False)
    judge = HeuristicJudge()
    a = judge.score_now(evidence(tmp_path, good, prompt=storyboard()))
    b = judge.score_now(evidence(tmp_path, flat, prompt=storyboard()))
    assert a.realism > b.realism + 0.2
    assert a.notes["video"]["width"] == 144
    assert a.notes["poster"]["entropy"] > b.notes["poster"]["entropy"]
    assert a.notes["length_match"] == pytest.approx(1.0, abs=0.05)
    assert b.notes["length_match"] == pytest.approx(0.5, abs=0.05)
    assert a.script_structure > b.script_structure  # the same storyboard, but half the length
    assert a.overall > b.overall


def test_a_storyboard_with_hook_and_call_to_action_scores_structure_and_voice_over(tmp_path):
    video = render(tmp_path / "v.mp4", width=144, height=256, seconds=2, textured=True)
    judge = HeuristicJudge()
    scripted = judge.score_now(evidence(tmp_path, video, prompt=storyboard()))
    plain = judge.score_now(evidence(tmp_path, video, prompt="a mug on a table"))
    assert scripted.notes["beats"] >= 2
    assert plain.notes["beats"] == 0
    assert scripted.script_structure >= 0.8
    assert plain.script_structure <= 0.3
    assert scripted.voice_over > plain.voice_over
    assert scripted.notes["audio_track"] is False  # the test video has no sound, which costs marks
    assert scripted.voice_over < 1.0


def test_product_consistency_is_how_much_of_the_product_the_prompt_names(tmp_path):
    video = render(tmp_path / "v.mp4", width=144, height=256, seconds=2, textured=True)
    judge = HeuristicJudge()
    named = judge.score_now(evidence(tmp_path, video, prompt="Aurora Travel Mug by Aurora on a desk"))
    half = judge.score_now(evidence(tmp_path, video, prompt="a travel mug on a desk"))
    none = judge.score_now(evidence(tmp_path, video, prompt="a teapot"))
    assert named.product_consistency == 1.0
    assert none.product_consistency == 0.0
    assert 0 < half.product_consistency < 1
    # Without a product there is nothing to be consistent with: it does not count.
    unrelated = judge.score_now(evidence(tmp_path, video, prompt="a teapot", product=None))
    assert unrelated.notes["has_product"] is False
    assert unrelated.overall > none.overall


async def test_scored_takes_are_listed_best_first(client, users, conn):
    alice = await users.make("alice")
    body = {"prompt": "a lighthouse at dusk", "seconds": 2, "size": "144x256", "takes": 3}
    job = (
        await client.post(
            "/v1/generations", json=body, headers=alice.headers | {"Idempotency-Key": "k-12345678"}
        )
    ).json()
    first, second, third = (t["id"] for t in job["takes"])
    assert all(t["score"] is None for t in job["takes"])
    await save_score(conn, take_id=second, verdict=Verdict(0.9, 1.0, 0.8, 0.9, judge="heuristic"))
    await save_score(conn, take_id=first, verdict=Verdict(0.2, 1.0, 0.1, 0.3, judge="heuristic"))
    listed = (await client.get(f"/v1/generations/{job['id']}", headers=alice.headers)).json()["takes"]
    assert [t["id"] for t in listed] == [second, first, third]  # unscored last, in position order
    assert listed[0]["score"]["realism"] == 0.9
    assert listed[0]["score"]["overall"] > listed[1]["score"]["overall"]
    assert listed[2]["score"] is None
    # Rescoring replaces the score and can reorder.
    await save_score(conn, take_id=first, verdict=Verdict(1.0, 1.0, 1.0, 1.0, judge="vision:m"))
    listed = (await client.get(f"/v1/generations/{job['id']}", headers=alice.headers)).json()["takes"]
    assert [t["id"] for t in listed] == [first, second, third]
    assert listed[0]["score"]["judge"] == "vision:m"
    assert await conn.fetchval("SELECT count(*) FROM take_scores") == 2
