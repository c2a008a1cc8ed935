"""The signing key: from settings, or generated once and kept in the data folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from backend.settings import Settings, SettingsError


def signing_key(settings: Settings) -> bytes:
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            raise SettingsError("RIFFLE_SECRET_KEY must be at least 32 characters")
        return settings.secret_key.encode()
    if settings.environment == "production":
        raise SettingsError("RIFFLE_SECRET_KEY is required in production")
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several processes start at once exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()
