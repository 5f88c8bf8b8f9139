"""A real ``drainer run`` process over HTTP: health, readiness through a database cut, metrics."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.api import free_port
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process_async,
    wait_until,
    write_config,
)
from tests.support.proxy import TcpProxy

TOKEN = "process-test-token"
ROWS = 30


async def test_readiness_follows_the_database_and_metrics_follow_the_drain(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    target = urlsplit(pg_dsn)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied = pg_dsn.replace(target.netloc, f"{target.username}@127.0.0.1:{proxy.port}")
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE event (id text PRIMARY KEY, n int NOT NULL)")
    port = free_port()
    config = write_config(
        tmp_path / "api.toml",
        proxied,
        prefix=redis_prefix,
        drainer={"retry_backoff_max_ms": 500},
        server={"enabled": True, "host": "127.0.0.1", "port": port, "admin_token": TOKEN},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    proc = spawn_drainer(config, consumer="api-proc")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:

        async def status_of(path: str) -> int | None:
            try:
                return (await client.get(path)).status_code
            except httpx.TransportError:
                return None  # not listening yet

        async def live() -> bool:
            assert proc.poll() is None, "the drainer exited"
            return await status_of("/health") == 200

        await wait_until(live, timeout_s=60)

        async def ready() -> bool:
            return await status_of("/health/ready") == 200

        await wait_until(ready, timeout_s=30)
        for i in range(ROWS):
            await producer.insert("event", {"id": f"e{i}", "n": i}, partition_key=f"k{i}")

        async def applied() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM event") == ROWS)

        await wait_until(applied, timeout_s=30)
        metrics = (await client.get("/metrics")).text
        values = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
        }
        assert values["drainer_pending_entries", ()] == 0
        queries = [v for (n, _), v in values.items() if n == "drainer_successful_queries_total"]
        assert sum(queries) == ROWS
        refused = await client.post("/dead-letters/requeue", json={"all": True})
        assert refused.status_code == 401
        allowed = await client.post(
            "/dead-letters/requeue",
            json={"all": True},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert allowed.status_code == 200 and allowed.json()["count"] == 0

        await proxy.cut()

        async def not_ready() -> bool:
            resp = await client.get("/health/ready")
            if resp.status_code != 503:
                return False
            [tenant] = resp.json()["tenants"]
            return not tenant["database"]["ok"] and tenant["redis"]["ok"]

        await wait_until(not_ready, timeout_s=30)
        assert (await client.get("/health")).status_code == 200  # alive: waiting, not stuck
        auth = {"Authorization": f"Bearer {TOKEN}"}  # the deep check writes: it needs a token
        assert (await client.get("/health/deep")).status_code == 401
        deep = await client.get("/health/deep", headers=auth)
        assert deep.status_code == 503 and not deep.json()["tenants"][0]["database"]["ok"]

        await proxy.restore()
        await wait_until(ready, timeout_s=30)
        assert (await client.get("/health/deep", headers=auth)).status_code == 200
        code, out = await stop_process_async(proc)
        assert code == 0, out
    finally:
        await client.aclose()
        if proc.poll() is None:
            await stop_process_async(proc)
        await proxy.close()
        await redis.aclose()
        await conn.close()
