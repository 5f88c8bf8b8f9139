"""Producer: the small async API applications use to append operations to the streams."""

from __future__ import annotations

import decimal
import enum
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from drainer.consumers.group import RedisClient
from drainer.consumers.streams import StreamLayout
from drainer.db.operations import Operation, OpKind

UPDATE_TAG_SUFFIX = "_update"


def _default(value: Any) -> Any:
    # serde's shapes: Vec<u8> is an array of ints, decimals and ids are strings
    if isinstance(value, bytes | bytearray | memoryview):
        return list(bytes(value))
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in typed_sql")


def dumps(document: Any) -> str:
    """Encode a ``typed_sql`` document the way the drainer expects to read it."""
    return orjson.dumps(
        document, default=_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
    ).decode()


def table_name(table: str | type[Any]) -> str:
    """The table tag of a table name or of an ORM-mapped class."""
    if isinstance(table, str):
        return table
    name = getattr(table, "__tablename__", None) or getattr(
        getattr(table, "__table__", None), "name", None
    )
    if not isinstance(name, str):
        raise TypeError(f"{table!r} is neither a table name nor an ORM-mapped class")
    return name


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an operation went."""

    stream: str
    entry_id: str


class Producer:
    """Append insert/update/delete operations in the Hyperswitch wire format."""

    def __init__(self, redis: RedisClient, layout: StreamLayout) -> None:
        self.redis = redis
        self.layout = layout

    def fields(
        self,
        operation: Operation,
        *,
        partition_key: str,
        request_id: str | None = None,
        traceparent: str | None = None,
        pushed_at: float | None = None,
    ) -> dict[str, str]:
        """The entry fields for one operation."""
        fields = {
            "request_id": request_id or uuid.uuid4().hex,
            "global_id": partition_key,
            "typed_sql": dumps(operation.to_wire()),
            "pushed_at": str(int(time.time() if pushed_at is None else pushed_at)),
        }
        if traceparent:
            fields["traceparent"] = traceparent
        return fields

    async def append(
        self,
        operation: Operation,
        *,
        partition_key: str,
        request_id: str | None = None,
        traceparent: str | None = None,
    ) -> Appended:
        """Append one operation to its partition stream."""
        stream = self.layout.stream_for(partition_key)
        fields = self.fields(
            operation, partition_key=partition_key, request_id=request_id, traceparent=traceparent
        )
        entry_id = await self.redis.xadd(stream, fields)  # type: ignore[arg-type]
        return Appended(stream, _text(entry_id))

    async def append_many(self, items: Iterable[tuple[Operation, str]]) -> list[Appended]:
        """Append many ``(operation, partition_key)`` pairs, pipelined, order kept per key."""
        pipe = self.redis.pipeline(transaction=False)
        streams: list[str] = []
        for operation, partition_key in items:
            stream = self.layout.stream_for(partition_key)
            streams.append(stream)
            pipe.xadd(stream, self.fields(operation, partition_key=partition_key))  # type: ignore[arg-type]
        ids = await pipe.execute()
        return [Appended(s, _text(i)) for s, i in zip(streams, ids, strict=True)]

    async def insert(
        self,
        table: str | type[Any],
        values: Mapping[str, Any],
        *,
        partition_key: str,
        request_id: str | None = None,
        traceparent: str | None = None,
    ) -> Appended:
        """Append an insert of ``values`` into ``table``."""
        return await self.append(
            insert_op(table, values),
            partition_key=partition_key,
            request_id=request_id,
            traceparent=traceparent,
        )

    async def update(
        self,
        table: str | type[Any],
        orig: Mapping[str, Any],
        changes: Mapping[str, Any],
        *,
        partition_key: str,
        request_id: str | None = None,
        traceparent: str | None = None,
    ) -> Appended:
        """Append an update of the row identified by ``orig`` (its key columns) with ``changes``."""
        return await self.append(
            update_op(table, orig, changes),
            partition_key=partition_key,
            request_id=request_id,
            traceparent=traceparent,
        )

    async def delete(
        self,
        table: str | type[Any],
        key: Mapping[str, Any],
        *,
        partition_key: str,
        request_id: str | None = None,
        traceparent: str | None = None,
    ) -> Appended:
        """Append a delete of the row identified by ``key``."""
        return await self.append(
            delete_op(table, key),
            partition_key=partition_key,
            request_id=request_id,
            traceparent=traceparent,
        )


def insert_op(table: str | type[Any], values: Mapping[str, Any]) -> Operation:
    """An insert operation (tag: the table name)."""
    return Operation(OpKind.INSERT, table_name(table), dict(values))


def update_op(
    table: str | type[Any], orig: Mapping[str, Any], changes: Mapping[str, Any]
) -> Operation:
    """An update operation, tagged ``<table>_update`` as Hyperswitch writes it."""
    return Operation(
        OpKind.UPDATE, table_name(table) + UPDATE_TAG_SUFFIX, dict(changes), dict(orig)
    )


def delete_op(table: str | type[Any], key: Mapping[str, Any]) -> Operation:
    """A delete operation (tag: the table name)."""
    return Operation(OpKind.DELETE, table_name(table), dict(key))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["Appended", "Producer", "delete_op", "dumps", "insert_op", "update_op"]
