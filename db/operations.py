"""The `typed_sql` operation: parsed from JSON into a plain, typed value.

The wire shape is Hyperswitch's ``DBOperation`` (serde, adjacently tagged)::

    {"db_op": "insert", "data": {"insertable": {"table": T, "data": {...}}}}
    {"db_op": "update", "data": {"updatable": {"table": T, "data": {"orig": {...},
                                                                  "update_data": {...}}}}}
    {"db_op": "delete", "data": {"deletable": {"table": T, "data": {...}}}}
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from db.errors import MalformedOperation


class OpKind(enum.StrEnum):
    """The three operations the wire format carries."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


#: The key under ``data`` that wraps the payload of each operation kind.
WRAPPER_KEYS: dict[OpKind, str] = {
    OpKind.INSERT: "insertable",
    OpKind.UPDATE: "updatable",
    OpKind.DELETE: "deletable",
}


@dataclass(slots=True, frozen=True)
class Operation:
    """One database operation as the producer wrote it (values not yet coerced).

    ``values`` is the inserted row (insert), the ``update_data`` (update) or the
    row identifying data (delete); ``orig`` is the update's original row.
    """

    kind: OpKind
    tag: str
    values: dict[str, Any]
    orig: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready ``typed_sql`` object for this operation."""
        payload: Any
        if self.kind is OpKind.UPDATE:
            payload = {"orig": self.orig, "update_data": self.values}
        else:
            payload = self.values
        return {
            "db_op": self.kind.value,
            "data": {WRAPPER_KEYS[self.kind]: {"table": self.tag, "data": payload}},
        }

    def dumps(self) -> bytes:
        """Serialise to the ``typed_sql`` JSON bytes."""
        return orjson.dumps(self.to_wire())


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedOperation(f"typed_sql: {where} must be a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


#: db_op names to kinds (a dict lookup: calling the enum costs more, once per entry).
_KINDS: dict[str, OpKind] = {kind.value: kind for kind in OpKind}


def parse_operation(raw: str | bytes) -> Operation:
    """Parse ``typed_sql`` text; raise :class:`MalformedOperation` naming what is wrong."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedOperation(f"typed_sql is not valid JSON: {exc}") from None
    # Fast path, once per entry: a well-formed document passes these plain type
    # tests (orjson builds exact dicts and strs); anything else takes the checked
    # path below, which names what is wrong.
    if type(doc) is dict:
        op_name, data = doc.get("db_op"), doc.get("data")
        kind = _KINDS.get(op_name) if type(op_name) is str else None
        if kind is not None and type(data) is dict:
            inner = data.get(WRAPPER_KEYS[kind])
            if type(inner) is dict:
                tag, body = inner.get("table"), inner.get("data")
                if type(tag) is str and tag and type(body) is dict:
                    if kind is not OpKind.UPDATE:
                        return Operation(kind, tag, body)
                    orig, changes = body.get("orig"), body.get("update_data")
                    if type(orig) is dict and type(changes) is dict:
                        return Operation(kind, tag, changes, orig)
    return _parse_checked(doc)


def _parse_checked(doc: Any) -> Operation:
    top = _object(doc, "the document")
    op_name = top.get("db_op")
    try:
        kind = OpKind(op_name if isinstance(op_name, str) else "")
    except ValueError:
        raise MalformedOperation(
            f"typed_sql: db_op must be one of insert, update, delete; got {op_name!r}"
        ) from None
    wrapper = WRAPPER_KEYS[kind]
    data = _object(top.get("data"), "data")
    inner = _object(data.get(wrapper), f"data.{wrapper}")
    tag = inner.get("table")
    if not isinstance(tag, str) or not tag:
        raise MalformedOperation(f"typed_sql: data.{wrapper}.table must be a non-empty string")
    body = _object(inner.get("data"), f"data.{wrapper}.data")
    if kind is OpKind.UPDATE:
        orig = _object(body.get("orig"), f"data.{wrapper}.data.orig")
        raw_update = body.get("update_data")
        if isinstance(raw_update, str) and raw_update:
            # serde writes a unit variant of a tagged-union update as its bare name
            raw_update = {raw_update: {}}
        update_data = _object(raw_update, f"data.{wrapper}.data.update_data")
        return Operation(kind, tag, update_data, orig)
    return Operation(kind, tag, body)
