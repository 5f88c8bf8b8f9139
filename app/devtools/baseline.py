"""Hyperswitch's Rust drainer's algorithm, written plainly on asyncpg: the benchmark's baseline.

This is how Hyperswitch's Rust drainer works, transcribed without an ORM and
without the drainer's batching, so that ``drainer bench`` can compare the two
on the same data and servers:

* every partition stream is worked by its own task, guarded by a ``SET NX``
  lock key (Hyperswitch's Rust drainer's "stream availability" flag);
* entries are read with ``XRANGE`` in batches of ``max_read_count``;
* each entry is decoded and applied as one statement in autocommit, on a
  connection taken from a pool of five;
* then the stream is trimmed up to the last entry read (``XTRIM MINID`` plus
  ``XDEL`` of that last id, as Hyperswitch's Rust drainer does) and the lock released.

A statement that fails is logged and the entry dropped, as Hyperswitch's Rust drainer does; an
insert whose row exists counts as applied. There is no fence, no consumer
group and no dead-letter stream: none of that is part of Hyperswitch's Rust drainer's loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg
import orjson
from redis.asyncio import Redis

from drainer.consumers.streams import StreamLayout, prefixed

log = logging.getLogger("drainer.devtools.baseline")

#: The database pool size (Hyperswitch's drainer default ``pool_size = 5``).
POOL_SIZE = 5
#: Entries read per ``XRANGE`` (Hyperswitch's Rust drainer's ``max_read_count`` default).
MAX_READ_COUNT = 100
#: How long a partition lock lives if its holder dies.
LOCK_TTL_MS = 60_000
#: Wait before retrying a partition whose lock another worker holds.
LOCKED_RETRY_S = 0.01
UNIQUE_VIOLATION = "23505"

Converter = Callable[[Any], Any]


def _timestamp(value: Any) -> Any:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _timestamptz(value: Any) -> Any:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return orjson.dumps(value).decode()


def _identity(value: Any) -> Any:
    return value


#: How a JSON value becomes an asyncpg parameter, by PostgreSQL type name.
CONVERTERS: dict[str, Converter] = {
    "timestamp": _timestamp,
    "timestamptz": _timestamptz,
    "json": _json,
    "jsonb": _json,
    "bytea": lambda value: bytes(value) if isinstance(value, list) else value,
    "numeric": lambda value: Decimal(str(value)),
    "date": lambda value: datetime.fromisoformat(value).date(),
}


@dataclass(slots=True)
class BaselineStats:
    """What a baseline drain did."""

    applied: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class PerEntryDrainer:
    """Hyperswitch's Rust drainer's algorithm over one tenant's partition streams."""

    def __init__(
        self,
        redis: Redis,
        pool: asyncpg.Pool,
        layout: StreamLayout,
        types: dict[str, dict[str, str]],
        keys: dict[str, list[str]],
        *,
        max_read_count: int = MAX_READ_COUNT,
        consumer: str = "baseline",
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.layout = layout
        self.types = types
        self.keys = keys
        self.max_read_count = max_read_count
        self.consumer = consumer
        self.stats = BaselineStats()

    @staticmethod
    async def describe(
        pool: asyncpg.Pool, schema: str
    ) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
        """Each table's column types (PostgreSQL type names) and primary key, read once."""
        rows = await pool.fetch(
            """
            SELECT c.relname, a.attname, t.typname
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_type t ON t.oid = a.atttypid
            WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
            """,
            schema,
        )
        types: dict[str, dict[str, str]] = {}
        for row in rows:
            types.setdefault(row["relname"], {})[row["attname"]] = row["typname"]
        key_rows = await pool.fetch(
            """
            SELECT c.relname, a.attname
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
            WHERE n.nspname = $1 AND i.indisprimary
            ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)
            """,
            schema,
        )
        keys: dict[str, list[str]] = {}
        for row in key_rows:
            keys.setdefault(row["relname"], []).append(row["attname"])
        return types, keys

    async def drain(self) -> BaselineStats:
        """Work every partition until all are empty (the baseline in burst mode)."""
        async with asyncio.TaskGroup() as tasks:
            for partition in range(self.layout.num_partitions):
                tasks.create_task(self._partition(self.layout.stream_key(partition)))
        return self.stats

    async def _partition(self, stream: str) -> None:
        lock = prefixed(self.layout.prefix, f"drainer_lock:{stream}")
        while True:
            if not await self.redis.set(lock, self.consumer, nx=True, px=LOCK_TTL_MS):
                await asyncio.sleep(LOCKED_RETRY_S)
                continue
            try:
                entries = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    await self.redis.xrange(stream, count=self.max_read_count),
                )
                if not entries:
                    return
                for _entry_id, fields in entries:
                    await self._apply(fields)
                last = entries[-1][0]
                await self.redis.xtrim(stream, minid=last, approximate=False)
                await self.redis.xdel(stream, last)
                self.stats.batches += 1
            finally:
                await self.redis.delete(lock)

    async def _apply(self, fields: dict[Any, Any]) -> None:
        try:
            sql, args = self._statement(orjson.loads(fields[b"typed_sql"]))
        except (KeyError, ValueError, TypeError) as exc:
            self._failed(f"bad entry: {exc}")
            return
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(sql, *args)
        except asyncpg.PostgresError as exc:
            if getattr(exc, "sqlstate", None) == UNIQUE_VIOLATION:
                self.stats.applied += 1  # idempotent replay of an insert
                return
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        self.stats.applied += 1

    def _failed(self, message: str) -> None:
        self.stats.failed += 1
        if len(self.stats.errors) < 10:
            self.stats.errors.append(message)
        log.debug("baseline: %s", message)

    def _statement(self, doc: dict[str, Any]) -> tuple[str, list[Any]]:
        op = doc["db_op"]
        if op == "insert":
            body = doc["data"]["insertable"]
            table, row = body["table"], body["data"]
            columns = self.types[table]
            names = list(row)
            args = [self._convert(columns, name, row[name]) for name in names]
            marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
            return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", args
        if op == "update":
            body = doc["data"]["updatable"]
            table = body["table"].removesuffix("_update")
            columns = self.types[table]
            changes = {k: v for k, v in body["data"]["update_data"].items() if v is not None}
            orig = body["data"]["orig"]
            key = self._key(table, orig)
            sets = [f"{name} = ${i}" for i, name in enumerate(changes, 1)]
            where = [f"{name} = ${i}" for i, name in enumerate(key, len(changes) + 1)]
            args = [self._convert(columns, k, v) for k, v in changes.items()]
            args += [self._convert(columns, k, v) for k, v in key.items()]
            return f"UPDATE {table} SET {', '.join(sets)} WHERE {' AND '.join(where)}", args
        if op == "delete":
            body = doc["data"]["deletable"]
            table = body["table"]
            key = self._key(table, body["data"])
            where = [f"{name} = ${i}" for i, name in enumerate(key, 1)]
            args = [self._convert(self.types[table], k, v) for k, v in key.items()]
            return f"DELETE FROM {table} WHERE {' AND '.join(where)}", args
        raise ValueError(f"unknown db_op {json.dumps(op)}")

    def _key(self, table: str, data: dict[str, Any]) -> dict[str, Any]:
        return {name: data[name] for name in self.keys[table]}

    @staticmethod
    def _convert(columns: dict[str, str], name: str, value: Any) -> Any:
        if value is None:
            return None
        return CONVERTERS.get(columns[name], _identity)(value)
