"""Two tenants, two prefixes, two schemas: each drains into its own schema only."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.drainer import REDIS_URL, settings_from, stream_totals, write_config
from tests.support.run import drain_burst


async def test_each_tenant_drains_into_its_own_schema(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    for schema in ("tenant_a", "tenant_b"):
        await conn.execute(
            f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.note (id text PRIMARY KEY, body text)"
        )
    prefix_a, prefix_b = f"{redis_prefix}a", f"{redis_prefix}b"
    config = write_config(
        tmp_path / "mt.toml",
        pg_dsn,
        prefix="unused",
        tenants={
            "a": {"schema": "tenant_a", "redis_key_prefix": prefix_a},
            "b": {"schema": "tenant_b", "redis_key_prefix": prefix_b},
        },
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        pa = Producer(redis, StreamLayout("DRAINER_STREAM", 8, prefix_a))
        pb = Producer(redis, StreamLayout("DRAINER_STREAM", 8, prefix_b))
        for i in range(30):
            await pa.insert("note", {"id": f"n{i}", "body": "from a"}, partition_key=f"k{i}")
        for i in range(20):
            await pb.insert("note", {"id": f"n{i}", "body": "from b"}, partition_key=f"k{i}")
        await pb.update("note", {"id": "n0"}, {"body": "b edited"}, partition_key="k0")
        await pb.insert("note", {"id": "bad", "nope": 1}, partition_key="k0")
        counters = await drain_burst(settings_from(config))
        assert counters["a"]["applied"] == 30 and counters["b"]["applied"] == 21
        assert await redis.xlen(f"{prefix_a}:drainer:dead_letter") == 0
        assert await redis.xlen(f"{prefix_b}:drainer:dead_letter") == 1
        assert await stream_totals(prefix_a) == (0, 0)
        assert await stream_totals(prefix_b) == (0, 0)
    finally:
        await redis.aclose()
    try:
        a_rows = await conn.fetch("SELECT body, count(*) FROM tenant_a.note GROUP BY body")
        b_rows = await conn.fetch(
            "SELECT body, count(*) FROM tenant_b.note GROUP BY body ORDER BY body"
        )
        assert [tuple(r) for r in a_rows] == [("from a", 30)]
        assert [tuple(r) for r in b_rows] == [("b edited", 1), ("from b", 19)]
        # each schema keeps its own fence
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM tenant_a.drainer_watermark WHERE stream LIKE $1",
                f"{prefix_b}%",
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM tenant_b.drainer_watermark WHERE stream LIKE $1",
                f"{prefix_b}%",
            )
            > 0
        )
    finally:
        await conn.close()
