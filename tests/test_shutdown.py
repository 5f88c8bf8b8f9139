"""SIGTERM (or SIGHUP, which stops the same way: no reload) during a large drain: exit 0
in time, nothing held or lost, the rest drained later."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
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

ENTRIES = 30_000
SHUTDOWN_TIMEOUT_S = 5


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
async def test_a_stop_signal_mid_drain_exits_cleanly_and_loses_nothing(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, stop_signal: signal.Signals
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    config = write_config(
        tmp_path / "s.toml",
        pg_dsn,
        prefix=redis_prefix,
        drainer={"shutdown_timeout_s": SHUTDOWN_TIMEOUT_S, "max_read_count": 200},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    try:
        for start in range(0, ENTRIES, 5000):
            await producer.append_many(
                (insert_op("ledger", {"id": f"l{i}", "amount": i}), f"acct{i % 500}")
                for i in range(start, start + 5000)
            )
        proc = spawn_drainer(config, consumer="first")

        async def draining() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM ledger"))

        await wait_until(draining, timeout_s=60, interval_s=0.05)
        signalled = time.monotonic()
        code, out = stop_process(proc, stop_signal, timeout_s=SHUTDOWN_TIMEOUT_S + 20)
        elapsed = time.monotonic() - signalled
        assert code == 0, out  # not killed by the signal (that would be negative)
        assert elapsed < SHUTDOWN_TIMEOUT_S + 2, f"took {elapsed:.1f}s to stop"
        assert f"shutdown requested ({stop_signal.name})" in out

        applied = await conn.fetchval("SELECT count(*) FROM ledger")
        backlog, pending = await stream_totals(redis_prefix)
        assert 0 < applied < ENTRIES, "the signal must land mid-drain"
        # every batch in flight committed and was acknowledged: nothing held, nothing lost
        assert pending == 0
        assert applied + backlog == ENTRIES

        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "drainer", "run", "--config", str(config), "--burst"],
            capture_output=True,
            timeout=120,
        )
        assert second.returncode == 0, second.stderr.decode()
        assert await conn.fetchval("SELECT count(*) FROM ledger") == ENTRIES
        assert await conn.fetchval("SELECT sum(amount) FROM ledger") == sum(range(ENTRIES))
        assert await stream_totals(redis_prefix) == (0, 0)
        assert await redis.xlen(f"{redis_prefix}:drainer:dead_letter") == 0
    finally:
        await redis.aclose()
        await conn.close()
