"""Checking what comes back from a provider or a client before it is stored.

A provider's video is decoded, not trusted: it must hold a video stream of sane size and
length whose first frame decodes. Images are opened with Pillow's decompression-bomb guard.
PyAV ships FFmpeg in its wheel, so nothing is installed by hand.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

MAX_VIDEO_SECONDS = 120
MAX_SIDE = 4096
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class InvalidVideo(Exception):
    """The file is not a playable video within our limits; the message says why."""


class InvalidImage(Exception):
    """The bytes are not an image we accept; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_ms: int
    codec: str
    container: str = ""  # FFmpeg's demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"


# What a client may upload, by the container FFmpeg finds in the bytes (never by the header).
UPLOAD_VIDEO_TYPES = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}


def video_type_matches(info: VideoInfo, content_type: str) -> bool:
    """Whether the container FFmpeg found is what ``content_type`` claims."""
    wanted = UPLOAD_VIDEO_TYPES.get(content_type)
    return wanted is not None and wanted in info.container.split(",")


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


def probe_video(path: Path) -> VideoInfo:
    try:
        with av.open(str(path), "r") as container:
            if not container.streams.video:
                raise InvalidVideo("it has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
                raise InvalidVideo(f"its size {width}x{height} is out of range")
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                raise InvalidVideo("its length is unknown")
            if not 0 < seconds <= MAX_VIDEO_SECONDS:
                raise InvalidVideo(f"its length {seconds:.1f} s is out of range")
            next(container.decode(stream))  # the first frame must decode
            return VideoInfo(
                width, height, round(seconds * 1000), stream.codec_context.name, container.format.name
            )
    except InvalidVideo:
        raise
    except (av.FFmpegError, StopIteration, OSError, ValueError) as exc:
        raise InvalidVideo("it cannot be decoded") from exc


def extract_poster(video: Path, poster: Path, *, at_s: float = 0.5) -> tuple[int, int]:
    """Write a JPEG of the frame nearest ``at_s`` (or the last before it); return its size."""
    try:
        with av.open(str(video), "r") as container:
            stream = container.streams.video[0]
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= at_s:
                    break
            if chosen is None:
                raise InvalidVideo("it has no frames")
            image = chosen.to_image()
    except InvalidVideo:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise InvalidVideo("no poster frame could be decoded") from exc
    image.save(poster, "JPEG", quality=85, optimize=True)
    return image.width, image.height


def probe_image(data: bytes) -> ImageInfo:
    """Accept JPEG, PNG or WebP of at most MAX_IMAGE_PIXELS that decodes completely."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = IMAGE_TYPES.get(image.format or "")
            if kind is None:
                raise InvalidImage("only JPEG, PNG and WebP images are accepted")
            width, height = image.size
            # Checked before decoding, so a small file claiming a huge canvas costs nothing.
            if width * height > MAX_IMAGE_PIXELS or max(width, height) > 3 * MAX_SIDE:
                raise InvalidImage(f"the image is too large ({width}x{height})")
            image.load()  # a truncated or corrupt file fails here
            return ImageInfo(kind, width, height)
    except InvalidImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage("the file is not a readable image") from exc
