"""A user's own producer's tagged-union updates, declared in ``[tables.tagged_updates]``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.settings import SettingsError
from tests.support.drainer import REDIS_URL, settings_from, write_config
from tests.support.run import drain_burst

ORDERS = """
CREATE TABLE orders (
    order_id text PRIMARY KEY,
    status text NOT NULL,
    cancel_reason text,
    note text,
    shipped_at timestamp,
    updated_by text NOT NULL DEFAULT 'app',
    modified_at timestamp NOT NULL
)
"""

TAGGED = {
    "orders": {
        "enum": "OrderUpdate",
        "stamps": ["modified_at"],
        "variants": {
            "StatusUpdate": {
                "fields": ["status!", "reason>cancel_reason"],
                "sets": {"updated_by": ""},
            },
            "Cancel": {"fields": ["note?"], "nulls": ["shipped_at"]},
        },
    }
}


async def test_declared_variants_are_applied_as_declared(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(ORDERS)
    config = write_config(
        tmp_path / "t.toml", pg_dsn, prefix=redis_prefix, tables={"tagged_updates": TAGGED}
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    shipped = "2026-05-01 08:00:00"
    row = {
        "order_id": "o1",
        "status": "new",
        "note": "leave at door",
        "shipped_at": shipped,
        "updated_by": "app",
        "modified_at": "2026-05-01 07:00:00",
    }
    try:
        await producer.append(insert_op("orders", row), partition_key="o1")
        await producer.append(insert_op("orders", {**row, "order_id": "o2"}), partition_key="o1")
        orig = {"order_id": "o1"}
        await producer.append(
            update_op("orders", orig, {"StatusUpdate": {"status": "held", "reason": "fraud"}}),
            partition_key="o1",
        )
        await producer.append(
            update_op("orders", {"order_id": "o2"}, {"Cancel": {"note": None}}), partition_key="o1"
        )
        # a flat changeset on the same table still works
        await producer.append(update_op("orders", orig, {"note": "flat"}), partition_key="o1")
        await producer.append(
            update_op("orders", orig, {"Ship": {"status": "x"}}), partition_key="o1"
        )
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        await drain_burst(settings_from(config))
        o1 = await conn.fetchrow("SELECT * FROM orders WHERE order_id = 'o1'")
        o2 = await conn.fetchrow("SELECT * FROM orders WHERE order_id = 'o2'")
        dead = await redis.xrange(f"{redis_prefix}:drainer:dead_letter")
    finally:
        await redis.aclose()
        await conn.close()
    assert o1 is not None and o2 is not None
    assert (o1["status"], o1["cancel_reason"], o1["updated_by"], o1["note"]) == (
        "held",
        "fraud",
        "",
        "flat",
    )
    assert o1["modified_at"] >= started - dt.timedelta(seconds=1)
    assert o1["shipped_at"] == dt.datetime(2026, 5, 1, 8, 0)
    # "note?" : its null sets NULL; "nulls" sets shipped_at to NULL; status untouched
    assert (o2["note"], o2["shipped_at"], o2["status"]) == (None, None, "new")
    assert [fields["dl_error"] for _id, fields in dead] == [
        "orders: unknown OrderUpdate variant 'Ship'"
    ]


@pytest.mark.parametrize(
    ("tagged", "message"),
    [
        (
            {"orders": {"variants": {"A": {"fields": ["bad name!"]}}}},
            "bad field spec 'bad name!'",
        ),
        ({"orders": {"variants": {"A": {"colour": 1}}}}, "unknown key 'colour'"),
        ({"orders": {"enum": "E"}}, "tables.tagged_updates.orders.variants: expected at least"),
    ],
)
def test_a_bad_declaration_stops_start_up_naming_it(
    tmp_path: Path, tagged: dict[str, object], message: str
) -> None:
    config = write_config(
        tmp_path / "bad.toml", "postgresql://x@127.0.0.1/x", prefix="p",
        tables={"tagged_updates": tagged},
    )  # fmt: skip
    with pytest.raises(SettingsError) as caught:
        settings_from(config)
    assert "tables.tagged_updates" in str(caught.value)
    assert message in str(caught.value)
