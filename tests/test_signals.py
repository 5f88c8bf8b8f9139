"""SIGHUP stops the drainer gracefully, as SIGTERM does (no reload)."""

from __future__ import annotations

import signal
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from consumers.producer import Producer, insert_op
from consumers.streams import StreamLayout
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process,
    stream_totals,
    wait_until,
    write_config,
)

ENTRIES = 30_000


async def test_sighup_mid_drain_finishes_batches_in_flight_and_exits_0(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    try:
        for start in range(0, ENTRIES, 5000):
            await producer.append_many(
                (insert_op("ledger", {"id": f"l{i}", "amount": i}), f"acct{i % 500}")
                for i in range(start, start + 5000)
            )
        config = write_config(
            tmp_path / "s.toml", pg_dsn, prefix=redis_prefix, drainer={"max_read_count": 200}
        )
        proc = spawn_drainer(config, consumer="hup")

        async def draining() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM ledger"))

        await wait_until(draining, timeout_s=60, interval_s=0.05)
        code, out = stop_process(proc, signal.SIGHUP)
        assert code == 0, out  # not killed by the signal (that would be -1)
        assert "shutdown requested (SIGHUP)" in out

        applied = await conn.fetchval("SELECT count(*) FROM ledger")
        backlog, pending = await stream_totals(redis_prefix)
        assert 0 < applied < ENTRIES, "the signal must land mid-drain"
        # every batch in flight committed and was acknowledged: nothing held, nothing lost
        assert pending == 0
        assert applied + backlog == ENTRIES
    finally:
        await redis.aclose()
        await conn.close()
