"""Producer -> streams -> drainer -> rows, on declared models and on Hyperswitch's schema.

The Hyperswitch entries are full structs of ``crates/diesel_models/src/{address,
customers,reverse_lookup}.rs`` (juspay/hyperswitch af406737, v1: ``AddressNew``,
``Address``, ``AddressUpdateInternal``, ``CustomerNew``, ``ReverseLookupNew``), as the
router writes them, since the dialect refuses partial ones. Their values come in the
several forms the coercers take (bare byte arrays, ``time``'s tuple, ISO-8601 with an
offset) so that each form is seen end to end.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import create_async_engine

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.conftest import sqlalchemy_url
from tests.support.drainer import REDIS_URL, settings_from, stream_totals, write_config
from tests.support.models import Base, Charge, Wallet
from tests.support.run import drain_burst


async def _create_declared_tables(dsn: str) -> None:
    engine = create_async_engine(sqlalchemy_url(dsn))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


async def test_declared_models_insert_update_delete(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await _create_declared_tables(pg_dsn)
    config = write_config(
        tmp_path / "d.toml",
        pg_dsn,
        prefix=redis_prefix,
        tables={"models_module": "tests.support.models", "reflect": False},
    )
    settings = settings_from(config)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    created = dt.datetime(2026, 3, 1, 9, 30, 15, 123000)
    try:
        await producer.insert(
            Wallet, {"wallet_id": "w1", "owner": "ann", "note": "first"}, partition_key="w1"
        )
        await producer.insert(
            Charge,
            {
                "charge_id": "c1",
                "wallet_id": "w1",
                "amount": 1250,
                "fee": "0.3750",
                "status": "pending",
                "card": b"\x00\x01\xfe\xff",
                "meta": {"k": [1, 2]},
                "extra": None,
                "created_at": created,
                "seq": 1,
            },
            partition_key="w1",
        )
        # null leaves the column unchanged (diesel's AsChangeset rule)
        await producer.update(
            Charge,
            {"charge_id": "c1"},
            {"status": "charged", "fee": None, "meta": None, "seq": 2},
            partition_key="w1",
        )
        await producer.update(
            Wallet, {"wallet_id": "w1", "owner": "ann"}, {"note": "second"}, partition_key="w1"
        )
        await producer.insert(
            Charge,
            {
                "charge_id": "c2",
                "wallet_id": "w1",
                "amount": 5,
                "status": "pending",
                "created_at": "2026-03-01T10:00:00+02:00",
            },
            partition_key="w1",
        )
        await producer.delete(Charge, {"charge_id": "c2"}, partition_key="w1")
        counters = (await drain_burst(settings))["t1"]
    finally:
        await redis.aclose()

    assert counters.get("dead", 0) == 0
    assert counters["applied"] == 6
    assert await stream_totals(redis_prefix) == (0, 0)
    conn = await asyncpg.connect(pg_dsn)
    try:
        wallet = await conn.fetchrow("SELECT * FROM wallet")
        assert dict(wallet) == {"wallet_id": "w1", "owner": "ann", "note": "second"}
        rows = await conn.fetch("SELECT * FROM charge")
        assert len(rows) == 1  # c2 inserted then deleted
        c1 = rows[0]
        assert c1["status"] == "charged" and c1["seq"] == 2
        assert c1["fee"] == decimal.Decimal("0.3750")  # null in update_data: unchanged
        assert c1["meta"] == '{"k": [1, 2]}'
        assert c1["extra"] is None  # JSON None is SQL NULL, not 'null'
        assert bytes(c1["card"]) == b"\x00\x01\xfe\xff"
        assert c1["created_at"] == created
        assert c1["amount"] == 1250
    finally:
        await conn.close()


#: ``AddressNew`` (and, being the same fields, the ``Address`` row the update's ``orig`` is).
ADDRESS_NEW: dict[str, Any] = {
    "address_id": "add_1",
    "city": "Pune",
    "country": "IN",
    "line1": [76, 49],
    "line2": None,
    "line3": None,
    "state": None,
    "zip": [52, 49, 49],
    "first_name": None,
    "last_name": None,
    "phone_number": None,
    "country_code": None,
    "customer_id": None,
    "merchant_id": "m1",
    "payment_id": "pay_1",
    "created_at": "2026-01-01 10:00:00.123",
    "modified_at": "2026-01-01T10:00:00Z",
    "updated_by": "redis_kv",
    "email": None,
    "origin_zip": None,
}
#: ``AddressUpdateInternal``: the nulls leave their columns unchanged.
ADDRESS_UPDATE: dict[str, Any] = {
    "city": "Goa",
    "country": None,
    "line1": None,
    "line2": None,
    "line3": None,
    "state": None,
    "zip": None,
    "first_name": None,
    "last_name": None,
    "phone_number": None,
    "country_code": None,
    "modified_at": [2026, 2, 11, 0, 0, 500_000_000],
    "updated_by": "redis_kv",
    "email": None,
    "origin_zip": None,
}
#: ``CustomerNew`` (v1).
CUSTOMER_NEW: dict[str, Any] = {
    "customer_id": "cus_1",
    "merchant_id": "m1",
    "name": [65, 66],
    "email": None,
    "phone": None,
    "description": None,
    "phone_country_code": None,
    "metadata": None,
    "connector_customer": {"stripe": "cus_x"},
    "created_at": "2026-01-01T10:00:00.123456789+05:30",
    "modified_at": "2026-01-01 04:30:00",
    "address_id": None,
    "updated_by": None,
    "version": "v1",
    "tax_registration_id": None,
    "created_by": None,
    "last_modified_by": None,
}
#: ``ReverseLookupNew``.
REVERSE_LOOKUP_NEW = {
    "lookup_id": "lk_1",
    "sk_id": "sk",
    "pk_id": "pk",
    "source": "payment_attempt",
    "updated_by": "redis_kv",
}


async def test_hyperswitch_tables_reflected(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    config = write_config(tmp_path / "h.toml", hyperswitch_dsn, prefix=redis_prefix)
    settings = settings_from(config)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    gid = "mid_m1_pid_pay_1"
    try:
        await producer.insert("address", ADDRESS_NEW, partition_key=gid)
        await producer.update("address", ADDRESS_NEW, ADDRESS_UPDATE, partition_key=gid)
        await producer.insert("customer", CUSTOMER_NEW, partition_key=gid)
        await producer.insert("reverse_look_up", REVERSE_LOOKUP_NEW, partition_key=gid)
        await producer.insert(
            "payment_intent",
            {
                "payment_id": "pay_1",
                "merchant_id": "m1",
                "status": "requires_payment_method",
                "amount": 6540,
                "currency": "USD",
                "metadata": {"order": 7},
                "created_at": [2026, 32, 8, 15, 0, 0],
                "modified_at": "2026-02-01 08:15:00",
                "attempt_count": "1",
                "customer_details": [1, 2, 3],
            },
            partition_key=gid,
        )
        await producer.update(
            "payment_intent",
            {"payment_id": "pay_1", "merchant_id": "m1", "amount": 6540},
            {"status": "succeeded", "amount": 7000, "metadata": None, "attempt_count": 2},
            partition_key=gid,
        )
        await producer.delete("reverse_look_up", {"lookup_id": "lk_1"}, partition_key=gid)
        counters = (await drain_burst(settings))["t1"]
    finally:
        await redis.aclose()

    assert counters.get("dead", 0) == 0, counters
    assert counters["applied"] == 7
    conn = await asyncpg.connect(hyperswitch_dsn)
    try:
        address = await conn.fetchrow("SELECT * FROM address WHERE address_id = 'add_1'")
        assert address["city"] == "Goa"
        assert bytes(address["line1"]) == b"L1"  # null left it unchanged
        assert bytes(address["zip"]) == b"411"
        assert address["country"] == "IN"
        assert address["created_at"] == dt.datetime(2026, 1, 1, 10, 0, 0, 123000)
        assert address["modified_at"] == dt.datetime(2026, 1, 2, 11, 0, 0, 500000)
        assert address["payment_id"] == "pay_1" and address["updated_by"] == "redis_kv"
        customer = await conn.fetchrow("SELECT * FROM customers")
        assert (customer["customer_id"], customer["merchant_id"]) == ("cus_1", "m1")
        assert bytes(customer["name"]) == b"AB" and customer["email"] is None
        assert customer["created_at"] == dt.datetime(2026, 1, 1, 4, 30, 0, 123456)
        assert customer["connector_customer"] == '{"stripe": "cus_x"}'
        assert await conn.fetchval("SELECT count(*) FROM reverse_lookup") == 0
        intent = await conn.fetchrow("SELECT * FROM payment_intent")
        assert intent["status"] == "succeeded" and intent["amount"] == 7000
        assert intent["attempt_count"] == 2
        assert intent["metadata"] == '{"order": 7}'
        assert intent["created_at"] == dt.datetime(2026, 2, 1, 8, 15)
        assert bytes(intent["customer_details"]) == b"\x01\x02\x03"
    finally:
        await conn.close()
