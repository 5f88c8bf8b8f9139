"""Cutover: drainer replicas start beside Hyperswitch's Rust drainer, which then stops.

The Rust drainer is played by :class:`RustDrainerStandIn`, written here from
Hyperswitch's ``handler.rs`` and ``stream.rs``: per partition it takes
``[<prefix>:]{shard_N}_<stream_name>_in_use`` with ``SET NX EX``, reads the
stream with ``XREAD`` from ``0-0`` (no consumer group) up to ``max_read_count``,
runs one autocommit statement per entry, trims what it applied (``XTRIM MINID``
the last id, then ``XDEL`` of that id) and unlocks with ``DEL``. A trigger
records every applied write, so a write applied twice or out of order shows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.entry import decode_entry
from drainer.consumers.group import ReadMode, ReadResult, StreamGroup
from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from drainer.db.operations import OpKind
from drainer.lifecycle import Drainer
from drainer.main import open_drainer
from tests.support.api import api_client
from tests.support.drainer import (
    create_a_table,
    settings_from,
    stream_totals,
    wait_until,
    write_config,
)
from tests.support.exactly_once import operations

PARTITIONS = 4
KEYS = 24
UPDATES = 12
STAND_IN = "rust-drainer-stand-in"
REPLICAS = 2

SCHEMA = """
CREATE TABLE item (key text PRIMARY KEY, version int NOT NULL, payload text);
CREATE TABLE applied_log (
  id bigserial PRIMARY KEY, key text NOT NULL, version int NOT NULL, by text NOT NULL
);
CREATE TABLE violations (id bigserial PRIMARY KEY, key text, old_version int, new_version int);
CREATE FUNCTION item_history() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.version <> OLD.version + 1 THEN
    INSERT INTO violations (key, old_version, new_version)
    VALUES (OLD.key, OLD.version, NEW.version);
  END IF;
  INSERT INTO applied_log (key, version, by)
  VALUES (NEW.key, NEW.version, current_setting('application_name'));
  -- the stand-in's sessions set a delay: its batches run while it holds its locks
  PERFORM pg_sleep(coalesce(nullif(current_setting('cutover.delay', true), ''), '0')::float8);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER item_history BEFORE INSERT OR UPDATE ON item
  FOR EACH ROW EXECUTE FUNCTION item_history();
"""


class RustDrainerStandIn:
    """Hyperswitch's Rust drainer, reduced to what the cutover depends on."""

    def __init__(self, redis: aioredis.Redis, dsn: str, prefix: str) -> None:
        self.redis = redis
        self.dsn = dsn
        self.prefix = prefix
        self.max_read_count = 40
        self.loop_interval_s = 0.05
        self.ttl_s = 300  # Hyperswitch's redis default_ttl
        self.last_round = False  # set: the next round is the last (as on shutdown)
        self.locked = asyncio.Event()  # the last round holds every partition's lock
        self.release = asyncio.Event()  # the last round may finish
        self.applied = 0

    def stream(self, n: int) -> str:
        # stream.rs: {shard_N}_<stream_name>, under the tenant's prefix as "<prefix>:<key>"
        return f"{self.prefix}:{{shard_{n}}}_DRAINER_STREAM"

    def flag(self, n: int) -> str:
        return self.stream(n) + "_in_use"

    async def run(self) -> None:
        conns = [
            await asyncpg.connect(self.dsn, server_settings={"application_name": STAND_IN})
            for _ in range(PARTITIONS)
        ]
        try:
            while True:
                last = self.last_round
                if last:
                    for conn in conns:  # slow statements while the last round holds its locks
                        await conn.execute("SET cutover.delay = '0.01'")
                    flags = [await self._lock(n) for n in range(PARTITIONS)]
                    assert all(flags), "nobody else takes Hyperswitch's lock"
                    self.locked.set()
                    await asyncio.gather(
                        *(self._drain(n, c, hold=True) for n, c in enumerate(conns))
                    )
                    return
                # handler.rs spawns one task per partition it could lock
                locked = [n for n in range(PARTITIONS) if await self._lock(n)]
                await asyncio.gather(*(self._drain(n, conns[n]) for n in locked))
                await asyncio.sleep(self.loop_interval_s)
        finally:
            for conn in conns:
                await conn.close()

    async def _lock(self, n: int) -> bool:
        return bool(await self.redis.set(self.flag(n), "true", nx=True, ex=self.ttl_s))

    async def _drain(self, n: int, conn: asyncpg.Connection, *, hold: bool = False) -> None:
        try:
            reply = await self.redis.xread({self.stream(n): "0-0"}, count=self.max_read_count)
            entries = reply[0][1] if reply else []
            for _entry_id, fields in entries:
                await self._apply(conn, fields)
            if hold:  # the last round keeps its locks until the replicas tried them
                await asyncio.wait_for(self.release.wait(), 20)
            if entries:
                last_id = entries[-1][0]
                # stream.rs trim_from_stream: XTRIM MINID (exact) drops the ids below, XDEL it
                await self.redis.xtrim(self.stream(n), minid=last_id, approximate=False)
                await self.redis.xdel(self.stream(n), last_id)
        finally:
            await self.redis.delete(self.flag(n))

    async def _apply(self, conn: asyncpg.Connection, fields: dict[str, str]) -> None:
        op = decode_entry(fields).operation
        try:
            if op.kind is OpKind.INSERT:
                await conn.execute(
                    "INSERT INTO item (key, version, payload) VALUES ($1, $2, $3)",
                    op.values["key"],
                    op.values["version"],
                    op.values["payload"],
                )
            else:
                await conn.execute(
                    "UPDATE item SET version = $1, payload = $2 WHERE key = $3",
                    op.values["version"],
                    op.values["payload"],
                    op.orig["key"],
                )
            self.applied += 1
        except asyncpg.UniqueViolationError:
            pass  # handler.rs logs a failed statement and goes on with the next entry


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(SCHEMA)
    yield connection
    await connection.close()


ReadLog = list[tuple[str, str, ReadMode, int]]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> ReadLog:
    """Every exclusive read of the replicas: (consumer, stream, mode, entries read)."""
    log: ReadLog = []
    real: Callable[..., Awaitable[ReadResult]] = StreamGroup.read

    async def read(self: StreamGroup, *args: Any, **kwargs: Any) -> ReadResult:
        result = await real(self, *args, **kwargs)
        log.append((self.consumer, self.key, result.mode, len(result.entries)))
        return result

    monkeypatch.setattr(StreamGroup, "read", read)
    return log


async def _cutover(
    tmp_path: Path,
    pg_dsn: str,
    prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    reads: ReadLog,
    *,
    honour: bool,
) -> RustDrainerStandIn:
    """Feed; the stand-in drains; replicas start in its last round; it stops; all drain."""
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, prefix)
    producer = Producer(redis, layout)
    ops = operations(KEYS, UPDATES)
    chunk = 12
    stand_in = RustDrainerStandIn(redis, pg_dsn, prefix)

    async def feed() -> None:
        for start in range(0, len(ops), chunk):
            await producer.append_many(ops[start : start + chunk])
            await asyncio.sleep(0.04)

    feeding = asyncio.create_task(feed())
    rust = asyncio.create_task(stand_in.run())
    drainers: list[Drainer] = []
    tasks: list[asyncio.Task[None]] = []
    try:

        async def stand_in_working() -> bool:
            assert not rust.done(), rust
            return stand_in.applied >= 40

        await wait_until(stand_in_working, timeout_s=20, interval_s=0.02)
        stand_in.last_round = True
        await asyncio.wait_for(stand_in.locked.wait(), 10)
        assert not feeding.done(), "the feed must still be live when the replicas start"
        for i in range(REPLICAS):
            config = write_config(
                tmp_path / f"r{i}.toml",
                pg_dsn,
                prefix=prefix,
                drainer={
                    "num_partitions": PARTITIONS,
                    "max_read_count": 8,
                    "consumer_name": f"cut-{i}",
                    "honour_hyperswitch_lock": honour,
                },
            )
            settings = settings_from(config)
            drainers.append(await open_drainer(settings))
            tasks.append(asyncio.create_task(drainers[-1].run()))

        async def every_partition_tried() -> bool:
            return {stream for _, stream, _, _ in reads} == set(layout.all_streams())

        # the replicas have tried every partition while the stand-in holds them all
        await wait_until(every_partition_tried, timeout_s=20, interval_s=0.02)
        held_reads = list(reads)
        stand_in.release.set()
        await rust
        await feeding

        async def all_applied() -> bool:
            done = await conn.fetchval("SELECT count(*) FROM item WHERE version = $1", UPDATES)
            totals = await stream_totals(prefix, client=redis, partitions=PARTITIONS)
            return bool(done == KEYS and totals == (0, 0))

        await wait_until(all_applied, timeout_s=30, interval_s=0.1)
    finally:
        stand_in.release.set()
        for drainer in drainers:
            drainer.request_stop("test over")
        await asyncio.gather(*tasks, return_exceptions=True)
        for drainer in drainers:
            await drainer.close()
        for task in (rust, feeding):
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if honour:
        assert held_reads, "the replicas read while the stand-in held its locks"
        assert {mode for _, _, mode, _ in held_reads} == {ReadMode.HYPERSWITCH}, held_reads
        assert all(n == 0 for _, _, _, n in held_reads), held_reads
    assert not await redis.exists(*(stand_in.flag(n) for n in range(PARTITIONS)))
    return stand_in


async def test_replicas_leave_partitions_held_by_the_rust_drainer_alone(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    reads: ReadLog,
) -> None:
    await _cutover(tmp_path, pg_dsn, redis_prefix, redis, conn, reads, honour=True)
    assert await conn.fetch("SELECT * FROM violations") == []
    doubled = await conn.fetch(
        "SELECT key, version, count(*) AS n FROM applied_log"
        " GROUP BY key, version HAVING count(*) > 1"
    )
    assert doubled == [], f"applied twice: {doubled[:5]}"
    assert await conn.fetchval("SELECT count(*) FROM applied_log") == KEYS * (UPDATES + 1)
    by = {
        r["by"]: r["n"]
        for r in await conn.fetch("SELECT by, count(*) AS n FROM applied_log GROUP BY by")
    }
    assert by.get(STAND_IN) and sum(n for name, n in by.items() if name != STAND_IN), by
    assert await conn.fetchval("SELECT count(DISTINCT payload) FROM item") == 1
    assert await redis.xlen(f"{redis_prefix}:drainer:dead_letter") == 0


async def test_without_the_check_the_rust_drainers_batch_is_applied_twice(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    reads: ReadLog,
) -> None:
    await _cutover(tmp_path, pg_dsn, redis_prefix, redis, conn, reads, honour=False)
    doubled = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM applied_log"
        " GROUP BY key, version HAVING count(*) > 1) d"
    )
    assert doubled > 0, "without the check both drainers apply the stand-in's last batch"
    assert await conn.fetchval("SELECT count(*) FROM violations") > 0


async def test_pending_shows_a_partition_held_by_the_rust_drainer(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis
) -> None:
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix)
    flag = f"{redis_prefix}:{{shard_2}}_DRAINER_STREAM_in_use"
    assert await redis.set(flag, "true", nx=True, ex=300)
    await create_a_table(pg_dsn)
    config = write_config(
        tmp_path / "p.toml", pg_dsn, prefix=redis_prefix, drainer={"num_partitions": PARTITIONS}
    )
    try:
        async with api_client(settings_from(config)) as (_, client):
            body = (await client.get("/pending")).json()
            parts = {p["partition"]: p for p in body["tenants"][0]["partitions"]}
            assert parts[2]["stream"] == layout.stream_key(2)
            assert parts[2]["held_by_hyperswitch"] is True
            assert 0 < parts[2]["hyperswitch_lock_ttl_ms"] <= 300_000
            for n in (0, 1, 3):
                assert parts[n]["held_by_hyperswitch"] is False
                assert parts[n]["hyperswitch_lock_ttl_ms"] is None
            shown = (await client.get("/pending", params={"nonempty": "true"})).json()
            assert [p["partition"] for p in shown["tenants"][0]["partitions"]] == [2]
            await redis.delete(flag)
            body = (await client.get("/pending")).json()
            assert body["tenants"][0]["partitions"][2]["held_by_hyperswitch"] is False
    finally:
        await redis.delete(flag)
