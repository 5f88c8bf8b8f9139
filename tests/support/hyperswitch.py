"""Write entries exactly as Hyperswitch's router does, drain them, read the rows back.

Follows ``crates/diesel_models/src/kv.rs`` (juspay/hyperswitch af406737): the entry's
fields are ``typed_sql``, ``global_id``, ``request_id``, ``pushed_at``
(``TypedSql::to_field_value_pairs``); ``typed_sql`` is ``DBOperation`` with serde's
``tag = "db_op", content = "data"`` around ``Insertable`` / ``Updateable``, which are
``tag = "table", content = "data"`` with ``rename_all = "snake_case"``, and an update's
data is ``{"orig": <row struct>, "update_data": <update enum or *UpdateInternal>}``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tests.support.drainer import REDIS_URL, settings_from, write_config
from tests.support.run import drain_burst

#: Partitions of the test streams (few, so a burst drain is quick).
PARTITIONS = 8
STREAM_NAME = "DRAINER_STREAM"


def typed_sql_insert(tag: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``DBOperation::Insert { insertable: Insertable::<Tag>(row) }`` as serde writes it."""
    return {"db_op": "insert", "data": {"insertable": {"table": tag, "data": dict(row)}}}


def typed_sql_update(tag: str, orig: Mapping[str, Any], update_data: Any) -> dict[str, Any]:
    """``DBOperation::Update { updatable: Updateable::<Tag>(Mems { orig, update_data }) }``."""
    body = {"orig": dict(orig), "update_data": update_data}
    return {"db_op": "update", "data": {"updatable": {"table": tag, "data": body}}}


def entry_fields(global_id: str, typed_sql: Mapping[str, Any]) -> dict[str, str]:
    """The stream entry ``TypedSql::to_field_value_pairs`` writes (same field order)."""
    return {
        "typed_sql": json.dumps(typed_sql, separators=(",", ":")),
        "global_id": global_id,
        "request_id": uuid.uuid4().hex,
        "pushed_at": str(int(time.time())),
    }


def timestamp(value: dt.datetime) -> str:
    """``common_utils::custom_serde::iso8601`` of a ``PrimitiveDateTime`` (UTC):
    ``2026-06-01T10:00:00.000Z`` (time's well-known ISO 8601, 3 fraction digits)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def encryption(data: bytes) -> dict[str, list[int]]:
    """``common_utils::encryption::Encryption``: ``{"inner": [bytes]}``."""
    return {"inner": list(data)}


class HyperswitchDrain:
    """One test's streams (own key prefix) over one database holding Hyperswitch's schema."""

    def __init__(self, dsn: str, prefix: str, tmp_path: Path, **drainer: Any) -> None:
        self.dsn = dsn
        self.prefix = prefix
        self.config = write_config(
            tmp_path / f"hs_{uuid.uuid4().hex[:6]}.toml",
            dsn,
            prefix=prefix,
            drainer={"num_partitions": PARTITIONS, **drainer},
        )
        self.pending: list[tuple[str, dict[str, str]]] = []

    def stream_for(self, global_id: str) -> str:
        shard = zlib.crc32(global_id.encode()) % PARTITIONS
        return f"{self.prefix}:{{shard_{shard}}}_{STREAM_NAME}"

    def insert(self, global_id: str, tag: str, row: Mapping[str, Any]) -> None:
        """Queue an insert entry."""
        self.pending.append((global_id, entry_fields(global_id, typed_sql_insert(tag, row))))

    def update(self, global_id: str, tag: str, orig: Mapping[str, Any], update_data: Any) -> None:
        """Queue an update entry (``tag`` as the router writes it, e.g. ``refund_update``)."""
        typed = typed_sql_update(tag, orig, update_data)
        self.pending.append((global_id, entry_fields(global_id, typed)))

    async def drain(self) -> dict[str, int]:
        """Append the queued entries, in order, and drain until every stream is empty."""
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            for global_id, fields in self.pending:
                await client.xadd(self.stream_for(global_id), fields)  # type: ignore[arg-type]
        finally:
            await client.aclose()
        self.pending.clear()
        counters = await drain_burst(settings_from(self.config))
        return counters["t1"]

    async def dead_reasons(self) -> list[str]:
        """The ``dl_error`` of every dead letter, oldest first."""
        return [fields["dl_error"] for fields in await self.dead_letters()]

    async def dead_letters(self) -> list[dict[str, str]]:
        """Every dead letter of the tenant, oldest first."""
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            found = await client.xrange(f"{self.prefix}:drainer:dead_letter")
        finally:
            await client.aclose()
        return [fields for _id, fields in found]

    async def streams_empty(self) -> bool:
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            keys = [k async for k in client.scan_iter(match=f"{self.prefix}:{{shard_*")]
            return all([await client.xlen(k) == 0 for k in keys])
        finally:
            await client.aclose()

    async def row(self, table: str, **where: Any) -> dict[str, Any]:
        """The one row of ``table`` matching ``where``, as a dict."""
        rows = await self.rows(table, **where)
        assert len(rows) == 1, f"{table} {where}: {len(rows)} rows"
        return rows[0]

    async def rows(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of ``table`` matching ``where``; json and jsonb values decoded."""
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in ("json", "jsonb"):
                await conn.set_type_codec(
                    name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
                )
            clause = " AND ".join(f"{name} = ${i}" for i, name in enumerate(where, 1))
            found = await conn.fetch(
                f"SELECT * FROM {table}" + (f" WHERE {clause}" if clause else ""), *where.values()
            )
        finally:
            await conn.close()
        return [dict(r) for r in found]


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The columns whose value differs, with their new value."""
    return {name: after[name] for name in after if before.get(name) != after[name]}


def assert_stamped(value: Any, started: dt.datetime, ended: dt.datetime) -> None:
    """A ``common_utils::date_time::now()`` stamp (naive UTC) inside the run's window."""
    assert isinstance(value, dt.datetime) and value.tzinfo is None, value
    assert started - dt.timedelta(seconds=1) <= value <= ended + dt.timedelta(seconds=1), (
        value,
        started,
        ended,
    )


def utcnow() -> dt.datetime:
    """Naive UTC now, as ``PrimitiveDateTime`` values are stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def assert_only_changed(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    expected: Mapping[str, Any],
    *,
    stamps: Sequence[str],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    """``after`` is ``before`` with exactly ``expected`` set, and ``stamps`` stamped in
    ``window`` (a stamp is also allowed to equal what ``expected`` says, if anything)."""
    for column in stamps:
        assert_stamped(after[column], *window)
    diff = {k: v for k, v in changed(before, after).items() if k not in stamps}
    want = {k: v for k, v in expected.items() if k not in stamps and before.get(k) != v}
    assert diff == want
    for column, value in expected.items():
        if column not in stamps:
            assert after[column] == value, (column, after[column], value)
