"""Opaque list cursors: a signed, URL-safe token carrying a keyset position.

Clients treat them as opaque; a cursor that was altered, forged or made for another list is a
400, never a silently different page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec

from backend.errors import BadRequest

_SIG_BYTES = 12


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, kind: str, body: bytes) -> bytes:
        return hmac.new(self._secret, kind.encode() + b"\0" + body, hashlib.sha256).digest()[:_SIG_BYTES]

    def encode(self, kind: str, position: list[Any]) -> str:
        body = msgspec.json.encode(position)
        token = body + self._sign(kind, body)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, kind: str, cursor: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise self.invalid() from None
        body, sig = raw[:-_SIG_BYTES], raw[-_SIG_BYTES:]
        if len(raw) <= _SIG_BYTES or not hmac.compare_digest(sig, self._sign(kind, body)):
            raise self.invalid()
        try:
            position = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise self.invalid() from None
        if not isinstance(position, list):
            raise self.invalid()
        return position

    @staticmethod
    def invalid() -> BadRequest:
        return BadRequest(
            "the cursor is not valid for this list", code="invalid_cursor", field="query.cursor"
        )
