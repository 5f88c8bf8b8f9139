"""Database cut for ~10 s through a TCP proxy: nothing acked while down, all applied after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process_async,
    stream_totals,
    wait_until,
    write_config,
)
from tests.support.proxy import proxy_for

OUTAGE_S = 10


async def test_database_outage_keeps_entries_and_the_process(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    proxy, proxied = await proxy_for(pg_dsn)
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE event (id text PRIMARY KEY, n int NOT NULL)")
    config = write_config(
        tmp_path / "o.toml",
        proxied,
        prefix=redis_prefix,
        drainer={"retry_backoff_max_ms": 1000},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    proc = spawn_drainer(config, consumer="outage")
    try:
        for i in range(20):
            await producer.insert("event", {"id": f"a{i}", "n": i}, partition_key=f"k{i}")

        async def first_applied() -> bool:
            return await conn.fetchval("SELECT count(*) FROM event") == 20

        await wait_until(first_applied, timeout_s=60)
        await proxy.cut()
        for i in range(100):
            await producer.insert("event", {"id": f"b{i}", "n": i}, partition_key=f"k{i}")
        await asyncio.sleep(OUTAGE_S)
        # nothing acknowledged (acked entries are deleted) and nothing applied
        backlog, _ = await stream_totals(redis_prefix)
        assert backlog == 100
        assert await conn.fetchval("SELECT count(*) FROM event") == 20
        assert proc.poll() is None, "the drainer must stay up while the database is down"

        await proxy.restore()

        async def all_applied() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM event")
            return n == 120 and await stream_totals(redis_prefix) == (0, 0)

        await wait_until(all_applied, timeout_s=60)
        code, out = await stop_process_async(proc)
        assert code == 0, out
        assert "db unavailable" in out  # it said what was wrong while waiting
        assert await redis.xlen(f"{redis_prefix}:drainer:dead_letter") == 0
    finally:
        if proc.poll() is None:
            await stop_process_async(proc)
        await proxy.close()
        await redis.aclose()
        await conn.close()
