"""The `typed_sql` operation: parsed from JSON into a plain, typed value.

The wire shape is Hyperswitch's ``DBOperation`` (serde, adjacently tagged)::

    {"db_op": "insert", "data": {"insertable": {"table": T, "data": {...}}}}
    {"db_op": "update", "data": {"updatable": {"table": T, "data": {"orig": {...},
                                                                  "update_data": {...}}}}}
    {"db_op": "delete", "data": {"deletable": {"table": T, "data": {...}}}}

Numbers are read exactly: an integer is an ``int`` (a ``Decimal`` past 64 bits,
which orjson cannot write back into a jsonb column), and a number with a fraction
or exponent is a ``float`` only when that float's shortest form is the text the
producer wrote (so ``Decimal(repr(value))`` is that text), otherwise a ``Decimal``
of the text. A key that appears twice in one object makes the entry malformed:
JSON readers disagree on which value wins, so no choice is safe.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from drainer.db.errors import MalformedOperation


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


@dataclass(slots=True)
class Operation:
    """One database operation as the producer wrote it (values not yet coerced).

    ``values`` is the inserted row (insert), the ``update_data`` (update) or the
    row identifying data (delete); ``orig`` is the update's original row. Not frozen:
    one is made per entry, and a frozen dataclass's ``__init__`` costs three times
    as much (each field set through ``object.__setattr__``); nothing changes one.
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
        return orjson.dumps(self.to_wire(), default=json_default)


def json_default(value: Any) -> Any:
    """orjson's ``default=`` hook for values :func:`parse_operation` yields: a
    ``Decimal`` (a JSON number read exactly) is written back as its own digits.

    An engine binding ``json``/``jsonb`` columns serialises with it
    (``orjson.dumps(value, default=json_default)``), so that such numbers reach
    PostgreSQL, whose jsonb keeps numbers exactly, as written.
    """
    if isinstance(value, Decimal) and value.is_finite():
        # str() of a finite Decimal is a JSON number: 1.50, 1E+3, -0, 0E-7
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


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


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


#: The integers orjson writes (i64 and u64); past them an integer is read as a Decimal.
_WRITABLE_INTS = range(-(2**63), 2**64)


def _integer(text: str) -> int | Decimal:
    number = int(text)
    return number if number in _WRITABLE_INTS else Decimal(text)


#: How much of a duplicated key an error message quotes.
SHOWN_KEY_CHARS = 60


def _decode(raw: str | bytes) -> Any:
    """The JSON document in ``raw``, numbers exact, duplicate keys refused."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson also refuses numbers past a double's range (1e400), which are
        # valid JSON and may fit a numeric column: the exact reader decides.
        return _decode_exact(raw, exc)
    # orjson reads every fraction as a float64 and keeps the last of duplicate
    # keys. When writing the result back gives the very bytes read, neither lost
    # anything: each float's shortest form is the text written, and no key was
    # dropped. Producers writing compact JSON (serde_json, orjson) pass this test,
    # which costs an encode and a compare, far less than the exact reader.
    try:
        written = orjson.dumps(doc)
    except TypeError:  # deeper than orjson writes
        return _decode_exact(raw)
    if written == (raw.encode() if isinstance(raw, str) else raw):
        return doc
    return _decode_exact(raw)


def _decode_exact(raw: str | bytes, orjson_error: orjson.JSONDecodeError | None = None) -> Any:
    """The stdlib reader: fractions as ``Decimal``, duplicate keys refused by name."""
    try:
        text = raw if isinstance(raw, str) else bytes(raw).decode()
        doc = json.loads(
            text,
            parse_float=Decimal,
            parse_int=_integer,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
        if orjson_error is not None:
            # orjson is the judge of everything but number range: a lone surrogate,
            # which the stdlib reads and PostgreSQL cannot store, is still invalid.
            json.dumps(doc, ensure_ascii=False, default=str).encode()
    except _DuplicateKey as exc:
        key = exc.key if len(exc.key) <= SHOWN_KEY_CHARS else exc.key[:SHOWN_KEY_CHARS] + "..."
        raise MalformedOperation(
            f"typed_sql has the key {key!r} twice in one object (JSON readers disagree "
            "on which value wins)"
        ) from None
    except RecursionError:
        raise MalformedOperation("typed_sql is nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeError, too many digits, NaN
        # where both readers refuse the syntax, orjson's message is the one users know
        use_orjson = orjson_error is not None and isinstance(exc, json.JSONDecodeError)
        raise MalformedOperation(
            f"typed_sql is not valid JSON: {orjson_error if use_orjson else exc}"
        ) from None
    return doc


def parse_operation(raw: str | bytes) -> Operation:
    """Parse ``typed_sql`` text; raise :class:`MalformedOperation` naming what is wrong."""
    doc = _decode(raw)
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
