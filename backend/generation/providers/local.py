"""The built-in offline renderer: a real, playable H.264 MP4 from a prompt, with no model.

It is what ``make run`` and the tests use, so the whole pipeline (jobs, retries, storage,
drafts) runs end to end on a laptop. The picture is an abstract scene whose colours, motion
and text come from the prompt and the seed, so two takes of one prompt differ like real ones.

A job is a folder under ``work_dir``: ``job.json`` (the request) and, once rendered,
``video.mp4``. Everything needed to finish a job is on disk, so a worker that dies mid-render
loses nothing: the next poll, in any process, renders it again (deterministically).

With ``allow_test_markers`` (the test environment only) a prompt may script a provider's
behaviour: ``[[fail:policy]]`` (a safety refusal), ``[[fail:fatal]]``, ``[[fail:transient]]``
(every submit fails with a 5xx-like error), ``[[fail:transient-once]]`` (the first submit of
that prompt and seed fails), ``[[slow:N]]`` (rendering takes N seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import time
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from backend.generation.providers.base import ProviderError, TakeRequest, TakeState, TakeStatus

FPS = 24
_MARKER = re.compile(r"\[\[(fail|slow):([a-z0-9-]+)\]\]")
_ID = re.compile(r"^local-[0-9a-f]{32}$")
_KEEP_S = 24 * 3600  # finished job folders are swept after a day


class LocalProvider:
    name = "local"

    def __init__(self, work_dir: Path, *, allow_test_markers: bool = False) -> None:
        self.root = work_dir / "local"
        self.root.mkdir(parents=True, exist_ok=True)
        self.allow_test_markers = allow_test_markers
        self._renders: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, int] = {}

    async def submit(self, request: TakeRequest) -> str:
        markers = self._markers(request.prompt)
        if "transient" in markers.get("fail", ()):
            raise ProviderError("transient", "the video service is busy; trying again shortly")
        if "transient-once" in markers.get("fail", ()):
            flag = self.root / f"once-{_digest(request.prompt, request.seed)}"
            if not flag.exists():
                flag.touch()
                raise ProviderError("transient", "the video service is busy; trying again shortly")
        await asyncio.to_thread(self._sweep)
        job_id = f"local-{uuid.uuid4().hex}"
        folder = self.root / job_id
        folder.mkdir()
        spec = {
            "prompt": request.prompt,
            "seconds": request.seconds,
            "width": request.width,
            "height": request.height,
            "seed": request.seed
            if request.seed is not None
            else int.from_bytes(uuid.uuid4().bytes[:4], "big"),
            "submitted_at": time.time(),
        }
        (folder / "job.json").write_text(json.dumps(spec))
        self._start(job_id, spec)
        return job_id

    async def poll(self, provider_job_id: str) -> TakeStatus:
        folder = self._folder(provider_job_id)
        if (folder / "canceled").exists():
            return TakeStatus(TakeState.CANCELED)
        try:
            spec = json.loads((folder / "job.json").read_text())
        except (OSError, ValueError):
            return TakeStatus(
                TakeState.FAILED,
                error=ProviderError("fatal", "the renderer lost this take", code="unknown_job"),
            )
        fail = self._markers(spec["prompt"]).get("fail", ())
        if "policy" in fail:
            return TakeStatus(
                TakeState.FAILED,
                error=ProviderError("policy", "the video model refused this prompt under its safety rules"),
            )
        if "fatal" in fail:
            return TakeStatus(
                TakeState.FAILED, error=ProviderError("fatal", "the renderer could not make this video")
            )
        video = folder / "video.mp4"
        if video.exists():
            return TakeStatus(TakeState.SUCCEEDED, progress=100, video_url=video.as_uri())
        render = self._renders.get(provider_job_id)
        if render is None:  # submitted by a process that is gone: render it here
            self._start(provider_job_id, spec)
        elif render.done() and render.exception() is not None:
            self._renders.pop(provider_job_id, None)
            return TakeStatus(
                TakeState.FAILED,
                error=ProviderError("transient", "the renderer failed; trying again", code="render_failed"),
            )
        progress = self._progress.get(provider_job_id, 0)
        return TakeStatus(TakeState.RUNNING if progress else TakeState.PENDING, progress=progress)

    async def cancel(self, provider_job_id: str) -> None:
        folder = self._folder(provider_job_id)
        render = self._renders.pop(provider_job_id, None)
        if render is not None:
            render.cancel()
        if folder.exists() and not (folder / "video.mp4").exists():
            (folder / "canceled").touch()

    async def download(self, status: TakeStatus, destination: Path) -> None:
        if not status.video_url or not status.video_url.startswith("file://"):
            raise ProviderError("fatal", "the renderer has no video for this take")
        source = Path(status.video_url.removeprefix("file://"))
        if source.parent.parent != self.root:
            raise ProviderError("invalid", "that video is not the renderer's")
        try:
            await asyncio.to_thread(shutil.copyfile, source, destination)
        except OSError as exc:
            raise ProviderError("transient", "the rendered video could not be read") from exc

    async def aclose(self) -> None:
        for render in self._renders.values():
            render.cancel()
        for render in list(self._renders.values()):
            with contextlib.suppress(BaseException):
                await render
        self._renders.clear()

    # --- internals ---

    def _folder(self, provider_job_id: str) -> Path:
        if not _ID.match(provider_job_id):
            raise ProviderError("invalid", "not a job of the local renderer")
        return self.root / provider_job_id

    def _markers(self, prompt: str) -> dict[str, tuple[str, ...]]:
        if not self.allow_test_markers:
            return {}
        found: dict[str, tuple[str, ...]] = {}
        for kind, value in _MARKER.findall(prompt):
            found[kind] = (*found.get(kind, ()), value)
        return found

    def _start(self, job_id: str, spec: dict[str, object]) -> None:
        slow = self._markers(str(spec["prompt"])).get("slow", ())
        min_seconds = float(slow[0]) if slow and slow[0].isdigit() else 0.0
        self._progress[job_id] = 0
        self._renders[job_id] = asyncio.create_task(self._render(job_id, spec, min_seconds))

    async def _render(self, job_id: str, spec: dict[str, object], min_seconds: float) -> None:
        folder = self.root / job_id
        started = time.monotonic()
        loop = asyncio.get_running_loop()

        def report(fraction: float) -> None:
            # Encoding runs in a thread; progress is capped below 100 until the file is in place.
            loop.call_soon_threadsafe(self._progress.__setitem__, job_id, min(95, int(fraction * 95)))

        partial = folder / "video.partial.mp4"
        cpu_s = await asyncio.to_thread(render_clip, spec, partial, report)
        # Kept beside the job so benchmarks can tell render time from pipeline overhead.
        (folder / "render.json").write_text(json.dumps({"render_cpu_s": cpu_s}))
        remaining = min_seconds - (time.monotonic() - started)
        while remaining > 0:  # a scripted slow take still shows progress moving
            await asyncio.sleep(min(0.5, remaining))
            remaining = min_seconds - (time.monotonic() - started)
            self._progress[job_id] = max(1, min(99, int(100 * (1 - remaining / min_seconds))))
        if (folder / "canceled").exists():
            return
        partial.rename(folder / "video.mp4")
        self._progress[job_id] = 100

    def _sweep(self) -> None:
        cutoff = time.time() - _KEEP_S
        for entry in self.root.iterdir():
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()


def _digest(prompt: str, seed: int | None) -> str:
    return hashlib.sha256(f"{prompt}\0{seed}".encode()).hexdigest()[:32]


def render_clip(spec: dict[str, object], destination: Path, report: object = None) -> float:
    """Encode the scene for ``spec`` (prompt, seconds, width, height, seed) as H.264 in MP4;
    return the CPU seconds it took (the encoder runs on this one thread)."""
    cpu_started = time.thread_time()
    width, height = int(str(spec["width"])), int(str(spec["height"]))
    frames = int(str(spec["seconds"])) * FPS
    prompt = str(spec["prompt"])
    seed = int(str(spec["seed"]))
    rng = np.random.default_rng(
        int.from_bytes(hashlib.sha256(f"{prompt}\0{seed}".encode()).digest()[:8], "big")
    )
    base = rng.integers(40, 216, size=3)
    drift = rng.uniform(-1.5, 1.5, size=3)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    gradient = (ys * 90 + xs * 40).astype(np.float32)
    text_mask = _text_mask(prompt, width, height)
    radius = max(4, min(width, height) // 8)
    yy, xx = np.ogrid[:height, :width]
    orbit = rng.uniform(0.15, 0.35)

    with av.open(str(destination), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "ultrafast", "crf": "30", "movflags": "+faststart"}
        stream.codec_context.thread_count = 1  # renders run side by side; one core each is enough
        for index in range(frames):
            colour = (base + drift * index) % 256
            frame = np.clip(gradient + colour.astype(np.float32), 0, 255).astype(np.uint8)
            angle = 2 * np.pi * index / max(frames, 1)
            cx = int(width * (0.5 + orbit * np.cos(angle)))
            cy = int(height * (0.5 + orbit * np.sin(angle)))
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius * radius] = 255 - colour.astype(np.uint8)
            frame[text_mask] = 255
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            for packet in stream.encode(video_frame):
                container.mux(packet)
            if callable(report) and index % FPS == 0:
                report(index / frames)
        for packet in stream.encode():
            container.mux(packet)
    return time.thread_time() - cpu_started


def _text_mask(prompt: str, width: int, height: int) -> np.ndarray:
    """White pixels of the prompt's first words near the bottom of the frame."""
    canvas = Image.new("L", (width, height), 0)
    text = _MARKER.sub("", prompt).strip()[:48]
    if text:
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default()
        draw.text((max(2, width // 20), int(height * 0.85)), text, fill=255, font=font)
    return np.asarray(canvas) > 127
