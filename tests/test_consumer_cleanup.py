"""Consumers leave the groups: their own at a clean stop, long-idle empty ones swept."""

from __future__ import annotations

import signal
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process,
    stream_totals,
    wait_until,
    write_config,
)

PARTITIONS = 8  # FAST_DRAINER's num_partitions
GROUP = "drainer"


async def consumers_by_stream(r: aioredis.Redis, layout: StreamLayout) -> dict[str, dict[str, int]]:
    """Each partition's consumers and how many entries each holds."""
    out: dict[str, dict[str, int]] = {}
    for key in layout.all_streams():
        try:
            rows = await r.xinfo_consumers(key, GROUP)
        except aioredis.ResponseError:  # no stream or no group yet
            rows = []
        out[key] = {row["name"]: int(row["pending"]) for row in rows}
    return out


async def test_clean_stop_removes_own_consumer_from_every_group(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix)
    try:
        await Producer(r, layout).append_many(
            (insert_op("ledger", {"id": f"l{i}", "amount": i}), f"acct{i}") for i in range(200)
        )
        config = write_config(tmp_path / "s.toml", pg_dsn, prefix=redis_prefix)
        proc = spawn_drainer(config, consumer="leaver")

        async def drained() -> bool:
            return await stream_totals(redis_prefix) == (0, 0)

        try:
            await wait_until(drained, timeout_s=60)
            seen = await consumers_by_stream(r, layout)
            assert any("leaver" in names for names in seen.values())  # it did join the groups
        finally:
            code, out = stop_process(proc, signal.SIGTERM)
        assert code == 0, out
        assert await conn.fetchval("SELECT count(*) FROM ledger") == 200
        left = {key: names for key, names in (await consumers_by_stream(r, layout)).items()}
        assert all("leaver" not in names for names in left.values()), left
    finally:
        await r.aclose()
        await conn.close()


async def test_stale_empty_consumer_swept_one_holding_entries_kept_then_claimed(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix)
    key = layout.stream_for("acct_held")
    try:
        await Producer(r, layout).append_many(
            (insert_op("ledger", {"id": f"h{i}", "amount": i}), "acct_held") for i in range(3)
        )
        await r.xgroup_create(key, GROUP, id="0", mkstream=True)
        # a process that died holding 3 entries, and one that left holding nothing
        held = await r.xreadgroup(GROUP, "holder", {key: ">"}, count=3)
        assert len(held[0][1]) == 3
        await r.xgroup_createconsumer(key, GROUP, "ghost")
        sweeping = {
            "consumer_sweep_idle_ms": 200,
            "consumer_sweep_interval_ms": 200,
            "claim_min_idle_ms": 600_000,  # the holder's entries are not claimed yet
        }
        config = write_config(tmp_path / "a.toml", pg_dsn, prefix=redis_prefix, drainer=sweeping)
        proc = spawn_drainer(config, consumer="sweeper")

        async def ghost_gone() -> bool:
            return "ghost" not in (await consumers_by_stream(r, layout))[key]

        try:
            await wait_until(ghost_gone, timeout_s=60)
            # the same atomic sweep saw the holder, idle as long: it keeps it and its entries
            assert (await consumers_by_stream(r, layout))[key].get("holder") == 3
            assert await conn.fetchval("SELECT count(*) FROM ledger") == 0
        finally:
            code, out = stop_process(proc, signal.SIGTERM)
        assert code == 0, out
        assert (await consumers_by_stream(r, layout))[key].get("holder") == 3

        # with claiming on, the holder's entries are claimed and applied; then it is swept
        config = write_config(
            tmp_path / "b.toml",
            pg_dsn,
            prefix=redis_prefix,
            drainer={**sweeping, "claim_min_idle_ms": 300},
        )
        proc = spawn_drainer(config, consumer="claimer")

        async def holder_gone() -> bool:
            return "holder" not in (await consumers_by_stream(r, layout))[key]

        try:
            await wait_until(holder_gone, timeout_s=60)
            assert await conn.fetchval("SELECT count(*) FROM ledger") == 3
        finally:
            code, out = stop_process(proc, signal.SIGTERM)
        assert code == 0, out
        assert await stream_totals(redis_prefix) == (0, 0)
        assert all(not names for names in (await consumers_by_stream(r, layout)).values())
    finally:
        await r.aclose()
        await conn.close()
