"""Clip and steering text → unit vectors of EMBEDDING_DIM, behind one small Protocol.

The built-in :class:`HashedEncoder` needs no model and no network: hashed features of word
unigrams and bigrams, character trigrams inside longer words (so "cooking" and "cook" share
something), and single characters and character bigrams for scripts written without spaces
(Chinese, Japanese, Thai…), signed by a second hash bit and L2-normalised. It captures topic
overlap, not meaning; the feed's behaviour vectors (co-engagement) add the meaning that
viewers supply. :class:`OpenAIEncoder` calls any OpenAI-compatible ``/v1/embeddings``
endpoint asking for EMBEDDING_DIM dimensions.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import httpx
import numpy as np

from backend.settings import Settings

EMBEDDING_DIM = 256

_WORD = re.compile(r"\w+", re.UNICODE)
# Scripts written without spaces between words: a "word" match there is a whole phrase.
_UNSPACED = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f]"
)


class EncoderError(Exception):
    """The encoder could not produce vectors (the service failed or answered nonsense)."""


@runtime_checkable
class Encoder(Protocol):
    name: str
    dim: int

    async def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One unit vector (float32, ``dim``) per text; an empty text gives a zero vector."""
        ...

    async def aclose(self) -> None: ...


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def features(text: str) -> list[tuple[str, float]]:
    """The weighted features of a text (exposed for tests and for explaining a match)."""
    found: list[tuple[str, float]] = []
    words: list[str] = []
    for match in _WORD.finditer(normalise(text)):
        word = match.group(0)
        if _UNSPACED.search(word):
            chars = [c for c in word if not c.isspace()]
            found += [(f"c:{c}", 0.7) for c in chars]
            found += [(f"cc:{a}{b}", 1.0) for a, b in itertools.pairwise(chars)]
            words.append(word)
            continue
        words.append(word)
        hashtag = match.start() > 0 and text[match.start() - 1 : match.start()] == "#"
        found.append((f"w:{word}", 2.0 if hashtag else 1.0))
        if len(word) >= 4:
            padded = f"<{word}>"
            found += [(f"g:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
    found += [(f"b:{a}_{b}", 0.5) for a, b in itertools.pairwise(words)]
    return found


@functools.lru_cache(maxsize=1 << 18)
def _slot(feature: str, dim: int) -> tuple[int, float]:
    """Where a feature lands and with which sign. Cached: texts share most of their features, and
    hashing them again was most of the encoder's time (seeding 200,000 clips, bench/seed.py)."""
    value = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


class HashedEncoder:
    name = "hashed"

    def __init__(self, dim: int = EMBEDDING_DIM) -> None:
        self.dim = dim

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode_matrix([text])[0]

    def encode_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Unit rows (float32, ``len(texts)`` x ``dim``), summed in one ``bincount`` per batch."""
        cells: list[int] = []
        values: list[float] = []
        for row, text in enumerate(texts):
            base = row * self.dim
            for feature, weight in features(text):
                index, sign = _slot(feature, self.dim)
                cells.append(base + index)
                values.append(sign * weight)
        flat = np.bincount(np.asarray(cells, dtype=np.int64), weights=values, minlength=len(texts) * self.dim)
        matrix = flat.reshape(len(texts), self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    async def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        return list(self.encode_matrix(texts)) if texts else []

    async def aclose(self) -> None:
        return None


class OpenAIEncoder:
    """Any OpenAI-compatible embeddings endpoint (OpenAI, Azure, vLLM, Ollama, TEI…)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        dim: int = EMBEDDING_DIM,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.dim = dim
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    async def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        if not texts:
            return []
        body = {"model": self.model, "input": list(texts), "dimensions": self.dim, "encoding_format": "float"}
        try:
            response = await self._http.post("/v1/embeddings", json=body)
        except httpx.HTTPError as exc:
            raise EncoderError(f"the embeddings service did not answer: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise EncoderError(f"the embeddings service answered {response.status_code}")
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = [np.asarray(item["embedding"], dtype=np.float32) for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EncoderError("the embeddings service sent an unreadable answer") from exc
        if len(vectors) != len(texts) or any(v.shape != (self.dim,) for v in vectors):
            raise EncoderError(f"the embeddings service did not return {len(texts)} vectors of {self.dim}")
        out = []
        for vector in vectors:
            norm = float(np.linalg.norm(vector))
            if not math.isfinite(norm):
                raise EncoderError("the embeddings service returned a vector that is not finite")
            out.append(vector / norm if norm > 0 else vector)
        return out

    async def aclose(self) -> None:
        await self._http.aclose()


def build_encoder(settings: Settings) -> Encoder:
    """The encoder the settings ask for (``RIFFLE_EMBEDDING_BACKEND``)."""
    if settings.embedding_backend == "openai":
        return OpenAIEncoder(
            base_url=settings.embedding_base_url,
            api_key=settings.embedding_api_key,
            model=settings.embedding_model,
        )
    return HashedEncoder()
