"""Run a drainer in-process (burst mode) the way ``drainer run --burst`` does."""

from __future__ import annotations

from drainer.lifecycle import Drainer, open_stores
from drainer.settings import Settings


async def drain_burst(settings: Settings) -> dict[str, dict[str, int]]:
    """Drain every partition until empty; returns each tenant's counters."""
    stores = await open_stores(settings)
    drainer = Drainer(settings, stores, burst=True, serve_api=False)
    try:
        await drainer.run()
    finally:
        await drainer.close()
    return {tid: dict(store.pipeline.health.counters) for tid, store in stores.items()}
