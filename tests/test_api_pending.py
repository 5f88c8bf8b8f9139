"""GET /pending, GET /pending/{stream}/entries and POST /replay against a running drainer.

A consumer "killed mid-batch" is simulated by reading entries as ``ghost`` with
XREADGROUP and never acknowledging them; ``claim_min_idle_ms`` is long, so the
drainer leaves them alone (the partition is busy) until an operator replays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.group import ReadMode, StreamGroup
from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.partition import PartitionWorker
from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.lifecycle import open_stores
from drainer.settings import Settings
from tests.support.api import api_client
from tests.support.drainer import partition_worker, settings_from, wait_until, write_config

GROUP = "drainer"
GHOST = "ghost"
KEY = "mid_m1_pid_pay_1"
SCHEMA = "CREATE TABLE item (id text PRIMARY KEY, n int NOT NULL)"


def _url(stream: str) -> str:
    return quote(stream, safe="")


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(SCHEMA)
    yield connection
    await connection.close()


def _settings(tmp_path: Path, dsn: str, prefix: str) -> Settings:
    # long claim time: entries held by the ghost stay with it unless replayed
    config = write_config(
        tmp_path / "p.toml", dsn, prefix=prefix, drainer={"claim_min_idle_ms": 600_000}
    )
    return settings_from(config)


async def _held_by_ghost(redis: aioredis.Redis, producer: Producer, ops: int) -> list[str]:
    """Append ``ops`` operations for KEY and read them as the ghost (never acked)."""
    stream = producer.layout.stream_for(KEY)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    operations = [
        insert_op("item", {"id": "i1", "n": 1}),
        update_op("item", {"id": "i1"}, {"n": 2}),
        insert_op("item", {"id": "i2", "n": 3}),
    ]
    ids = [(await producer.append(op, partition_key=KEY)).entry_id for op in operations[:ops]]
    await redis.xreadgroup(GROUP, GHOST, {stream: ">"}, count=len(ids))
    return ids


async def test_inspect_and_replay_entries_of_a_consumer_killed_mid_batch(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the audit logger at INFO, as it runs by default: its record must not break the reply
    caplog.set_level(logging.INFO, logger="drainer.audit")
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    stream = producer.layout.stream_for(KEY)
    ids = await _held_by_ghost(redis, producer, 3)
    async with api_client(_settings(tmp_path, pg_dsn, redis_prefix)) as (_drainer, client):
        summary = (await client.get("/pending", params={"nonempty": "true"})).json()
        assert summary["total"] == 3 and summary["pending"] == 3
        [tenant] = summary["tenants"]
        [part] = tenant["partitions"]
        assert part["stream"] == stream and part["backlog"] == 3 and part["pending"] == 3
        assert part["consumers"] == [{"name": GHOST, "pending": 3}]
        assert part["oldest_pending_id"] == ids[0] and part["max_deliveries"] == 1
        assert part["oldest_pending_idle_ms"] >= 0 and part["oldest_pending_age_ms"] >= 0

        page = (
            await client.get(f"/pending/{_url(stream)}/entries", params={"contents": "full"})
        ).json()
        assert [e["id"] for e in page["items"]] == ids and page["next_after"] is None
        first = page["items"][0]
        assert first["consumer"] == GHOST and first["deliveries"] == 1
        assert first["global_id"] == KEY and first["request_id"]
        assert first["operation"] == {
            "op": "insert",
            "tag": "item",
            "table": "item",
            "key": {"id": "i1"},
        }
        assert page["items"][1]["operation"]["op"] == "update"
        assert page["items"][1]["operation"]["key"] == {"id": "i1"}

        one = (await client.get(f"/pending/{_url(stream)}/entries", params={"limit": 2})).json()
        assert [e["id"] for e in one["items"]] == ids[:2] and one["next_after"] == ids[1]
        two = await client.get(
            f"/pending/{_url(stream)}/entries", params={"after": one["next_after"]}
        )
        assert [e["id"] for e in two.json()["items"]] == ids[2:]
        for params in ({"consumer": "someone-else"}, {"min_idle_ms": 10**9}):
            resp = await client.get(f"/pending/{_url(stream)}/entries", params=params)
            assert resp.json()["items"] == []

        # replaying the update applies the insert before it first, in order
        resp = await client.post(f"/replay/{_url(stream)}/{ids[1]}")
        assert resp.status_code == 200, resp.text
        result = resp.json()
        assert result["outcome"] == "applied"
        assert [(e["id"], e["outcome"]) for e in result["entries"]] == [
            (ids[0], "applied"),
            (ids[1], "applied"),
        ]
        assert all(e["previous_consumer"] == GHOST for e in result["entries"])
        assert result["entries"][1]["global_id"] == KEY
        assert result["watermark"] == ids[1]
        assert await conn.fetchval("SELECT n FROM item WHERE id = 'i1'") == 2
        [read, record] = [r for r in caplog.records if r.name == "drainer.audit"]
        assert read.action == "read" and read.entries == ids  # type: ignore[attr-defined]
        assert record.getMessage().startswith(f"replay {stream}/{ids[1]}: applied")
        assert record.entries == ids[:2] and record.global_id == KEY  # type: ignore[attr-defined]
        assert isinstance(record.detail_message, str)  # type: ignore[attr-defined]
        left = (await client.get(f"/pending/{_url(stream)}/entries")).json()["items"]
        assert [(e["id"], e["consumer"]) for e in left] == [(ids[2], GHOST)]

        resp = await client.post(f"/replay/{_url(stream)}/{ids[2]}")
        assert resp.json()["outcome"] == "applied"
        assert await conn.fetchval("SELECT n FROM item WHERE id = 'i2'") == 3

        async def drained() -> bool:
            return bool((await client.get("/pending")).json()["total"] == 0)

        await wait_until(drained, timeout_s=10)
        again = await client.post(f"/replay/{_url(stream)}/{ids[2]}")
        assert again.status_code == 404 and "no pending entry" in again.json()["detail"]
        # the replay consumer does not linger in the group once it holds nothing
        consumers = {c["name"] for c in await redis.xinfo_consumers(stream, GROUP)}
        assert not any(name.endswith(":replay") for name in consumers)


async def test_replay_reports_an_entry_the_fence_finds_applied(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    stream = producer.layout.stream_for(KEY)
    [entry_id] = await _held_by_ghost(redis, producer, 1)
    async with api_client(_settings(tmp_path, pg_dsn, redis_prefix)) as (_drainer, client):
        # the ghost had committed its batch and died before acknowledging it
        ms, seq = entry_id.split("-")
        await conn.execute("INSERT INTO item VALUES ('i1', 1)")
        await conn.execute(
            "INSERT INTO drainer_watermark (stream, last_ms, last_seq) VALUES ($1, $2, $3) "
            "ON CONFLICT (stream) DO UPDATE SET last_ms = $2, last_seq = $3",
            stream,
            int(ms),
            int(seq),
        )
        result = (await client.post(f"/replay/{_url(stream)}/{entry_id}")).json()
        assert result["outcome"] == "skipped"
        assert "already applied" in result["message"]
        assert await redis.xlen(stream) == 0  # acknowledged and deleted, not applied twice
        assert await conn.fetchval("SELECT count(*) FROM item") == 1


async def test_replay_dead_letters_a_bad_entry_and_leaves_a_missing_row_pending(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    producer = Producer(redis, layout)
    stream = layout.stream_for(KEY)
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    bad = await producer.insert("item", {"id": "x", "nope": 1}, partition_key=KEY)
    missing = await producer.update("item", {"id": "absent"}, {"n": 5}, partition_key=KEY)
    await redis.xreadgroup(GROUP, GHOST, {stream: ">"}, count=10)
    async with api_client(_settings(tmp_path, pg_dsn, redis_prefix)) as (_drainer, client):
        dead = (await client.post(f"/replay/{_url(stream)}/{bad.entry_id}")).json()
        assert dead["outcome"] == "dead"
        assert dead["entries"][0]["error_class"] == "unknown_column"
        assert await redis.xlen(layout.dead_letter_key) == 1

        retry = (await client.post(f"/replay/{_url(stream)}/{missing.entry_id}")).json()
        assert retry["outcome"] == "retry" and "stays pending" in retry["message"]
        assert retry["entries"][0]["attempt"] == 2  # the ghost's read, then the replay's
        held = (await client.get(f"/pending/{_url(stream)}/entries")).json()["items"]
        assert [(e["id"], e["consumer"]) for e in held] == [(missing.entry_id, retry["consumer"])]


async def test_bad_streams_and_ids_are_4xx_with_a_message(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    stream = StreamLayout("DRAINER_STREAM", 8, redis_prefix).stream_key(3)
    async with api_client(_settings(tmp_path, pg_dsn, redis_prefix)) as (_drainer, client):
        cases = [
            ("GET", "/pending/nope/entries", 404, "unknown stream"),
            ("GET", f"/pending/{_url(stream + 'x')}/entries", 404, "unknown stream"),
            ("GET", f"/pending/{_url(stream)}/entries?after=12", 422, "not a stream entry id"),
            ("GET", f"/pending/{_url(stream)}/entries?limit=0", 422, "query limit"),
            ("GET", "/pending?tenant=nobody", 404, "unknown tenant"),
            ("POST", f"/replay/{_url(stream)}/abc", 422, "not a stream entry id"),
            ("POST", f"/replay/{_url(stream)}/99999999999999999999999-0", 422, "entry id"),
            ("POST", f"/replay/{_url(stream)}/1-1", 404, "no pending entry"),
            ("POST", "/replay/nope/1-1", 404, "unknown stream"),
        ]
        for method, path, code, words in cases:
            resp = await client.request(method, path)
            assert resp.status_code == code, (path, resp.text)
            assert words in resp.json()["detail"], (path, resp.text)
        empty = (await client.get(f"/pending/{_url(stream)}/entries")).json()
        assert empty["items"] == [] and empty["partition"] == 3


async def test_replaying_an_entry_its_own_worker_is_retrying_applies_it_once(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        """
        CREATE TABLE update_log (id bigserial PRIMARY KEY, item text, n int);
        CREATE FUNCTION log_update() RETURNS trigger AS $$
        BEGIN INSERT INTO update_log (item, n) VALUES (NEW.id, NEW.n); RETURN NEW; END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER log_update AFTER UPDATE ON item FOR EACH ROW EXECUTE FUNCTION log_update();
        """
    )
    config = write_config(
        tmp_path / "r.toml",
        pg_dsn,
        prefix=redis_prefix,
        # the worker keeps retrying the update, slowly, without giving up
        drainer={"max_attempts": 100, "retry_backoff_base_ms": 300, "retry_backoff_max_ms": 600},
    )
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    stream = producer.layout.stream_for(KEY)
    async with api_client(settings_from(config)) as (drainer, client):
        sent = await producer.update("item", {"id": "i1"}, {"n": 7}, partition_key=KEY)

        async def retried() -> bool:
            items = (await client.get(f"/pending/{_url(stream)}/entries")).json()["items"]
            return bool(items) and items[0]["deliveries"] >= 2

        await wait_until(retried, timeout_s=20)
        # Every worker round runs under the partition limiter: holding all of it, no
        # round is in flight and none starts, so the replay takes the entry from a
        # worker between retries (left alone, that worker could apply it first).
        [worker] = [w for w in drainer.supervisor.workers if w.stream == stream]
        step = worker.step
        rounds_after = 0

        async def counted_step() -> float | None:
            # started while the limiter is held, so its read comes after the replay
            nonlocal rounds_after
            delay = await step()
            rounds_after += 1
            return delay

        async with drainer.supervisor.limiter.hold_all():
            await conn.execute("INSERT INTO item VALUES ('i1', 0)")
            result = (await client.post(f"/replay/{_url(stream)}/{sent.entry_id}")).json()
            worker.step = counted_step  # type: ignore[method-assign]
        assert result["outcome"] == "applied", result
        [entry] = result["entries"]
        assert entry["previous_consumer"] == drainer.options.consumer
        assert entry["attempt"] >= 3  # the worker's tries were counted, then the replay's

        async def settled() -> bool:
            return bool((await client.get("/pending")).json()["total"] == 0)

        await wait_until(settled, timeout_s=20)
        assert await redis.xlen(stream) == 0

        async def worker_went_round() -> bool:
            return rounds_after >= 1

        # a whole round of the worker after the replay: were it to apply the update
        # again, it would have done so in that round
        await wait_until(worker_went_round, timeout_s=20)
    assert await conn.fetchval("SELECT n FROM item WHERE id = 'i1'") == 7
    assert await conn.fetchval("SELECT count(*) FROM update_log") == 1


async def test_a_batch_finishes_when_a_redis_call_swallows_the_keepalive_cancel(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    """Python 3.11's asyncio.wait_for (used by redis-py) can swallow a cancellation.

    The keep-alive of a batch is cancelled when the batch commits; if it kept
    looping, the batch (and a replay, which runs the same path) would never be
    acknowledged.
    """
    settings = _settings(tmp_path, pg_dsn, redis_prefix)
    stores = await open_stores(settings)
    store = stores["t1"]
    try:
        # a keep-alive round every 50 ms
        options = dataclasses.replace(settings.drainer.consumer_options(), claim_min_idle_ms=150)
        worker = PartitionWorker(
            store.pipeline,
            0,
            store.redis,
            options,
            PartitionLimiter(1, adaptive=False),
            asyncio.Event(),
        )

        in_refresh = asyncio.Event()
        never = asyncio.Event()  # a Redis reply that has not come yet

        async def swallowing_refresh(ids: list[str]) -> int:
            in_refresh.set()
            try:
                await never.wait()
            except asyncio.CancelledError:
                return 0  # what wait_for does when the write had already finished
            return len(ids)

        worker.group.refresh = swallowing_refresh  # type: ignore[method-assign]
        keepalive = asyncio.create_task(worker._keep_fresh(["1-1"]))
        await asyncio.wait_for(in_refresh.wait(), timeout=10)
        keepalive.cancel()
        # a keep-alive that went on looping would sit in its next refresh forever
        done, _ = await asyncio.wait({keepalive}, timeout=2)
        assert done and keepalive.cancelled()
    finally:
        await store.close()
        await store.redis.aclose()


async def test_a_batch_longer_than_the_claim_time_keeps_its_entries(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
) -> None:
    """Past ``claim_min_idle_ms`` a batch still in flight keeps its entries fresh:
    another consumer finds the partition busy instead of claiming them."""
    await conn.execute(
        """
        CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$;
        CREATE TRIGGER slow BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION slow_insert();
        """
    )
    settings = _settings(tmp_path, pg_dsn, redis_prefix)
    stores = await open_stores(settings)
    store = stores["t1"]
    try:
        options = dataclasses.replace(settings.drainer.consumer_options(), claim_min_idle_ms=300)
        worker = partition_worker(store, options, KEY)
        await worker.group.ensure_group()
        appended = await Producer(redis, store.pipeline.layout).append(
            insert_op("item", {"id": "i1", "n": 1}), partition_key=KEY
        )
        batch = asyncio.create_task(worker.step())
        rival = StreamGroup(redis, worker.stream, GROUP, "rival")

        async def delivered() -> bool:
            return bool(await worker.group.held([appended.entry_id]))

        await wait_until(delivered, timeout_s=10)
        await asyncio.sleep(1)  # well past the claim time, with the insert still sleeping
        assert not batch.done()
        read = await rival.read(10, options.claim_min_idle_ms)
        assert read.mode is ReadMode.BUSY and not read.entries
        await batch
        assert await conn.fetchval("SELECT n FROM item WHERE id = 'i1'") == 1
        assert await redis.xlen(worker.stream) == 0
    finally:
        await store.close()
        await store.redis.aclose()
