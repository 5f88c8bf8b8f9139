"""The order and exactly-once scenario: real drainer processes, one SIGKILLed mid-run.

Each key gets an insert then many updates; a trigger installed by the test
records any update applied twice or out of order.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.db.operations import Operation
from tests.support.drainer import (
    spawn_drainer,
    stop_process,
    stream_totals,
    wait_until,
    write_config,
)

PARTITIONS = 16

SCHEMA = """
CREATE TABLE item (key text PRIMARY KEY, version int NOT NULL, payload text);
CREATE TABLE applied_log (id bigserial PRIMARY KEY, key text NOT NULL, version int NOT NULL);
CREATE TABLE violations (id bigserial PRIMARY KEY, key text, old_version int, new_version int);
CREATE FUNCTION item_order() RETURNS trigger AS $$
BEGIN
  IF NEW.version <> OLD.version + 1 THEN
    INSERT INTO violations (key, old_version, new_version)
    VALUES (OLD.key, OLD.version, NEW.version);
  END IF;
  INSERT INTO applied_log (key, version) VALUES (NEW.key, NEW.version);
  PERFORM pg_sleep(0.003);  -- batches take time, so a kill lands inside one
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER item_order BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION item_order();
"""


def operations(keys: int, updates_per_key: int) -> list[tuple[Operation, str]]:
    """Per key an insert then its updates in order; keys interleaved at random."""
    rng = random.Random(7)
    queues = {
        f"key{k:04d}": [insert_op("item", {"key": f"key{k:04d}", "version": 0, "payload": "v0"})]
        + [
            update_op("item", {"key": f"key{k:04d}"}, {"version": v, "payload": f"v{v}"})
            for v in range(1, updates_per_key + 1)
        ]
        for k in range(keys)
    }
    out = []
    while queues:
        key = rng.choice(list(queues))
        out.append((queues[key].pop(0), key))
        if not queues[key]:
            del queues[key]
    return out


async def _feed(producer: Producer, ops: list[tuple[Operation, str]], chunk: int) -> None:
    for start in range(chunk, len(ops), chunk):
        await producer.append_many(ops[start : start + chunk])
        await asyncio.sleep(0.1)


async def pending_on(redis: Any, prefix: str, consumer: str) -> int:
    """Entries pending on ``consumer`` over all partitions."""
    held = 0
    for key in StreamLayout("DRAINER_STREAM", PARTITIONS, prefix).all_streams():
        summary = await redis.xpending(key, "drainer")
        held += sum(c["pending"] for c in summary["consumers"] if c["name"] == consumer)
    return held


async def run_scenario(
    tmp_path: Path,
    pg_dsn: str,
    prefix: str,
    redis: Any,
    *,
    processes: int,
    keys: int,
    updates_per_key: int,
    redis_settings: Mapping[str, Any] | None = None,
) -> None:
    """Drain with ``processes`` drainers, SIGKILL one mid-run, start another; check the log."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(SCHEMA)
        config = write_config(
            tmp_path / "eo.toml",
            pg_dsn,
            prefix=prefix,
            redis=redis_settings,
            drainer={
                "num_partitions": PARTITIONS,
                "max_read_count": 8,
                "claim_min_idle_ms": 1500,
                "max_concurrent_partitions": 4,
            },
        )
        producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, prefix))
        ops = operations(keys, updates_per_key)
        total = len(ops)
        procs = [spawn_drainer(config, consumer=f"eo-{i}") for i in range(processes)]
        try:
            chunk = total // 30
            await producer.append_many(ops[:chunk])

            async def started() -> bool:
                return bool(await conn.fetchval("SELECT count(*) FROM item"))

            try:
                await wait_until(started, timeout_s=60)
            except AssertionError:
                outputs = [stop_process(p)[1] for p in procs]
                raise AssertionError(f"no drainer applied anything: {outputs}") from None
            feeding = asyncio.create_task(_feed(producer, ops, chunk))
            try:
                # kill eo-0 the moment it is seen holding entries, while entries keep coming
                while not await pending_on(redis, prefix, "eo-0"):
                    assert not feeding.done(), "eo-0 was never seen holding a batch"
                    await asyncio.sleep(0.01)
                procs[0].send_signal(signal.SIGKILL)
                stop_process(procs[0])
                orphaned = await pending_on(redis, prefix, "eo-0")
                procs.append(spawn_drainer(config, consumer="eo-new"))
            finally:
                await feeding
            assert procs[0].returncode == -signal.SIGKILL
            assert orphaned > 0, "the killed process must have died holding entries"

            async def all_applied() -> bool:
                done = await conn.fetchval(
                    "SELECT count(*) FROM item WHERE version = $1", updates_per_key
                )
                totals = await stream_totals(prefix, client=redis, partitions=PARTITIONS)
                return bool(done == keys and totals == (0, 0))

            await wait_until(all_applied, timeout_s=120, interval_s=0.5)
            outputs = []
            for proc in procs[1:]:
                code, out = stop_process(proc)
                assert code == 0, out
                outputs.append(out)
            # the killed consumer's pending entries were taken over by a live one
            assert any("took over" in out for out in outputs), outputs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    stop_process(proc, signal.SIGKILL)

        assert await conn.fetch("SELECT * FROM violations") == []
        doubled = await conn.fetch(
            "SELECT key, version, count(*) AS n FROM applied_log"
            " GROUP BY key, version HAVING count(*) > 1"
        )
        assert doubled == [], f"updates applied twice: {doubled[:5]}"
        assert await conn.fetchval("SELECT count(*) FROM applied_log") == keys * updates_per_key
        assert await conn.fetchval("SELECT count(*) FROM item") == keys
        assert await conn.fetchval("SELECT count(DISTINCT payload) FROM item") == 1
        assert await redis.xlen(f"{prefix}:drainer:dead_letter") == 0
    finally:
        await conn.close()
