"""Three real drainer processes, one SIGKILLed mid-run: every write applied once, in order."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from tests.support.drainer import REDIS_URL
from tests.support.exactly_once import run_scenario


async def test_order_and_exactly_once_across_processes_with_sigkill(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await run_scenario(
            tmp_path, pg_dsn, redis_prefix, redis, processes=3, keys=240, updates_per_key=14
        )
    finally:
        await redis.aclose()
