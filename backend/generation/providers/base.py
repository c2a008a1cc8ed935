"""The contract every video provider meets: submit a take, poll it, cancel it, fetch the result.

A provider adapter is one module in this package plus a contract-test server in
``tests/backend/generation/providers/``; it must pass ``test_contract.py`` like the others.
Adapters never touch the database or Redis: the generation worker owns retries, state and
storage, and decides what to do from the :class:`ProviderError` kind an adapter raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class TakeRequest:
    """What Riffle asks a provider for: one take of one prompt."""

    prompt: str
    model: str  # the provider's own model name, e.g. "veo-3.1-fast-generate-preview", "kwaivgi/kling-v2.1"
    seconds: int
    width: int
    height: int
    negative_prompt: str | None = None
    seed: int | None = None
    reference_image: bytes | None = None
    reference_image_type: str | None = None  # "image/jpeg" | "image/png"
    webhook_url: str | None = None  # providers that push completion (Replicate) call this
    extra_input: dict[str, object] = field(default_factory=dict)  # per-model input names from settings

    @property
    def aspect_ratio(self) -> str:
        return "9:16" if self.height > self.width else ("16:9" if self.width > self.height else "1:1")


class TakeState(StrEnum):
    PENDING = "pending"  # accepted by the provider, not started
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class TakeStatus:
    state: TakeState
    progress: int | None = None  # 0-100 when the provider says
    video_url: str | None = None  # where to download the result (http(s) or file://)
    error: ProviderError | None = None  # set when state is FAILED


ErrorKind = Literal["policy", "rate_limited", "transient", "invalid", "fatal"]


class ProviderError(Exception):
    """A provider said no or could not answer.

    ``kind`` decides what the worker does: ``policy`` (safety refusal: never retried, user told
    why), ``rate_limited`` (retry after ``retry_after_s``), ``transient`` (5xx, timeout, broken
    body: retried with backoff), ``invalid`` (our request was wrong: not retried), ``fatal``
    (anything else: not retried). ``message`` is safe to show the user.
    """

    def __init__(
        self, kind: ErrorKind, message: str, *, retry_after_s: float | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.retry_after_s = retry_after_s
        self.code = code or kind

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "transient")


@runtime_checkable
class VideoProvider(Protocol):
    """One video-generation backend (a vendor API, a gateway, or the built-in renderer)."""

    name: str  # "google", "replicate", "local"

    async def submit(self, request: TakeRequest) -> str:
        """Start a take; return the provider's id for it. Raises ProviderError."""
        ...

    async def poll(self, provider_job_id: str) -> TakeStatus:
        """Current state of a take. Raises ProviderError for transport failures."""
        ...

    async def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to stop (best effort; a finished take stays finished)."""
        ...

    async def download(self, status: TakeStatus, destination: Path) -> None:
        """Write the finished video (MP4) to ``destination``. Raises ProviderError."""
        ...

    async def aclose(self) -> None:
        """Release HTTP clients."""
        ...
