"""Thirty payment lives, written as Hyperswitch's router writes them, drained by
``drainer run --burst`` under Hyperswitch's own drainer config.

Three merchants, ``pay_0`` .. ``pay_9`` each (the same payment ids under every
merchant), customers ``cus_0`` .. ``cus_3`` under every merchant. Each life follows
juspay/hyperswitch af406737 (v1), ``crates/``:

- create (``router/src/core/payments/operations/payment_create.rs``): ``CustomerNew``
  once per customer and merchant (``storage_impl/src/customers.rs`` ``insert_customer``,
  ``updated_by`` from ``CustomerNew::update_storage_scheme``), ``AddressNew``
  (``router/src/db/address.rs`` ``insert_address_for_payments``), ``PaymentIntentNew``
  (``storage_impl/src/payments/payment_intent.rs``), ``ReverseLookupNew`` then
  ``PaymentAttemptNew`` (``storage_impl/src/payments/payment_attempt.rs``
  ``insert_payment_attempt``; ``net_amount`` = ``NetAmount::get_total_amount`` from
  ``hyperswitch_domain_models/src/payments/payment_attempt.rs`` ``to_storage_model``);
- confirm (``payment_confirm.rs`` ``update_trackers``): ``PaymentAttemptUpdate::
  ConfirmUpdate`` and ``PaymentIntentUpdate::Update(Box<PaymentIntentUpdateFields>)``;
- authorization and capture responses (``payment_response.rs``): ``ResponseUpdate`` on
  attempt and intent, the first with the ``pa_conn_trans_`` reverse lookup
  (``add_connector_txn_id_to_reverse_lookup``); ``CaptureUpdate`` (``payment_capture.rs``)
  between them;
- refund (``router/src/db/refund.rs`` ``insert_refund`` with its ``ref_ref_id_`` and
  ``ref_inter_ref_`` lookups, ``update_refund``): ``RefundNew``, ``RefundUpdate::Update``;
- ``CustomerUpdateInternal`` (merchant_a and merchant_c only) and
  ``AddressUpdateInternal``, flat (``customers.rs``, ``address.rs`` of ``diesel_models``).

Entries: ``diesel_models/src/kv.rs`` (tags, ``Mems { orig, update_data }``); each
update's ``orig`` is the row as the router holds it then (``apply_changeset`` of the
previous updates, wire form); partition keys and streams as
``storage_impl/src/redis/kv_store.rs`` and ``kv_router_store.rs`` make them (see
``lifecycle_fixtures``). The steps of different payments are interleaved.

Expected rows: the inserted values, then each update's columns per the ``From`` impls
(the per-table tests' ``VARIANTS``), ``net_amount`` recomputed from each step's ``orig``
(``populate_derived_fields``), ``modified_at`` of intents, attempts and refunds stamped
in the run's window; flat updates carry the router's ``modified_at``. One burst drains
everything, creates and updates together.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tests.conftest import ROOT
from tests.hyperswitch.lifecycle_fixtures import (
    CUSTOMER_UPDATERS,
    KEYS,
    MERCHANTS,
    PARTITIONS,
    STREAM_NAME,
    Ledger,
    all_lives,
    shard_stream,
)
from tests.support.drainer import REDIS_URL
from tests.support.hyperswitch import assert_stamped, utcnow

HYPERSWITCH_CONFIG = ROOT / "tests" / "fixtures" / "hyperswitch_drainer.toml"

#: What PostgreSQL stores for a null insert field whose column has a DEFAULT: none of
#: these lives' null fields has one in schema.sql (refund_reason's is DEFAULT NULL),
#: so each stays NULL. A fixture that sends null for a defaulted column adds it here.
INSERT_DEFAULTS: dict[str, dict[str, Any]] = {}


async def _rows(conn: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")]


def _mismatches(ledger: Ledger, table: str, found: list[dict[str, Any]], window: Any) -> list[str]:
    """Every difference between the stored rows of ``table`` and the ledger's."""
    problems = []
    stored = {tuple(row[c] for c in KEYS[table]): row for row in found}
    expected = {key: row for (t, key), row in ledger.rows.items() if t == table}
    if set(stored) != set(expected):
        problems.append(f"{table}: rows {sorted(set(stored) ^ set(expected))} differ")
    for key in set(stored) & set(expected):
        row, want = stored[key], expected[key]
        for column, value in row.items():
            if column == "modified_at" and (table, key) in ledger.stamped:
                assert_stamped(value, *window)
            elif value != want.get(column):  # a column the struct lacks must stay NULL
                problems.append(f"{table}{key}.{column}: {value!r} != {want.get(column)!r}")
        problems.extend(f"{table}: no column {c}" for c in want if c not in row)
    return problems


async def _drain(dsn: str, public: str, tenant_a: str) -> str:
    env = {
        **os.environ,
        "DRAINER__MASTER_DATABASE__URL": dsn,
        "DRAINER__REDIS__URL": REDIS_URL,
        "DRAINER__MULTITENANCY__TENANTS__PUBLIC__REDIS_KEY_PREFIX": public,
        "DRAINER__MULTITENANCY__TENANTS__TENANT_A__REDIS_KEY_PREFIX": tenant_a,
        "DRAINER__SERVER__ENABLED": "false",
    }
    drainer = Path(sys.executable).with_name("drainer")
    command = [str(drainer), "run", "--config", str(HYPERSWITCH_CONFIG), "--burst"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, timeout=60, cwd=ROOT
    )
    log = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, log[-4000:]
    return log


async def test_thirty_payment_lives_leave_the_rows_hyperswitchs_drainer_leaves(
    hyperswitch_dsn: str, redis_prefix: str
) -> None:
    ledger = all_lives(INSERT_DEFAULTS)
    public, tenant_a = f"{redis_prefix}p", f"{redis_prefix}a"
    conn = await asyncpg.connect(hyperswitch_dsn)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        # the config's second tenant (schema tenant_a) gets nothing of these lives
        await conn.execute(
            "CREATE SCHEMA tenant_a;"
            + "".join(f" CREATE TABLE tenant_a.{t} (LIKE public.{t} INCLUDING ALL);" for t in KEYS)
        )
        for global_id, fields in ledger.entries:
            await redis.xadd(shard_stream(public, global_id), fields)  # type: ignore[arg-type]
        started = utcnow()
        await _drain(hyperswitch_dsn, public, tenant_a)
        ended = utcnow()

        for prefix in (public, tenant_a):
            assert await redis.xrange(f"{prefix}:drainer:dead_letter") == []
            for shard in range(PARTITIONS):
                assert await redis.xlen(f"{prefix}:{{shard_{shard}}}_{STREAM_NAME}") == 0
        problems = []
        for table in KEYS:
            found = await _rows(conn, table)
            assert len(found) == ledger.count(table), table
            problems += _mismatches(ledger, table, found, (started, ended))
            assert await conn.fetchval(f"SELECT count(*) FROM tenant_a.{table}") == 0
        assert problems == [], "\n".join(problems[:40])

        # the same customer id under another merchant: merchant_a's updates left it alone
        customers = {
            (r["merchant_id"], r["customer_id"]): r for r in await _rows(conn, "customers")
        }
        assert "merchant_b" in MERCHANTS and "merchant_b" not in CUSTOMER_UPDATERS
        for k in range(4):
            a, b = customers["merchant_a", f"cus_{k}"], customers["merchant_b", f"cus_{k}"]
            assert a["description"].startswith("Renamed ") and a["updated_by"] == "redis_kv"
            assert b["description"] == "First customer" and b["default_payment_method_id"] is None
            assert b["modified_at"] == b["created_at"]
    finally:
        await redis.aclose()
        await conn.close()
