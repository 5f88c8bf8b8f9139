"""The exclusive read script on a real Redis: one consumer per partition, claims, acks."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from drainer.consumers.group import ReadMode, StreamGroup
from drainer.consumers.streams import StreamLayout, partition_of


async def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True)


async def _age(r: aioredis.Redis, key: str, owner: str, ids: Sequence[str], idle_ms: int) -> None:
    """Make pending ``ids`` look idle for ``idle_ms`` without waiting that long.

    XCLAIM to their own owner with min-idle 0 keeps the owner; JUSTID leaves their
    delivery counts alone, so the test sees only what the code under test did.
    """
    await r.execute_command("XCLAIM", key, "drainer", owner, 0, *ids, "IDLE", idle_ms, "JUSTID")


async def _idle_ms(r: aioredis.Redis, key: str, ids: Sequence[str]) -> dict[str, int]:
    rows = await r.xpending_range(key, "drainer", min="-", max="+", count=100)
    return {
        row["message_id"]: row["time_since_delivered"] for row in rows if row["message_id"] in ids
    }


def test_partition_is_crc32_mod_n_and_keys_carry_the_hash_tag() -> None:
    # 0xCBF43926 is the published CRC-32/IEEE check value of "123456789"
    assert partition_of("123456789", 64) == 0xCBF43926 % 64 == 38
    assert partition_of("123456789", 1000) == 0xCBF43926 % 1000
    assert StreamLayout().stream_key(5) == "{shard_5}_DRAINER_STREAM"
    tenant = StreamLayout(prefix="tenant_a")
    assert tenant.stream_key(5) == "tenant_a:{shard_5}_DRAINER_STREAM"
    assert tenant.dead_letter_key == "tenant_a:drainer:dead_letter"
    assert tenant.partition_of_stream("tenant_a:{shard_63}_DRAINER_STREAM") == 63
    assert tenant.partition_of_stream("{shard_63}_DRAINER_STREAM") is None
    assert len(set(StreamLayout(num_partitions=64).all_streams())) == 64


async def test_backlog_written_before_the_group_exists_is_read(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_0}}_S"
    try:
        await r.xadd(key, {"n": "1"})
        group = StreamGroup(r, key, "drainer", "c1")
        await group.ensure_group()
        await group.ensure_group()  # idempotent
        read = await group.read(10, 60_000)
        assert read.mode is ReadMode.NEW
        assert [e.fields for e in read.entries] == [{"n": "1"}]
    finally:
        await r.aclose()


async def test_second_consumer_waits_while_first_holds_fresh_entries(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_1}}_S"
    try:
        a = StreamGroup(r, key, "drainer", "a")
        b = StreamGroup(r, key, "drainer", "b")
        await a.ensure_group()
        ids = [await r.xadd(key, {"n": str(i)}) for i in range(5)]
        first = await a.read(2, 60_000)
        assert [e.entry_id for e in first.entries] == ids[:2]
        # b must not read newer entries while a's are pending and fresh
        blocked = await b.read(10, 60_000)
        assert blocked.mode is ReadMode.BUSY and blocked.entries == [] and blocked.owner == "a"
        # a itself is handed its own pending entries again before anything new
        again = await a.read(10, 60_000)
        assert again.mode is ReadMode.OWN
        assert [e.entry_id for e in again.entries] == ids[:2]
        counts = await a.delivery_counts(ids[:2])
        assert counts == {ids[0]: 2, ids[1]: 2}
        assert await a.ack(ids[:2]) == 2
        assert await a.length() == 3  # acked entries are deleted: length is the backlog
        nxt = await b.read(10, 60_000)
        assert nxt.mode is ReadMode.NEW
        assert [e.entry_id for e in nxt.entries] == ids[2:]
    finally:
        await r.aclose()


async def test_idle_entries_of_a_dead_consumer_are_claimed_first(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_2}}_S"
    try:
        dead = StreamGroup(r, key, "drainer", "dead")
        live = StreamGroup(r, key, "drainer", "live")
        await dead.ensure_group()
        ids = [await r.xadd(key, {"n": str(i)}) for i in range(4)]
        await dead.read(2, 60_000)
        assert (await live.read(10, 60_000)).mode is ReadMode.BUSY  # fresh: not claimable yet
        await _age(r, key, "dead", ids[:2], 120_000)
        assert await dead.delivery_counts(ids[:2]) == {ids[0]: 1, ids[1]: 1}
        claimed = await live.read(10, 60_000)
        assert claimed.mode is ReadMode.CLAIMED
        assert [e.entry_id for e in claimed.entries] == ids[:2]  # the old ones, not the new
        assert await live.delivery_counts(ids[:2]) == {ids[0]: 2, ids[1]: 2}
        assert await dead.held(ids[:2]) == set()
        # the dead consumer, come back, cannot take them back: the partition is live's now
        assert (await dead.read(10, 60_000)).mode is ReadMode.BUSY
    finally:
        await r.aclose()


async def test_refresh_keeps_a_long_batch_from_being_claimed(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_3}}_S"
    try:
        worker = StreamGroup(r, key, "drainer", "worker")
        other = StreamGroup(r, key, "drainer", "other")
        await worker.ensure_group()
        ids = [await r.xadd(key, {"n": str(i)}) for i in range(3)]
        await worker.read(10, 60_000)
        # a batch running for two minutes: claimable, were it not refreshed
        await _age(r, key, "worker", ids, 120_000)
        assert min((await _idle_ms(r, key, ids)).values()) >= 120_000
        assert await worker.refresh(ids) == 3
        assert max((await _idle_ms(r, key, ids)).values()) < 60_000
        assert (await other.read(10, 60_000)).mode is ReadMode.BUSY
        assert await worker.held(ids) == set(ids)
        # refreshing counts no delivery: the attempt number stays the read's
        assert await worker.delivery_counts(ids) == dict.fromkeys(ids, 1)
    finally:
        await r.aclose()


async def test_deleted_pending_entry_comes_back_without_fields(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_4}}_S"
    try:
        g = StreamGroup(r, key, "drainer", "c")
        await g.ensure_group()
        entry_id = await r.xadd(key, {"n": "1"})
        await g.read(10, 60_000)
        await r.xdel(key, entry_id)
        again = await g.read(10, 60_000)
        assert [(e.entry_id, e.fields) for e in again.entries] == [(entry_id, None)]
    finally:
        await r.aclose()


async def test_uncount_takes_back_a_delivery_that_was_not_tried(
    redis_url: str, redis_prefix: str
) -> None:
    r = await _client(redis_url)
    key = f"{redis_prefix}:{{shard_5}}_S"
    try:
        g = StreamGroup(r, key, "drainer", "c")
        await g.ensure_group()
        ids = [await r.xadd(key, {"n": str(i)}) for i in range(2)]
        await g.read(10, 60_000)
        assert await g.delivery_counts(ids) == {ids[0]: 1, ids[1]: 1}
        assert await g.uncount([ids[1]]) == 1
        await g.read(10, 60_000)  # redelivered from history: the first real try of ids[1]
        assert await g.delivery_counts(ids) == {ids[0]: 2, ids[1]: 1}
    finally:
        await r.aclose()
