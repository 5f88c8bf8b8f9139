"""Bad input is dead-lettered with its reason; the good entries around it still apply, in order."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import create_async_engine

from drainer.consumers.dead_letter import DeadLetterStream
from drainer.consumers.producer import Producer, dumps, insert_op
from drainer.consumers.streams import StreamLayout
from drainer.main import open_drainer
from tests.conftest import sqlalchemy_url
from tests.support.drainer import REDIS_URL, settings_from, stream_totals, wait_until, write_config
from tests.support.models import Base, Charge, Wallet
from tests.support.run import drain_burst

NOW = dt.datetime(2026, 5, 1, 12, 0, 0)


async def _setup(tmp_path: Path, dsn: str, prefix: str, **drainer: int) -> Path:
    engine = create_async_engine(sqlalchemy_url(dsn))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    return write_config(
        tmp_path / "c.toml",
        dsn,
        prefix=prefix,
        drainer=drainer,
        tables={"models_module": "tests.support.models", "reflect": False},
    )


def _charge(charge_id: str, wallet_id: str = "w1", **extra: object) -> dict[str, object]:
    return {
        "charge_id": charge_id,
        "wallet_id": wallet_id,
        "amount": 1,
        "status": "pending",
        "created_at": NOW,
        **extra,
    }


async def test_poison_entries_are_dead_lettered_and_the_rest_applies(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    config = await _setup(tmp_path, pg_dsn, redis_prefix)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, layout)
    key = "wallet_w1"
    stream = layout.stream_for(key)

    def raw(typed_sql: str, **fields: str) -> dict[str, str]:
        return {
            "request_id": "r",
            "global_id": key,
            "typed_sql": typed_sql,
            "pushed_at": "1",
            **fields,
        }

    try:
        await producer.insert(Wallet, {"wallet_id": "w1", "owner": "o"}, partition_key=key)
        await redis.xadd(stream, raw('{"db_op": "insert", "data": '))  # bad JSON
        await producer.insert(Charge, _charge("c1"), partition_key=key)
        await redis.xadd(stream, {"global_id": key, "typed_sql": "{}"})  # missing fields
        await redis.xadd(stream, raw(dumps(insert_op("no_such_table", {"a": 1}).to_wire())))
        await redis.xadd(
            stream, raw(dumps(insert_op("charge", _charge("c2", colour="red")).to_wire()))
        )
        await redis.xadd(
            stream, raw(dumps(insert_op("charge", _charge("c3", amount="lots")).to_wire()))
        )
        await producer.insert(Charge, _charge("c4", wallet_id="w404"), partition_key=key)  # FK
        await producer.insert(
            Wallet, {"wallet_id": "w2", "owner": "x" * 40}, partition_key=key
        )  # too long
        await producer.update(Charge, {"charge_id": "c1"}, {"seq": 5}, partition_key=key)
        counters = (await drain_burst(settings_from(config)))["t1"]
        letters = await DeadLetterStream(redis, layout.dead_letter_key).all()
    finally:
        await redis.aclose()

    assert await stream_totals(redis_prefix) == (0, 0)
    reasons = [(d.error_class, d.error) for d in letters]
    assert [c for c, _ in reasons] == [
        "malformed",
        "malformed",
        "unknown_table",
        "unknown_column",
        "coercion",
        "constraint",
        "coercion",
    ], reasons
    assert "not valid JSON" in reasons[0][1]
    assert "request_id" in reasons[1][1] and "pushed_at" in reasons[1][1]
    assert "no_such_table" in reasons[2][1]
    assert "charge" in reasons[3][1] and "colour" in reasons[3][1]
    assert "charge.amount" in reasons[4][1]
    assert "foreign key" in reasons[5][1]
    assert "wallet.owner" in reasons[6][1]
    assert all(d.source_stream == stream and d.source_id for d in letters)
    assert letters[0].fields["typed_sql"] == '{"db_op": "insert", "data": '  # original kept
    assert counters["dead"] == 7 and counters["applied"] == 3

    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT string_agg(wallet_id, ',') FROM wallet") == "w1"
        rows = await conn.fetch("SELECT charge_id, seq FROM charge ORDER BY charge_id")
        assert [(r["charge_id"], r["seq"]) for r in rows] == [("c1", 5)]
    finally:
        await conn.close()


async def test_update_of_a_missing_row_retries_then_dead_letters_in_order(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    config = await _setup(tmp_path, pg_dsn, redis_prefix, max_attempts=3)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, layout)
    try:
        await producer.insert(Wallet, {"wallet_id": "w1", "owner": "o"}, partition_key="k")
        await producer.update(Wallet, {"wallet_id": "ghost"}, {"note": "x"}, partition_key="k")
        await producer.update(Wallet, {"wallet_id": "w1"}, {"note": "after"}, partition_key="k")
        await producer.delete(Wallet, {"wallet_id": "ghost2"}, partition_key="k")
        counters = (await drain_burst(settings_from(config)))["t1"]
        letters = await DeadLetterStream(redis, layout.dead_letter_key).all()
    finally:
        await redis.aclose()
    assert [(d.error_class, d.attempts) for d in letters] == [("no_row", 3), ("no_row", 3)]
    assert "ghost" in letters[0].error
    assert counters["retries"] == 4  # two retries for each missing row before giving up
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT note FROM wallet WHERE wallet_id = 'w1'") == "after"
    finally:
        await conn.close()


async def test_replayed_insert_of_an_existing_row_counts_as_applied(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    config = await _setup(tmp_path, pg_dsn, redis_prefix)
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("INSERT INTO wallet (wallet_id, owner) VALUES ('w1', 'already')")
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    try:
        await Producer(redis, layout).insert(
            Wallet, {"wallet_id": "w1", "owner": "o"}, partition_key="k"
        )
        counters = (await drain_burst(settings_from(config)))["t1"]
        assert await DeadLetterStream(redis, layout.dead_letter_key).length() == 0
        assert counters["applied"] == 1
        assert await conn.fetchval("SELECT owner FROM wallet") == "already"
    finally:
        await redis.aclose()
        await conn.close()


async def test_first_delivery_below_the_watermark_is_dead_lettered_not_dropped(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    config = await _setup(tmp_path, pg_dsn, redis_prefix)
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, layout)
    stream = layout.stream_for("k")
    try:
        await producer.insert(Wallet, {"wallet_id": "w1", "owner": "o"}, partition_key="k")
        await drain_burst(settings_from(config))
        # the stream is lost and recreated with ids below what was applied
        await redis.delete(stream)
        fields = producer.fields(
            insert_op(Wallet, {"wallet_id": "w9", "owner": "o"}), partition_key="k"
        )
        await redis.xadd(stream, fields, id="1-1")
        await drain_burst(settings_from(config))
        letters = await DeadLetterStream(redis, layout.dead_letter_key).all()
    finally:
        await redis.aclose()
    assert [(d.error_class, d.source_id) for d in letters] == [("stream_went_back", "1-1")]
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM wallet WHERE wallet_id = 'w9'") == 0
    finally:
        await conn.close()


async def test_a_running_drainer_survives_its_stream_being_deleted(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    config = await _setup(tmp_path, pg_dsn, redis_prefix)
    settings = settings_from(config)
    drainer = await open_drainer(settings)
    task = asyncio.create_task(drainer.run())
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    conn = await asyncpg.connect(pg_dsn)
    try:

        def wallets(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return bool(await conn.fetchval("SELECT count(*) FROM wallet") == n)

            return check

        await producer.insert(Wallet, {"wallet_id": "w1", "owner": "o"}, partition_key="k")
        await wait_until(wallets(1), timeout_s=30)
        await redis.delete(producer.layout.stream_for("k"))  # group gone with it
        await producer.insert(Wallet, {"wallet_id": "w2", "owner": "o"}, partition_key="k")
        await wait_until(wallets(2), timeout_s=30)
        assert not task.done()
    finally:
        drainer.request_stop("test over")
        await task
        await drainer.close()
        await redis.aclose()
        await conn.close()
