"""Stream entries in the wire format: the fields every operation entry carries."""

from __future__ import annotations

import math
from dataclasses import dataclass

from drainer.consumers.group import RawEntry
from drainer.db.errors import MalformedOperation
from drainer.db.operations import Operation, parse_operation

REQUIRED_FIELDS = ("request_id", "global_id", "typed_sql", "pushed_at")


@dataclass(slots=True)
class Envelope:
    """A decoded entry: the operation plus the metadata around it."""

    request_id: str
    global_id: str
    pushed_at: float
    operation: Operation
    traceparent: str | None = None


def decode_entry(fields: dict[str, str]) -> Envelope:
    """Decode an entry's fields; raise :class:`MalformedOperation` naming what is wrong."""
    try:
        raw_pushed = fields["pushed_at"]
        typed_sql = fields["typed_sql"]
        request_id = fields["request_id"]
        global_id = fields["global_id"]
    except KeyError:
        missing = [name for name in REQUIRED_FIELDS if name not in fields]
        raise MalformedOperation(f"entry lacks field(s): {', '.join(missing)}") from None
    try:
        pushed_at = float(raw_pushed)
    except ValueError:
        pushed_at = math.nan
    # float() also reads "nan", "inf" and "1e999" (as infinity): no time at all
    if not math.isfinite(pushed_at):
        raise MalformedOperation(f"pushed_at must be unix seconds, got {raw_pushed[:40]!r}")
    return Envelope(
        request_id=request_id,
        global_id=global_id,
        pushed_at=pushed_at,
        operation=parse_operation(typed_sql),
        traceparent=fields.get("traceparent") or None,
    )


@dataclass(slots=True)
class StreamSource:
    """What a batch entry was read from: the stream entry and its envelope (None: malformed)."""

    raw: RawEntry
    envelope: Envelope | None
