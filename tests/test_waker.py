"""The waker on a real Redis: idle partitions woken by their next entry, not by a poll."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.aio import cancel_and_wait
from drainer.consumers.group import ReadMode, StreamGroup
from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.waker import Waker
from drainer.lifecycle import open_stores
from tests.support.drainer import partition_worker, settings_from, write_config

GROUP = "drainer"
KEY = "mid_m1_pid_pay_1"
#: Far longer than any test may take: a worker that waited out its poll would hang.
POLL_S = 600.0
WOKEN_WITHIN_S = 10.0


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute("CREATE TABLE item (id text PRIMARY KEY, n int NOT NULL)")
    yield connection
    await connection.close()


async def _running(waker: Waker, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(waker.run(stop))


async def test_a_watch_is_set_by_the_first_entry_after_its_id(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:{{shard_0}}_DRAINER_STREAM"
    other = f"{redis_prefix}:{{shard_1}}_DRAINER_STREAM"
    before = await redis.xadd(stream, {"n": "0"})
    last_other = await redis.xadd(other, {"n": "0"})
    stop = asyncio.Event()
    waker = Waker(redis)
    task = await _running(waker, stop)
    try:
        woken = waker.watch(stream, before)
        quiet = waker.watch(other, last_other)  # nothing comes after it
        await asyncio.sleep(0.2)  # a few blocking reads go by with nothing new
        assert not woken.is_set() and not quiet.is_set()
        await redis.xadd(stream, {"n": "1"})
        await asyncio.wait_for(woken.wait(), WOKEN_WITHIN_S)
        assert not quiet.is_set()
        # an entry already there after the id: woken at once
        early = waker.watch(stream, before)
        await asyncio.wait_for(early.wait(), WOKEN_WITHIN_S)
    finally:
        waker.close()
        await asyncio.wait_for(task, WOKEN_WITHIN_S)
    # closing released the watch left, and a watch after closing is released at once
    assert quiet.is_set()
    assert waker.watch(other, last_other).is_set()


async def test_an_idle_partition_is_woken_by_its_next_entry(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
) -> None:
    """Empty twice, the worker waits on the waker: an entry ends a wait of minutes."""
    config = write_config(tmp_path / "w.toml", pg_dsn, prefix=redis_prefix)
    settings = settings_from(config)
    stores = await open_stores(settings)
    store = stores["t1"]
    stop = asyncio.Event()
    waker = Waker(store.redis)
    task = await _running(waker, stop)
    try:
        layout = store.pipeline.layout
        options = dataclasses.replace(
            settings.drainer.consumer_options(),
            loop_interval_ms=100,
            idle_poll_max_ms=int(POLL_S * 1000),
        )
        worker = partition_worker(store, options, KEY, stop=stop, waker=waker)
        await worker.group.ensure_group()
        assert await worker.step() == pytest.approx(0.1)  # first empty read: no watch
        assert not waker.is_watching(worker.stream)
        await worker.step()  # empty again: watched from the group's last-delivered id
        assert waker.is_watching(worker.stream)
        pause = asyncio.create_task(worker._pause(POLL_S))
        await asyncio.sleep(0.2)
        assert not pause.done()
        await Producer(redis, layout).append(
            insert_op("item", {"id": "i1", "n": 1}), partition_key=KEY
        )
        await asyncio.wait_for(pause, WOKEN_WITHIN_S)
        assert not waker.is_watching(worker.stream)
        assert await worker.step() == 0.0  # the entry, read and applied
        assert await conn.fetchval("SELECT n FROM item WHERE id = 'i1'") == 1
    finally:
        waker.close()
        await cancel_and_wait(task)
        await store.close()
        await store.redis.aclose()


async def test_an_entry_read_by_another_consumer_first_wakes_to_a_busy_read(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    """A wake is only a hint: the exclusive read decides, and nothing is read twice."""
    stream = f"{redis_prefix}:{{shard_2}}_DRAINER_STREAM"
    mine = StreamGroup(redis, stream, GROUP, "me")
    rival = StreamGroup(redis, stream, GROUP, "rival")
    await mine.ensure_group()
    empty = await mine.read(10, 60_000)
    assert empty.mode is ReadMode.NEW and not empty.entries
    assert empty.last_delivered is not None
    stop = asyncio.Event()
    waker = Waker(redis)
    task = await _running(waker, stop)
    try:
        woken = waker.watch(stream, empty.last_delivered)
        await redis.xadd(stream, {"n": "1"})
        taken = await rival.read(10, 60_000)
        assert taken.mode is ReadMode.NEW and len(taken.entries) == 1
        await asyncio.wait_for(woken.wait(), WOKEN_WITHIN_S)
        again = await mine.read(10, 60_000)
        assert again.mode is ReadMode.BUSY and not again.entries
    finally:
        waker.close()
        await cancel_and_wait(task)
