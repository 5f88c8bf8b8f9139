"""Run a drainer in-process (burst mode) the way ``drainer run --burst`` does."""

from __future__ import annotations

from drainer.main import open_drainer
from drainer.settings import Settings


async def drain_burst(settings: Settings) -> dict[str, dict[str, int]]:
    """Drain every partition until empty; returns each tenant's counters."""
    drainer = await open_drainer(settings, burst=True)
    stores = drainer.stores
    try:
        await drainer.run()
    finally:
        await drainer.close()
    return {tid: dict(store.pipeline.health.counters) for tid, store in stores.items()}
