"""A byte budget per batch beside the entry count: big entries make small batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from drainer.consumers.group import StreamGroup
from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from drainer.db.executor import BatchEntry, BatchHooks, BatchResult
from drainer.lifecycle import Drainer, open_stores
from tests.support.drainer import REDIS_URL, settings_from, stream_totals, write_config

BUDGET_BYTES = 1024 * 1024
BIG_BYTES = 300 * 1024
HUGE_BYTES = 3 * 1024 * 1024  # one entry over the budget: still read, alone


def entry_bytes(entry_id: str, fields: dict[str, str]) -> int:
    """What the read script counts: the id, field names and values, in bytes."""
    return len(entry_id.encode()) + sum(
        len(k.encode()) + len(v.encode()) for k, v in fields.items()
    )


async def test_read_stops_at_the_byte_budget_and_reads_a_huge_entry_alone(
    redis_prefix: str,
) -> None:
    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{redis_prefix}:{{shard_0}}_DRAINER_STREAM"
    try:
        await r.xadd(key, {"v": "x" * HUGE_BYTES})
        for _ in range(6):
            await r.xadd(key, {"v": "y" * BIG_BYTES})
        group = StreamGroup(r, key, "drainer", "c1")
        await group.ensure_group()

        first = await group.read(500, 60_000, BUDGET_BYTES)
        assert len(first.entries) == 1 and first.first_delivery
        assert len(first.entries[0].fields["v"]) == HUGE_BYTES  # type: ignore[index]
        await group.ack([e.entry_id for e in first.entries])

        second = await group.read(500, 60_000, BUDGET_BYTES)
        assert len(second.entries) == 3  # 3 x 300 KiB fit in 1 MiB, 4 do not
        # the fourth was not delivered: the next read gets it as new, not as a redelivery
        await group.ack([e.entry_id for e in second.entries])
        third = await group.read(500, 60_000, BUDGET_BYTES)
        assert third.first_delivery and len(third.entries) == 3

        # a claim (history read) keeps the budget too
        await r.xadd(key, {"v": "z" * BIG_BYTES})
        await group.ack([e.entry_id for e in third.entries])
        for _ in range(5):
            await r.xadd(key, {"v": "z" * BIG_BYTES})
        dead = StreamGroup(r, key, "drainer", "dead")
        held = await dead.read(10, 60_000)  # no budget: takes all 6
        assert len(held.entries) == 6
        live = StreamGroup(r, key, "drainer", "live")
        claimed = await live.read(500, 0, BUDGET_BYTES)
        assert claimed.mode.value == "claimed" and len(claimed.entries) == 3
        assert [e.entry_id for e in claimed.entries] == [e.entry_id for e in held.entries[:3]]
        await live.ack([e.entry_id for e in claimed.entries])
        again = await live.read(500, 60_000, BUDGET_BYTES)
        assert again.mode.value == "own"
        assert [e.entry_id for e in again.entries] == [e.entry_id for e in held.entries[3:]]
    finally:
        await r.aclose()


async def test_partition_of_big_entries_drains_with_batches_within_budget(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE blob (id text PRIMARY KEY, body text NOT NULL)")
    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(r, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    sizes = [BIG_BYTES] * 20 + [HUGE_BYTES] + [BIG_BYTES] * 10 + [100] * 50
    try:
        # one global_id: every entry in the same partition, in order
        await producer.append_many(
            (insert_op("blob", {"id": f"b{i}", "body": "x" * size}), "one_entity")
            for i, size in enumerate(sizes)
        )
        settings = settings_from(
            write_config(
                tmp_path / "s.toml",
                pg_dsn,
                prefix=redis_prefix,
                drainer={"max_read_count": 500, "max_batch_bytes": BUDGET_BYTES},
            )
        )
        stores = await open_stores(settings)
        batches: list[int] = []
        for store in stores.values():
            executor = store.pipeline.executor
            apply = executor.apply

            async def recording(
                stream: str,
                entries: Sequence[BatchEntry],
                hooks: BatchHooks,
                apply: Any = apply,
            ) -> BatchResult:
                batches.append(sum(entry_bytes(e.entry_id, e.source.raw.fields) for e in entries))
                result: BatchResult = await apply(stream, entries, hooks)
                return result

            executor.apply = recording  # type: ignore[method-assign]
        drainer = Drainer(settings, stores, burst=True)
        try:
            await drainer.run()
        finally:
            await drainer.close()

        assert await conn.fetchval("SELECT count(*) FROM blob") == len(sizes)
        assert await stream_totals(redis_prefix) == (0, 0)
        largest_entry = HUGE_BYTES + 1000  # body plus the envelope around it
        assert max(batches) <= max(BUDGET_BYTES, largest_entry), batches
        assert len(batches) >= sum(sizes) // BUDGET_BYTES  # it did split the partition
    finally:
        await r.aclose()
        await conn.close()
