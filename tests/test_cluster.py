"""The drainer on a real 3-master Redis Cluster: every script stays in one partition's slot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.cluster import redis_cluster
from tests.support.drainer import settings_from, stream_totals, write_config
from tests.support.exactly_once import run_scenario
from tests.support.run import drain_burst


@pytest.fixture(scope="module")
def cluster_nodes() -> Iterator[list[str]]:
    with redis_cluster() as nodes:
        yield nodes


def _client(nodes: list[str]) -> RedisCluster:
    startup = [ClusterNode(n.split(":")[0], int(n.split(":")[1])) for n in nodes]
    return RedisCluster(startup_nodes=startup, decode_responses=True)


async def test_partitions_spread_over_the_cluster_drain(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, cluster_nodes: list[str]
) -> None:
    redis = _client(cluster_nodes)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("CREATE TABLE note (id text PRIMARY KEY, body text)")
        layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
        await redis.initialize()
        slots = {redis.keyslot(key) for key in layout.all_streams()}
        nodes = {redis.get_node_from_key(key).name for key in layout.all_streams()}
        assert len(slots) == 8 and len(nodes) > 1  # the partitions really are spread out
        producer = Producer(redis, layout)
        for i in range(200):
            await producer.insert("note", {"id": f"n{i}", "body": "x"}, partition_key=f"k{i}")
        await producer.update("note", {"id": "n1"}, {"body": "y"}, partition_key="k1")
        await producer.insert("note", {"id": "bad", "zzz": 1}, partition_key="k1")
        config = write_config(
            tmp_path / "c.toml",
            pg_dsn,
            prefix=redis_prefix,
            redis={"cluster_enabled": True, "cluster_urls": cluster_nodes},
        )
        counters = (await drain_burst(settings_from(config)))["t1"]
        assert counters["applied"] == 201 and counters["dead"] == 1
        assert await conn.fetchval("SELECT count(*) FROM note") == 200
        assert await conn.fetchval("SELECT body FROM note WHERE id = 'n1'") == "y"
        assert await stream_totals(redis_prefix, client=redis, partitions=8) == (0, 0)
        assert await redis.xlen(layout.dead_letter_key) == 1
    finally:
        await conn.close()
        await redis.aclose()


async def test_order_and_exactly_once_on_cluster_with_sigkill(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, cluster_nodes: list[str]
) -> None:
    redis = _client(cluster_nodes)
    try:
        await run_scenario(
            tmp_path,
            pg_dsn,
            redis_prefix,
            redis,
            processes=2,
            keys=160,
            updates_per_key=12,
            redis_settings={"cluster_enabled": True, "cluster_urls": cluster_nodes},
        )
    finally:
        await redis.aclose()
