"""Any unexpected exception while preparing or applying one entry ends as that entry's
dead letter (class ``internal``), never as a crash loop that stops its partition."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from tests.support.drainer import REDIS_URL, settings_from, write_config
from tests.support.run import drain_burst

DEPTH = 300  # orjson gives up past 255 levels


def _deep() -> object:
    value: object = 1
    for _ in range(DEPTH):
        value = [value]
    return value


async def test_deep_json_is_dead_lettered_and_the_entry_behind_it_applied(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE doc (id text PRIMARY KEY, body jsonb, n int)")
    config = write_config(
        tmp_path / "c.toml", pg_dsn, prefix=redis_prefix, drainer={"max_attempts": 3}
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    key = "doc_1"
    ops = [
        insert_op("doc", {"id": "a", "body": {"ok": 1}}),
        insert_op("doc", {"id": "b", "body": _deep()}),
        update_op("doc", {"id": "a"}, {"body": _deep(), "n": None}),
        update_op("doc", {"id": "a"}, {"n": 7}),
    ]
    try:
        for op in ops:
            # written with the stdlib: the producer's own encoder refuses such depth
            fields = {
                "request_id": "r",
                "global_id": key,
                "typed_sql": json.dumps(op.to_wire()),
                "pushed_at": "1780000000",
            }
            await redis.xadd(producer.layout.stream_for(key), fields)  # type: ignore[arg-type]
        counters = await drain_burst(settings_from(config))
        rows = {
            r["id"]: (json.loads(r["body"]), r["n"]) for r in await conn.fetch("SELECT * FROM doc")
        }
        dead = [f for _id, f in await redis.xrange(f"{redis_prefix}:drainer:dead_letter")]
        left = await redis.xlen(producer.layout.stream_for(key))
    finally:
        await redis.aclose()
        await conn.close()
    # the sentinel behind the bad entries is applied, in order; nothing stays pending
    assert rows == {"a": ({"ok": 1}, 7)}
    assert left == 0
    assert len(dead) == 2
    # the insert of "b" and the update of "a", in stream order: both fail in the JSON
    # encoder (too deep), an unexpected exception, so both are "internal"
    assert [letter["typed_sql"] for letter in dead] == [json.dumps(op.to_wire()) for op in ops[1:3]]
    for letter in dead:
        assert letter["dl_error_class"] == "internal", letter
        assert letter["dl_error"].startswith("doc: unexpected "), letter
    assert counters["t1"].get("worker_crashes", 0) == 0
