"""What a process needs to run generations: the providers, the model table, the caps."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from backend.generation.models import ModelTable
from backend.generation.providers import build_providers
from backend.generation.providers.base import VideoProvider
from backend.generation.slots import ProviderSlots
from backend.redis_pool import Redis
from backend.settings import Settings


@dataclass
class GenerationEngine:
    providers: dict[str, VideoProvider]
    models: ModelTable
    slots: ProviderSlots
    work_dir: Path  # downloads and posters are staged here before they are stored

    async def aclose(self) -> None:
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()


def build_engine(settings: Settings, redis: Redis) -> GenerationEngine:
    data_dir = Path(settings.data_dir)
    # The local renderer's failure markers exist for the test suite only.
    providers = build_providers(settings, data_dir, allow_test_markers=settings.environment == "test")
    work_dir = data_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    return GenerationEngine(
        providers=providers,
        models=ModelTable.load(settings.models_file, set(providers)),
        slots=ProviderSlots(
            redis,
            settings.redis_prefix,
            limit=settings.provider_concurrency,
            lease_s=settings.take_stall_timeout_s,
        ),
        work_dir=work_dir,
    )
