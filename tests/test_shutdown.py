"""SIGTERM (or SIGHUP, which stops the same way: no reload) during a large drain: exit 0
in time, nothing held or lost, the rest drained later."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
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


async def test_an_unreachable_collector_does_not_hold_the_exit(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    """Spans and metrics for an OTLP collector that is down: the drain applies everything,
    and the exit waits for telemetry a few seconds at most (the SDK's own timeouts made it
    35 s), well inside the shutdown deadline."""
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    deadline_s = 15
    config = write_config(
        tmp_path / "s.toml", pg_dsn, prefix=redis_prefix, drainer={"shutdown_timeout_s": deadline_s}
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    try:
        await producer.append_many(
            (insert_op("ledger", {"id": f"l{i}", "amount": i}), f"acct{i}") for i in range(200)
        )
        env = {**os.environ, "DRAINER__TELEMETRY__OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
        started = time.monotonic()
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "drainer", "run", "--config", str(config), "--burst"],
            capture_output=True,
            env=env,
            timeout=120,
        )
        elapsed = time.monotonic() - started
        out = run.stderr.decode(errors="replace")
        assert run.returncode == 0, out
        assert await conn.fetchval("SELECT count(*) FROM ledger") == 200
        assert "telemetry did not flush within" in out
        assert elapsed < deadline_s, f"took {elapsed:.1f}s with the collector down"
    finally:
        await redis.aclose()
        await conn.close()
