"""Database cut through a TCP proxy: retried, nothing acked while down, all applied after.

The database stays down until the drainer has counted (on ``/metrics``) as many failed
rounds as five per partition with a backlog: what is tested is the retry path with its
growing backoff, not one failed batch, and no fixed wait stands in for it.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout, partition_of
from tests.support.api import free_port
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process_async,
    stream_totals,
    wait_until,
    write_config,
)
from tests.support.proxy import proxy_for

#: Failed rounds per partition (on average) the outage lasts for.
RETRIES_WHILE_DOWN = 5
PARTITIONS = 8


async def _query_errors(api: httpx.AsyncClient) -> float:
    """``drainer_errors_total{class="query"}`` of the process, 0 before the first."""
    try:
        text = (await api.get("/metrics")).text
    except httpx.TransportError:
        return 0.0  # the API is not listening yet
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "drainer_errors_total" and sample.labels.get("class") == "query"
    )


async def test_database_outage_keeps_entries_and_the_process(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    proxy, proxied = await proxy_for(pg_dsn)
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE event (id text PRIMARY KEY, n int NOT NULL)")
    port = free_port()
    config = write_config(
        tmp_path / "o.toml",
        proxied,
        prefix=redis_prefix,
        drainer={"retry_backoff_max_ms": 1000},
        server={"enabled": True, "host": "127.0.0.1", "port": port},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    proc = spawn_drainer(config, consumer="outage")
    try:
        for i in range(20):
            await producer.insert("event", {"id": f"a{i}", "n": i}, partition_key=f"k{i}")

        async def first_applied() -> bool:
            return await conn.fetchval("SELECT count(*) FROM event") == 20

        await wait_until(first_applied, timeout_s=60)
        before = await _query_errors(api)
        await proxy.cut()
        for i in range(100):
            await producer.insert("event", {"id": f"b{i}", "n": i}, partition_key=f"k{i}")
        backlogged = len({partition_of(f"k{i}", PARTITIONS) for i in range(100)})
        wanted = before + RETRIES_WHILE_DOWN * backlogged

        async def retried_while_down() -> bool:
            assert proc.poll() is None, "the drainer must stay up while the database is down"
            return await _query_errors(api) >= wanted

        await wait_until(retried_while_down, timeout_s=60)
        # nothing acknowledged (acked entries are deleted) and nothing applied
        backlog, _ = await stream_totals(redis_prefix)
        assert backlog == 100
        assert await conn.fetchval("SELECT count(*) FROM event") == 20
        ready = await api.get("/health/ready")
        assert ready.status_code == 503, ready.text
        [tenant] = ready.json()["tenants"]
        assert tenant["database"]["ok"] is False and tenant["redis"]["ok"] is True, tenant
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
        await api.aclose()
        await proxy.close()
        await redis.aclose()
        await conn.close()
