"""Adaptive reading: read counts follow the backlog, idle partitions are polled less often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.partition import PartitionWorker
from drainer.consumers.producer import insert_op
from drainer.lifecycle import open_stores
from drainer.store import Store
from tests.support.drainer import settings_from, write_config
from tests.support.proxy import proxy_for

MAX_READ = 64


@asynccontextmanager
async def _worker(
    tmp_path: Path, dsn: str, prefix: str, rows: int, **drainer: Any
) -> AsyncIterator[tuple[PartitionWorker, Store]]:
    """One partition's worker over a table ``row_``, with ``rows`` inserts waiting."""
    settings = settings_from(
        write_config(
            tmp_path / "a.toml",
            dsn,
            prefix=prefix,
            drainer={"num_partitions": 1, "max_read_count": MAX_READ, **drainer},
        )
    )
    stores = await open_stores(settings)
    store = stores["t1"]
    worker = PartitionWorker(
        store.pipeline,
        0,
        store.redis,
        settings.drainer.consumer_options(),
        PartitionLimiter(1, adaptive=False),
        asyncio.Event(),
    )
    try:
        await worker.group.ensure_group()
        await store.producer.append_many(
            (insert_op("row_", {"id": f"r{i}"}), "k") for i in range(rows)
        )
        yield worker, store
    finally:
        await store.close()
        await store.redis.aclose()


async def _create_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE row_ (id text PRIMARY KEY)")
    finally:
        await conn.close()


async def test_full_batches_while_behind_and_idle_polls_back_off(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await _create_table(pg_dsn)
    async with _worker(
        tmp_path, pg_dsn, redis_prefix, 300, loop_interval=10, idle_poll_max_ms=80
    ) as (worker, store):
        counts = []
        while await worker.group.length():
            counts.append(worker.read_count)
            assert await worker.step() == 0.0  # behind: read again at once
        assert set(counts) == {MAX_READ}  # from the first read on
        assert len(counts) == -(-300 // MAX_READ)  # no wasted round trips
        delays = [await worker.step() for _ in range(5)]
        assert delays == [0.01, 0.02, 0.04, 0.08, 0.08]  # idle: poll less and less often
        await store.producer.append_many([(insert_op("row_", {"id": "late"}), "k")])
        assert await worker.step() == 0.0
        assert await worker.step() == 0.01  # busy again: back to the short interval


async def test_failed_batch_halves_the_read_count_and_full_ones_double_it_back(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await _create_table(pg_dsn)
    proxy, proxied = await proxy_for(pg_dsn)
    try:
        async with _worker(tmp_path, proxied, redis_prefix, 100) as (worker, store):
            assert await worker.step() == 0.0
            assert worker.read_count == MAX_READ
            assert await worker.group.length() == 100 - MAX_READ
            await proxy.cut()  # the database becomes unreachable mid-drain
            delay = await worker.step()
            assert delay > 0
            assert worker.read_count == MAX_READ // 2
            assert not store.pipeline.health.db_ok
            assert await worker.group.length() == 100 - MAX_READ  # nothing acknowledged
            await proxy.restore()
            assert await worker.step() == 0.0  # a full batch of MAX_READ // 2
            assert store.pipeline.health.db_ok
            assert worker.read_count == MAX_READ
            assert await worker.group.length() == 100 - MAX_READ - MAX_READ // 2
    finally:
        await proxy.close()
