"""Hyperswitch's own config file and stream entries, drained by `drainer run --burst`.

The entries are written field by field the way Hyperswitch's router writes them
(not through our producer), under the stream names its config gives. The flat ones
are full structs: ``ReverseLookupNew`` and ``AddressNew``
(``crates/diesel_models/src/{reverse_lookup,address}.rs``, juspay/hyperswitch
af406737, v1), since the dialect refuses partial ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tests.conftest import ROOT
from tests.support.drainer import REDIS_URL

HYPERSWITCH_CONFIG = ROOT / "tests" / "fixtures" / "hyperswitch_drainer.toml"
PARTITIONS = 32  # the fixture's [drainer] num_partitions
STREAM_NAME = "drainer_stream"  # the fixture's [drainer] stream_name


def _entry(global_id: str, db_op: str, wrapper: str, table: str, data: Any) -> dict[str, str]:
    typed_sql = {"db_op": db_op, "data": {wrapper: {"table": table, "data": data}}}
    return {
        "request_id": f"req_{zlib.crc32(json.dumps(typed_sql).encode())}",
        "global_id": global_id,
        "typed_sql": json.dumps(typed_sql, separators=(",", ":")),
        "pushed_at": "1780000000",
    }


def _stream(prefix: str, global_id: str) -> str:
    shard = zlib.crc32(global_id.encode()) % PARTITIONS
    return f"{prefix}:{{shard_{shard}}}_{STREAM_NAME}"


def _intent(payment_id: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "merchant_id": "merchant_1",
        "status": "requires_confirmation",
        "amount": 6540,
        "currency": "USD",
        "amount_captured": None,
        "customer_id": "cus_1",
        "description": "Its my first payment request",
        "return_url": None,
        "metadata": {"udf1": "value1", "new_customer": "true"},
        "connector_id": None,
        "shipping_address_id": None,
        "billing_address_id": "add_1",
        "statement_descriptor_name": None,
        "statement_descriptor_suffix": None,
        "created_at": "2026-06-01T10:00:00.000Z",
        "modified_at": "2026-06-01T10:00:00.000Z",
        "last_synced": None,
        "setup_future_usage": None,
        "off_session": None,
        "client_secret": f"{payment_id}_secret_x",
        "active_attempt_id": f"{payment_id}_1",
        "business_country": "US",
        "business_label": "default",
        "order_details": None,
        "allowed_payment_method_types": None,
        "connector_metadata": None,
        "feature_metadata": None,
        "attempt_count": 1,
        "profile_id": "pro_1",
        "merchant_decision": None,
        "payment_link_id": None,
        "payment_confirm_source": None,
        "updated_by": "redis_kv",
        "surcharge_applicable": None,
        "request_incremental_authorization": "false",
        "incremental_authorization_allowed": None,
        "authorization_count": None,
        "session_expiry": "2026-06-01T10:15:00.000Z",
        "fingerprint_id": None,
        "request_external_three_ds_authentication": None,
        "charges": None,
        "frm_metadata": None,
        "customer_details": [101, 110, 99],
        "billing_details": None,
        "shipping_details": None,
        "organization_id": "org_1",
    }


async def test_burst_drains_hyperswitch_entries_with_hyperswitchs_config(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(hyperswitch_dsn)
    await conn.execute(
        "CREATE SCHEMA tenant_a;"
        " CREATE TABLE tenant_a.address (LIKE public.address INCLUDING ALL);"
        " CREATE TABLE tenant_a.reverse_lookup (LIKE public.reverse_lookup INCLUDING ALL);"
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    public, tenant_a = f"{redis_prefix}p", f"{redis_prefix}a"
    entries: list[tuple[str, dict[str, str]]] = []
    for n in range(40):
        gid = f"mid_merchant_1_pid_pay_{n}"
        intent = _intent(f"pay_{n}")
        entries.append((gid, _entry(gid, "insert", "insertable", "payment_intent", intent)))
        attempt = {
            "payment_id": f"pay_{n}",
            "merchant_id": "merchant_1",
            "attempt_id": f"pay_{n}_1",
            "status": "started",
            "amount": 6540,
            "currency": "USD",
            "confirm": False,
            "created_at": [2026, 152, 10, 0, 0, 0],
            "modified_at": [2026, 152, 10, 0, 0, 0],
            "payment_method": "card",
            "authentication_type": "no_three_ds",
            "connector_metadata": None,
            "updated_by": "redis_kv",
        }
        entries.append((gid, _entry(gid, "insert", "insertable", "payment_attempt", attempt)))
        lookup = {
            "lookup_id": f"pa_merchant_1_pay_{n}_1",
            "sk_id": f"pa_pay_{n}_1",
            "pk_id": gid,
            "source": "payment_attempt",
            "updated_by": "redis_kv",
        }
        entries.append((gid, _entry(gid, "insert", "insertable", "reverse_look_up", lookup)))
        update = {
            "orig": intent,
            "update_data": {
                "status": "succeeded",
                "amount_captured": 6540,
                "modified_at": "2026-06-01 10:00:05.5",
                "metadata": None,
                "updated_by": "redis_kv",
                "attempt_count": None,
            },
        }
        entries.append((gid, _entry(gid, "update", "updatable", "payment_intent_update", update)))
    for gid, fields in entries:
        await redis.xadd(_stream(public, gid), fields)
    tenant_gid = "mid_merchant_9_pid_pay_9"
    address = {  # AddressNew
        "address_id": "add_9",
        "city": "Pune",
        "country": "IN",
        "line1": {"inner": [76, 49]},
        "line2": None,
        "line3": None,
        "state": None,
        "zip": None,
        "first_name": None,
        "last_name": None,
        "phone_number": None,
        "country_code": None,
        "customer_id": None,
        "merchant_id": "merchant_9",
        "payment_id": "pay_9",
        "created_at": "2026-06-01 10:00:00.123",
        "modified_at": "2026-06-01 10:00:00.123",
        "updated_by": "redis_kv",
        "email": None,
        "origin_zip": None,
    }
    await redis.xadd(
        _stream(tenant_a, tenant_gid),
        _entry(tenant_gid, "insert", "insertable", "address", address),
    )
    env = {
        **os.environ,
        "DRAINER__MASTER_DATABASE__URL": hyperswitch_dsn,
        "DRAINER__REDIS__URL": REDIS_URL,
        "DRAINER__MULTITENANCY__TENANTS__PUBLIC__REDIS_KEY_PREFIX": public,
        "DRAINER__MULTITENANCY__TENANTS__TENANT_A__REDIS_KEY_PREFIX": tenant_a,
        "DRAINER__SERVER__ENABLED": "false",
    }
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "drainer",
                "run",
                "--config",
                str(HYPERSWITCH_CONFIG),
                "--burst",
            ],
            env=env,
            capture_output=True,
            timeout=120,
            cwd=ROOT,
        )
        log = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, log
        assert "secrets_management" in log  # the one warning about Hyperswitch-only sections
        for prefix in (public, tenant_a):
            for shard in range(PARTITIONS):
                assert await redis.xlen(f"{prefix}:{{shard_{shard}}}_{STREAM_NAME}") == 0
        assert await redis.xlen(f"{public}:drainer:dead_letter") == 0
        rows = await conn.fetch("SELECT * FROM payment_intent ORDER BY payment_id")
        assert len(rows) == 40
        first = next(r for r in rows if r["payment_id"] == "pay_0")
        assert first["status"] == "succeeded" and first["amount_captured"] == 6540
        assert first["metadata"] == '{"udf1": "value1", "new_customer": "true"}'  # null kept it
        assert first["modified_at"] == dt.datetime(2026, 6, 1, 10, 0, 5, 500000)
        assert bytes(first["customer_details"]) == b"enc"
        assert await conn.fetchval("SELECT count(*) FROM payment_attempt") == 40
        assert await conn.fetchval(
            "SELECT created_at FROM payment_attempt WHERE attempt_id = 'pay_3_1'"
        ) == dt.datetime(2026, 6, 1, 10, 0)
        assert await conn.fetchval("SELECT count(*) FROM reverse_lookup") == 40
        assert await conn.fetchval("SELECT city FROM tenant_a.address") == "Pune"
        assert await conn.fetchval("SELECT line1 FROM tenant_a.address") == b"L1"
        assert await conn.fetchval("SELECT count(*) FROM public.address") == 0
    finally:
        await redis.aclose()
        await conn.close()
