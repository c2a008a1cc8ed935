"""Video providers: one module per backend, all meeting :class:`base.VideoProvider`.

Adding a provider is one module here, one line in :func:`build_providers`, and its fake server
in the contract suite (``tests/backend/generation/providers``).
"""

from __future__ import annotations

from pathlib import Path

from backend.generation.providers.base import VideoProvider
from backend.settings import Settings


def build_providers(
    settings: Settings, data_dir: Path, *, allow_test_markers: bool = False
) -> dict[str, VideoProvider]:
    """The providers this process can use: the local renderer always, vendors when configured."""
    from backend.generation.providers.local import LocalProvider

    providers: dict[str, VideoProvider] = {
        "local": LocalProvider(data_dir / "work", allow_test_markers=allow_test_markers)
    }
    if settings.gemini_api_key:
        from backend.generation.providers.google import GoogleProvider

        providers["google"] = GoogleProvider(
            api_key=settings.gemini_api_key,
            base_url=settings.gemini_base_url,
            timeout_s=settings.provider_timeout_s,
        )
    if settings.replicate_api_token:
        from backend.generation.providers.replicate import ReplicateProvider

        providers["replicate"] = ReplicateProvider(
            api_token=settings.replicate_api_token,
            base_url=settings.replicate_base_url,
            timeout_s=settings.provider_timeout_s,
        )
    return providers
