"""Provenance: a manifest per clip, bound to its video's SHA-256 and signed, saying that it is
AI-generated, by which model and provider, when, by whom, with which cameos and from which
parent clip.

The manifest is canonical JSON (keys sorted, no whitespace) signed with Ed25519 (the
``cryptography`` package). C2PA (``c2pa-python``) embeds a manifest in the file itself but needs
an X.509 signing certificate from a trust list to mean anything to a verifier; until a
deployment has one, a detached signed JSON manifest is the honest equivalent: anyone can check
it with the public key at ``GET /v1/provenance/key``.

The signing key is derived from the deployment's secret key (HKDF-SHA256, its own label), so
every API process signs with the same key and nothing new has to be stored or shared.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.db import Conn

FORMAT = "riffle.provenance/1"
ALGORITHM = "Ed25519"

MANIFEST = """
SELECT c.id, c.author_id, u.handle, c.model, c.provider, c.provenance, c.cameo_ids, c.parent_id, c.root_id,
       c.job_id, c.take_id, c.created_at, c.published_at, c.duration_ms, c.width, c.height,
       m.sha256, m.content_type, m.bytes,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', k.id, 'display_name', k.display_name,
                                                     'kind', k.kind, 'owner_id', k.owner_id) ORDER BY k.id)
                 FROM cameos k WHERE k.id = ANY(c.cameo_ids)), '[]') AS cameos
FROM clips c JOIN users u ON u.id = c.author_id JOIN media m ON m.id = c.video_media_id
WHERE c.id = $1
"""


def private_key(secret: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"riffle provenance ed25519").derive(
        secret
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(secret: bytes) -> dict[str, str]:
    raw = (
        private_key(secret)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": key_id(raw), "use": "sig", "alg": "EdDSA"}


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def canonical(manifest: dict[str, Any]) -> bytes:
    return msgspec.json.encode(manifest, order="sorted")


async def manifest(conn: Conn, clip_id: int) -> dict[str, Any]:
    """The manifest of a clip the caller has already been allowed to see."""
    row = await conn.fetchrow(MANIFEST, clip_id)
    assert row is not None
    recorded = row["provenance"] or {}
    return {
        "format": FORMAT,
        "claim_generator": "Riffle",
        "ai_generated": True,
        "asset": {
            "sha256": bytes(row["sha256"]).hex(),
            "content_type": row["content_type"],
            "bytes": row["bytes"],
            "duration_ms": row["duration_ms"],
            "width": row["width"],
            "height": row["height"],
        },
        "clip_id": row["id"],
        "maker": {"id": row["author_id"], "handle": row["handle"]},
        "model": row["model"],
        "provider": row["provider"],
        "provider_model": recorded.get("provider_model"),
        "generated_at": recorded.get("generated_at") or row["created_at"].isoformat(),
        "published_at": row["published_at"].isoformat() if row["published_at"] else None,
        "generation_id": row["job_id"],
        "take_id": row["take_id"],
        "cameos": list(row["cameos"]),
        "parent_clip_id": row["parent_id"],
        "root_clip_id": row["root_id"],
    }


def sign(secret: bytes, document: dict[str, Any]) -> dict[str, Any]:
    key = private_key(secret)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "manifest": document,
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": key_id(raw),
            "value": _b64(key.sign(canonical(document))),
            "signed": "the manifest as canonical JSON: keys sorted, no whitespace, UTF-8",
        },
    }


def verify(public_x: str, signed: dict[str, Any]) -> bool:
    """Check a signed manifest with the public key's ``x`` (as ``GET /v1/provenance/key`` gives it)."""
    from cryptography.exceptions import InvalidSignature

    public = Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(public_x + "=" * (-len(public_x) % 4))
    )
    value = signed["signature"]["value"]
    try:
        public.verify(
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), canonical(signed["manifest"])
        )
    except (InvalidSignature, ValueError):
        return False
    return True
