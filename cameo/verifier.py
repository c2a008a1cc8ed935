"""Judging a cameo's liveness video: the `Verifier` protocol and its two implementations.

The owner reads a fresh challenge phrase on camera and uploads the video. The service has
already checked that the challenge is theirs, fresh and unused and that the upload is a
decodable video of theirs; a verifier judges the video itself:

- :class:`BuiltinVerifier` (offline, the default): the video must be of a sane length and
  size for someone reading a short phrase; it cannot hear the words or match a face offline,
  so a passing video waits in ``pending_review`` for a moderator, never ``verified`` alone.
- :class:`HttpVerifier`: an external liveness / identity service over httpx. Riffle sends the
  phrase and a signed, short-lived URL of the video, and maps the answer
  (``passed`` / ``failed`` / ``review``) to ``verified`` / ``rejected`` / ``pending_review``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
import msgspec

Outcome = Literal["pending_review", "verified", "rejected"]

MIN_SECONDS = 2.0
MAX_SECONDS = 30.0
MIN_SIDE = 120


@dataclass(frozen=True)
class Evidence:
    cameo_id: int
    kind: str
    phrase: str
    video_url: str
    content_type: str
    duration_ms: int | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    verifier: str


class VerifierUnavailable(Exception):
    """The verification service could not answer; nothing was decided."""


class Verifier(Protocol):
    name: str

    async def verify(self, evidence: Evidence) -> Verdict: ...


class BuiltinVerifier:
    name = "builtin"

    async def verify(self, evidence: Evidence) -> Verdict:
        seconds = (evidence.duration_ms or 0) / 1000
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            return Verdict(
                "rejected",
                f"the video is {seconds:.1f} s long; read the phrase in a video of "
                f"{MIN_SECONDS:.0f} to {MAX_SECONDS:.0f} seconds",
                self.name,
            )
        if min(evidence.width or 0, evidence.height or 0) < MIN_SIDE:
            return Verdict(
                "rejected", f"the video is too small to see you (at least {MIN_SIDE} px)", self.name
            )
        return Verdict("pending_review", "the video is in order; a moderator will check it", self.name)


class _Answer(msgspec.Struct):
    status: Literal["passed", "failed", "review"]
    reason: str = ""


_OUTCOMES: dict[str, Outcome] = {"passed": "verified", "failed": "rejected", "review": "pending_review"}


class HttpVerifier:
    """``POST {base_url}/v1/liveness-checks`` with ``{reference, phrase, video_url,
    content_type}`` and a bearer key; the answer is ``{status, reason}``."""

    name = "http"

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 20.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def verify(self, evidence: Evidence) -> Verdict:
        body = {
            "reference": f"cameo-{evidence.cameo_id}",
            "phrase": evidence.phrase,
            "video_url": evidence.video_url,
            "content_type": evidence.content_type,
        }
        try:
            response = await self._http.post("/v1/liveness-checks", json=body)
        except httpx.HTTPError as exc:
            raise VerifierUnavailable(f"the verification service did not answer: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise VerifierUnavailable(f"the verification service answered {response.status_code}")
        if response.status_code >= 400:
            return Verdict(
                "rejected", f"the verification service refused the video ({response.status_code})", self.name
            )
        try:
            answer = msgspec.json.decode(response.content, type=_Answer)
        except msgspec.ValidationError as exc:
            raise VerifierUnavailable(f"the verification service sent an unreadable answer: {exc}") from None
        return Verdict(_OUTCOMES[answer.status], answer.reason or answer.status, self.name)

    async def aclose(self) -> None:
        await self._http.aclose()
