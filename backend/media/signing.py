"""Signed media URLs: ``/v1/media/{id}?exp=…&sig=…``.

The API hands a signed URL only to a caller allowed to see the media, so a video player can
fetch it without a bearer token while a private draft stays unreachable for everyone else.
The signature covers the media id and the expiry; it cannot be moved to another file or
stretched in time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

_SIG_LEN = 32  # hex characters of HMAC-SHA256 kept in the URL


def _signature(signing_key: bytes, media_id: int, expires: int) -> str:
    message = f"media:{media_id}:{expires}".encode()
    return hmac.new(signing_key, message, hashlib.sha256).hexdigest()[:_SIG_LEN]


def signed_media_url(
    signing_key: bytes, base_url: str, media_id: int, *, ttl_s: int, now: float | None = None
) -> str:
    # Round the expiry up to a whole minute so that repeated reads of one page produce the same
    # URL (friendlier to CDNs and client caches) while still expiring within ttl_s + 60 s.
    expires = (int((now if now is not None else time.time()) + ttl_s) // 60 + 1) * 60
    signature = _signature(signing_key, media_id, expires)
    return f"{base_url.rstrip('/')}/v1/media/{media_id}?exp={expires}&sig={signature}"


def verify_media_signature(
    signing_key: bytes, media_id: int, expires: int, signature: str, *, now: float | None = None
) -> bool:
    if expires < (now if now is not None else time.time()):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a URL can carry anything.
    expected = _signature(signing_key, media_id, expires).encode()
    return hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected)
