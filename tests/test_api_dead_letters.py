"""Dead letters over HTTP: list with filters and paging, inspect, requeue after a fix, discard."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.api import api_client
from tests.support.drainer import settings_from, wait_until, write_config

TABLES = """
CREATE TABLE parent (id text PRIMARY KEY);
CREATE TABLE child (id text PRIMARY KEY, parent_id text NOT NULL REFERENCES parent (id), n int);
"""


async def _count(client: httpx.AsyncClient, **params: str) -> int:
    return len((await client.get("/dead-letters", params=params)).json()["items"])


async def test_requeue_a_dead_letter_after_creating_the_missing_row(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(TABLES)
    config = write_config(
        tmp_path / "d.toml", pg_dsn, prefix=redis_prefix, drainer={"max_attempts": 2}
    )
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    try:
        async with api_client(settings_from(config)) as (_drainer, client):
            sent = await producer.update(
                "child", {"id": "c1"}, {"n": 5}, partition_key="pay_1", request_id="req-1"
            )

            async def dead_lettered() -> bool:
                return await _count(client) == 1

            await wait_until(dead_lettered, timeout_s=20)
            listed = await client.get(
                "/dead-letters", params={"error_class": "no_row", "contents": "full"}
            )
            [letter] = listed.json()["items"]
            assert letter["source_stream"] == sent.stream and letter["source_id"] == sent.entry_id
            assert letter["attempts"] == 2 and "no row matches" in letter["error"]
            assert letter["global_id"] == "pay_1" and letter["request_id"] == "req-1"
            assert letter["operation"] == {
                "op": "update",
                "tag": "child_update",
                "table": "child",
                "key": {"id": "c1"},
            }
            one = await client.get(f"/dead-letters/{letter['id']}")
            assert one.status_code == 200 and one.json() == letter

            # the cause is fixed: the row the update needs now exists
            await conn.execute(
                "INSERT INTO parent VALUES ('p'); INSERT INTO child VALUES ('c1', 'p', 0)"
            )
            caplog.set_level(logging.INFO, logger="drainer.audit")
            resp = await client.post(
                f"/dead-letters/{letter['id']}/requeue", headers={"X-Operator": "alice"}
            )
            assert resp.status_code == 200, resp.text
            requeued = resp.json()
            assert requeued["stream"] == sent.stream and requeued["new_entry_id"] != sent.entry_id

            async def applied() -> bool:
                return bool(await conn.fetchval("SELECT n FROM child WHERE id = 'c1'") == 5)

            await wait_until(applied, timeout_s=20)
            assert (await client.get(f"/dead-letters/{letter['id']}")).status_code == 404
            again = await client.post(f"/dead-letters/{letter['id']}/requeue")
            assert again.status_code == 404
            [record] = [
                r
                for r in caplog.records
                if r.name == "drainer.audit" and "requeue" in r.getMessage()
            ][:1]
            assert (
                record.__dict__["operator"] == "alice" and record.__dict__["global_id"] == "pay_1"
            )
            assert record.__dict__["request_id"] == "req-1" and record.__dict__["at"]
    finally:
        await conn.close()


async def test_filter_page_requeue_by_filter_and_discard(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="drainer.audit")
    conn = await asyncpg.connect(pg_dsn)
    for schema in ("tenant_a", "tenant_b"):
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema};" + TABLES)
    prefix_a, prefix_b = f"{redis_prefix}a", f"{redis_prefix}b"
    config = write_config(
        tmp_path / "f.toml",
        pg_dsn,
        prefix="unused",
        tenants={
            "a": {"schema": "tenant_a", "redis_key_prefix": prefix_a},
            "b": {"schema": "tenant_b", "redis_key_prefix": prefix_b},
        },
    )
    pa = Producer(redis, StreamLayout("DRAINER_STREAM", 8, prefix_a))
    pb = Producer(redis, StreamLayout("DRAINER_STREAM", 8, prefix_b))
    try:
        async with api_client(settings_from(config)) as (_drainer, client):
            for i in range(3):  # no parent rows yet: foreign-key violations
                await pa.insert("child", {"id": f"c{i}", "parent_id": "p"}, partition_key=f"k{i}")
            await pa.insert("child", {"id": "x", "parent_id": "p", "nope": 1}, partition_key="k9")
            for i in range(2):
                await pb.insert("child", {"id": f"c{i}", "parent_id": "p"}, partition_key=f"k{i}")

            async def all_dead() -> bool:
                return await _count(client) == 6

            await wait_until(all_dead, timeout_s=20)
            assert await _count(client, tenant="b") == 2
            assert await _count(client, error_class="unknown_column") == 1
            assert await _count(client, error_class="constraint") == 5
            assert await _count(client, table="child") == 6
            assert await _count(client, table="parent") == 0
            assert await _count(client, since="2999-01-01T00:00:00Z") == 0
            assert await _count(client, until="2000-01-01T00:00:00") == 0
            assert await _count(client, since="2000-01-01T00:00:00Z", tenant="a") == 4

            seen, cursor = [], None
            while True:
                params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
                page = (await client.get("/dead-letters", params=params)).json()
                seen.extend((d["tenant"], d["id"]) for d in page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert [t for t, _ in seen] == ["a"] * 4 + ["b"] * 2 and len(set(seen)) == 6

            bad = [
                ("/dead-letters", {"cursor": "zz"}, 400, "bad cursor"),
                ("/dead-letters", {"tenant": "c"}, 404, "unknown tenant"),
                ("/dead-letters", {"since": "2020-01-02", "until": "2020-01-01"}, 400, "later"),
                ("/dead-letters", {"since": "yesterday"}, 422, "query since"),
                ("/dead-letters/12x", {}, 422, "not a stream entry id"),
                ("/dead-letters/1-1", {}, 404, "no dead letter"),
            ]
            for path, params, code, words in bad:
                resp = await client.get(path, params=params)
                assert resp.status_code == code and words in resp.json()["detail"], resp.text
            for body in ({}, {"all": False}):
                resp = await client.post("/dead-letters/requeue", json=body)
                assert resp.status_code == 400 and "no filter" in resp.json()["detail"]

            await conn.execute("INSERT INTO tenant_a.parent VALUES ('p')")
            resp = await client.post(
                "/dead-letters/requeue", json={"tenant": "a", "error_class": "constraint"}
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["count"] == 3 and not resp.json()["truncated"]

            async def children_applied() -> bool:
                return bool(await conn.fetchval("SELECT count(*) FROM tenant_a.child") == 3)

            await wait_until(children_applied, timeout_s=20)
            assert await _count(client, tenant="a") == 1 and await _count(client, tenant="b") == 2

            [odd] = (
                await client.get(
                    "/dead-letters", params={"error_class": "unknown_column", "contents": "full"}
                )
            ).json()["items"]
            gone = await client.delete(f"/dead-letters/{odd['id']}", params={"tenant": "a"})
            assert gone.status_code == 200 and gone.json() == {
                "id": odd["id"],
                "tenant": "a",
                "deleted": True,
                "released": [],  # nothing was parked behind it
            }
            # ids are per tenant stream: tenant b may hold a dead letter with the same id
            again = await client.delete(f"/dead-letters/{odd['id']}", params={"tenant": "a"})
            assert again.status_code == 404
            limited = await client.post("/dead-letters/requeue", json={"all": True, "limit": 1})
            assert limited.json()["count"] == 1 and limited.json()["truncated"]
        # every change an operator made left its audit record, who and what
        audited = [
            (r.action, r.outcome)  # type: ignore[attr-defined]
            for r in caplog.records
            if r.name == "drainer.audit" and r.action != "read"  # type: ignore[attr-defined]
        ]
        # three by filter, the discard, one more by filter with a limit: each its own record
        assert [a for a, _ in audited] == ["requeue"] * 3 + ["discard", "requeue"], audited
        assert ("discard", "deleted") in audited
        assert all(o.startswith("appended to ") for a, o in audited if a == "requeue")
    finally:
        await conn.close()
