"""on_dead_letter = "park_entity": an entity's later entries wait behind its dead letter.

With it, a dead-lettered insert parks the same global_id's later entries in that
partition (dead-lettered as ``parked``, naming the head) while other entities
flow on; requeueing or discarding the head puts them back in order. With the
default "continue", the later entries are tried as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from drainer.api.app import create_app
from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.main import open_drainer
from tests.support.api import BASE_URL, api_client
from tests.support.drainer import settings_from, wait_until, write_config

# child.n changes are recorded in order by a trigger: the order they were applied in
TABLES = """
CREATE TABLE parent (id text PRIMARY KEY);
CREATE TABLE child (
    id text PRIMARY KEY, parent_id text NOT NULL REFERENCES parent (id), n int CHECK (n >= 0)
);
CREATE TABLE history (seq serial PRIMARY KEY, id text, n int);
CREATE FUNCTION record_n() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO history (id, n) VALUES (NEW.id, NEW.n); RETURN NEW; END $$;
CREATE TRIGGER child_history AFTER INSERT OR UPDATE ON child
    FOR EACH ROW EXECUTE FUNCTION record_n();
"""
PARTITIONS = 1  # every entity on the same partition


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute(TABLES)
    yield connection
    await connection.close()


def _config(tmp_path: Path, pg_dsn: str, prefix: str, **drainer: Any) -> Path:
    return write_config(
        tmp_path / "d.toml",
        pg_dsn,
        prefix=prefix,
        drainer={"num_partitions": PARTITIONS, "max_attempts": 1, **drainer},
    )


async def _letters(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    resp = await client.get("/dead-letters", params={"contents": "full"})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _history(conn: asyncpg.Connection, row_id: str) -> list[int]:
    rows = await conn.fetch("SELECT n FROM history WHERE id = $1 ORDER BY seq", row_id)
    return [r["n"] for r in rows]


async def test_a_dead_insert_parks_the_entitys_later_entries_until_its_requeue(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    config = _config(tmp_path, pg_dsn, redis_prefix, on_dead_letter="park_entity")
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    sent = await producer.append_many(
        [
            (insert_op("child", {"id": "c1", "parent_id": "p1", "n": 1}), "pay_1"),  # no parent
            (update_op("child", {"id": "c1"}, {"n": 5}), "pay_1"),
            (insert_op("parent", {"id": "p2"}), "pay_2"),
            (insert_op("child", {"id": "c2", "parent_id": "p2", "n": 1}), "pay_2"),
            (update_op("child", {"id": "c1"}, {"n": 6}), "pay_1"),
        ]
    )
    head = sent[0]
    async with api_client(settings_from(config)) as (_drainer, client):

        async def settled() -> bool:
            return len(await _letters(client)) == 3

        await wait_until(settled, timeout_s=20)
        # the other entity on the same partition was applied
        assert await conn.fetchval("SELECT n FROM child WHERE id = 'c2'") == 1
        letters = await _letters(client)
        assert [d["error_class"] for d in letters] == ["constraint", "parked", "parked"]
        assert [d["source_id"] for d in letters] == [
            sent[0].entry_id,
            sent[1].entry_id,
            sent[4].entry_id,
        ]
        for parked in letters[1:]:
            assert head.stream in parked["error"] and head.entry_id in parked["error"]
        # a later batch (the park is read from the database) keeps parking
        later = await producer.update("child", {"id": "c1"}, {"n": 7}, partition_key="pay_1")

        async def parked_later() -> bool:
            return len(await _letters(client)) == 4

        await wait_until(parked_later, timeout_s=20)
        last = (await _letters(client))[-1]
        assert last["source_id"] == later.entry_id and last["error_class"] == "parked"
        assert await _history(conn, "c1") == []
        parks = await conn.fetch("SELECT stream, global_id, head_id FROM drainer_parked")
        assert [tuple(r) for r in parks] == [(head.stream, "pay_1", head.entry_id)]

        # a parked one cannot jump its head
        jump = await client.post(f"/dead-letters/{letters[1]['id']}/requeue")
        assert jump.status_code == 409 and letters[0]["id"] in jump.json()["detail"]

        # the cause is fixed; requeueing the head puts it back, then the parked ones, in order
        await conn.execute("INSERT INTO parent VALUES ('p1')")
        resp = await client.post(f"/dead-letters/{letters[0]['id']}/requeue")
        assert resp.status_code == 200, resp.text
        released = resp.json()["released"]
        assert [r["id"] for r in released] == [letters[1]["id"], letters[2]["id"], last["id"]]

        async def applied() -> bool:
            return len(await _history(conn, "c1")) == 4

        await wait_until(applied, timeout_s=20)
        assert await _history(conn, "c1") == [1, 5, 6, 7]
        assert await _letters(client) == []
        assert await conn.fetchval("SELECT count(*) FROM drainer_parked") == 0
        # released: the entity's next entry applies at once
        await producer.update("child", {"id": "c1"}, {"n": 8}, partition_key="pay_1")

        async def flowing() -> bool:
            return await _history(conn, "c1") == [1, 5, 6, 7, 8]

        await wait_until(flowing, timeout_s=20)


async def test_discarding_the_head_requeues_the_parked_entries_in_order(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    await conn.execute("INSERT INTO parent VALUES ('p1'); INSERT INTO child VALUES ('c1', 'p1', 0)")
    config = _config(tmp_path, pg_dsn, redis_prefix, on_dead_letter="park_entity")
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    await producer.append_many(
        [
            (update_op("child", {"id": "c1"}, {"n": -1}), "pay_1"),  # refused by the check
            (update_op("child", {"id": "c1"}, {"n": 2}), "pay_1"),
            (update_op("child", {"id": "c1"}, {"n": 3}), "pay_1"),
        ]
    )
    async with api_client(settings_from(config)) as (_drainer, client):

        async def settled() -> bool:
            return len(await _letters(client)) == 3

        await wait_until(settled, timeout_s=20)
        head, *parked = await _letters(client)
        assert head["error_class"] == "constraint"
        assert [d["error_class"] for d in parked] == ["parked", "parked"]
        resp = await client.delete(f"/dead-letters/{head['id']}")
        assert resp.status_code == 200, resp.text
        assert [r["id"] for r in resp.json()["released"]] == [d["id"] for d in parked]

        async def applied() -> bool:
            return len(await _history(conn, "c1")) == 3

        await wait_until(applied, timeout_s=20)
        assert await _history(conn, "c1") == [0, 2, 3]
        assert await _letters(client) == []
        assert await conn.fetchval("SELECT count(*) FROM drainer_parked") == 0


async def test_a_release_cut_short_is_finished_by_requeueing_a_parked_one(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    """The Redis step ran but the park row stayed (the process died before the commit)."""
    await conn.execute("INSERT INTO parent VALUES ('p1'); INSERT INTO child VALUES ('c1', 'p1', 0)")
    config = _config(tmp_path, pg_dsn, redis_prefix, on_dead_letter="park_entity")
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix)
    producer = Producer(redis, layout)
    await producer.append_many(
        [
            (update_op("child", {"id": "c1"}, {"n": -1}), "pay_1"),
            (update_op("child", {"id": "c1"}, {"n": 2}), "pay_1"),
        ]
    )
    async with api_client(settings_from(config)) as (drainer, client):

        async def settled() -> bool:
            return len(await _letters(client)) == 2

        await wait_until(settled, timeout_s=20)
        head, parked = await _letters(client)
        await conn.execute("ALTER TABLE child DROP CONSTRAINT child_n_check")
        # what a release does in Redis, without its commit: the park row stays
        store = next(iter(drainer.stores.values()))
        moved = await store.dead_letters.put_back(head["source_stream"], [head["id"], parked["id"]])
        assert all(moved)

        async def parked_again() -> bool:
            return [d["error_class"] for d in await _letters(client)] == ["parked", "parked"]

        # nothing is applied past the park: both come back parked, in order
        await wait_until(parked_again, timeout_s=20)
        assert await _history(conn, "c1") == [0]
        again = await _letters(client)
        resp = await client.post(f"/dead-letters/{again[1]['id']}/requeue")
        assert resp.status_code == 200, resp.text

        async def applied() -> bool:
            return len(await _history(conn, "c1")) == 3

        await wait_until(applied, timeout_s=20)
        assert await _history(conn, "c1") == [0, -1, 2]
        assert await _letters(client) == []
        assert await conn.fetchval("SELECT count(*) FROM drainer_parked") == 0


async def test_with_continue_the_later_entries_are_still_tried(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    config = _config(tmp_path, pg_dsn, redis_prefix)  # on_dead_letter defaults to "continue"
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    await conn.execute("INSERT INTO parent VALUES ('p0'); INSERT INTO child VALUES ('c0', 'p0', 0)")
    await producer.append_many(
        [
            (update_op("child", {"id": "c0"}, {"n": -1}), "pay_1"),  # refused by the check
            (update_op("child", {"id": "c0"}, {"n": 4}), "pay_1"),  # applied all the same
        ]
    )
    async with api_client(settings_from(config)) as (_drainer, client):

        async def applied() -> bool:
            return len(await _history(conn, "c0")) == 2

        await wait_until(applied, timeout_s=20)
        assert await _history(conn, "c0") == [0, 4]
        assert [d["error_class"] for d in await _letters(client)] == ["constraint"]
        assert await conn.fetchval("SELECT count(*) FROM drainer_parked") == 0


async def test_a_release_waits_for_the_entitys_entries_still_queued(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    """Queued entries of the entity would be read after the park is gone: 409 until read."""
    await conn.execute("INSERT INTO parent VALUES ('p1'); INSERT INTO child VALUES ('c1', 'p1', 0)")
    settings = settings_from(_config(tmp_path, pg_dsn, redis_prefix, on_dead_letter="park_entity"))
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    await producer.append_many(
        [
            (update_op("child", {"id": "c1"}, {"n": -1}), "pay_1"),  # refused by the check
            (update_op("child", {"id": "c1"}, {"n": 2}), "pay_1"),
        ]
    )
    async with api_client(settings) as (_drainer, client):

        async def settled() -> bool:
            return len(await _letters(client)) == 2

        await wait_until(settled, timeout_s=20)
        head = (await _letters(client))[0]
    await conn.execute("ALTER TABLE child DROP CONSTRAINT child_n_check")
    # written while no drainer runs: still queued when the operator releases
    await producer.update("child", {"id": "c1"}, {"n": 3}, partition_key="pay_1")
    idle = await open_drainer(settings)  # the API only: nothing is read
    try:
        transport = httpx.ASGITransport(app=create_app(idle))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as only_api:
            early = await only_api.post(f"/dead-letters/{head['id']}/requeue")
            assert early.status_code == 409 and "still queued" in early.json()["detail"]
    finally:
        await idle.close()
    async with api_client(settings) as (_drainer, client):

        async def parked_too() -> bool:
            return len(await _letters(client)) == 3

        await wait_until(parked_too, timeout_s=20)
        resp = await client.post(f"/dead-letters/{head['id']}/requeue")
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["released"]) == 2

        async def applied() -> bool:
            return len(await _history(conn, "c1")) == 4

        await wait_until(applied, timeout_s=20)
        assert await _history(conn, "c1") == [0, -1, 2, 3]
