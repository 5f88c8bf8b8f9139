"""Read-only views for operators: backlog and pending entries per partition, dead letters.

Everything here reads Redis (pipelined, one round trip per step) and decodes
entries the way the partition workers do, but changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.exceptions import ResponseError

from drainer.consumers.dead_letter import DeadLetter, DeadLetterStream
from drainer.consumers.entry import decode_entry
from drainer.consumers.group import RedisClient, hyperswitch_lock_key, parse_entry_id
from drainer.consumers.streams import StreamLayout
from drainer.db.errors import DrainerDbError
from drainer.db.models import ModelRegistry
from drainer.db.operations import Operation, OpKind

#: Pending entries of one partition looked at for ages and delivery counts.
PENDING_DETAIL_MAX = 1000
#: Dead letters read from Redis per round trip while filtering.
DEAD_LETTER_SCAN_PAGE = 200
#: Most dead letters one request scans before it hands back a cursor.
DEAD_LETTER_SCAN_MAX = 10_000
#: Largest value of either half of a stream entry id (unsigned 64-bit).
MAX_ID_PART = 2**64 - 1

#: ASCII digits only: ``\d`` would also take other scripts' digits, which Redis refuses.
_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")


def valid_entry_id(entry_id: str) -> bool:
    """True for a complete stream entry id ``<ms>-<seq>`` that Redis accepts."""
    if not _ENTRY_ID.fullmatch(entry_id):
        return False
    ms, seq = parse_entry_id(entry_id)
    return ms <= MAX_ID_PART and seq <= MAX_ID_PART


def id_time_ms(entry_id: str) -> int:
    """The millisecond timestamp Redis put in an auto-generated entry id."""
    return parse_entry_id(entry_id)[0]


def next_id(entry_id: str) -> str:
    """The smallest id after ``entry_id`` (an inclusive start that excludes it)."""
    ms, seq = parse_entry_id(entry_id)
    return f"{ms}-{seq + 1}" if seq < MAX_ID_PART else f"{ms + 1}-0"


async def redis_now_ms(redis: RedisClient) -> int:
    """Redis's clock, in which entry ids are written (avoids host clock skew)."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


# --------------------------------------------------------------------------- backlog


@dataclass(slots=True)
class PartitionPending:
    """One partition stream: its backlog and what its consumer group holds."""

    partition: int
    stream: str
    backlog: int
    pending: int
    consumers: dict[str, int] = field(default_factory=dict)
    oldest_entry_id: str | None = None
    oldest_entry_age_ms: int | None = None
    oldest_pending_id: str | None = None
    oldest_pending_age_ms: int | None = None
    oldest_pending_idle_ms: int | None = None
    max_deliveries: int = 0
    deliveries: int = 0
    #: Hyperswitch's Rust drainer holds the partition's lock key (we leave it alone).
    held_by_hyperswitch: bool = False
    #: The lock key's remaining time to live (PTTL); None when it has no expiry.
    hyperswitch_lock_ttl_ms: int | None = None


@dataclass(slots=True)
class TenantPending:
    """A tenant's partitions and its dead-letter count."""

    tenant: str
    partitions: list[PartitionPending]
    dead_letters: int

    @property
    def backlog(self) -> int:
        """Entries not yet applied (applied entries are deleted from the streams)."""
        return sum(p.backlog for p in self.partitions)

    @property
    def pending(self) -> int:
        """Entries delivered to a consumer and not yet acknowledged."""
        return sum(p.pending for p in self.partitions)


def _pending_summary(reply: Any) -> tuple[int, dict[str, int]]:
    if isinstance(reply, ResponseError):
        if "NOGROUP" in str(reply):
            return 0, {}  # a stream nobody has read yet
        raise reply
    if isinstance(reply, Exception):
        raise reply
    consumers = {str(c["name"]): int(c["pending"]) for c in reply.get("consumers") or []}
    return int(reply.get("pending") or 0), consumers


def _lock_ttl(part: PartitionPending, reply: Any) -> None:
    """PTTL of the lock key: -2 not held, -1 held without expiry, else ms left."""
    if isinstance(reply, Exception):
        raise reply
    ttl = int(reply)
    if ttl == -2:
        return
    part.held_by_hyperswitch = True
    part.hyperswitch_lock_ttl_ms = ttl if ttl >= 0 else None


def _length(reply: Any) -> int:
    if isinstance(reply, Exception):
        raise reply
    return int(reply or 0)


async def tenant_pending(
    redis: RedisClient,
    tenant: str,
    layout: StreamLayout,
    group: str,
    *,
    detail: bool = True,
) -> TenantPending:
    """Backlog and pending entries of every partition of a tenant.

    With ``detail`` False only lengths and pending counts are read (two commands
    per partition, one round trip): what the pending-entries gauge needs. With
    ``detail`` the same round trip also reads each partition's oldest entry and
    the PTTL of Hyperswitch's lock key (``-2``: not held).
    """
    streams = layout.all_streams()
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xlen(stream)
        pipe.xpending(stream, group)
        if detail:
            pipe.xrange(stream, count=1)
            pipe.pttl(hyperswitch_lock_key(stream))
    pipe.xlen(layout.dead_letter_key)
    replies = await pipe.execute(raise_on_error=False)
    step = 4 if detail else 2
    partitions: list[PartitionPending] = []
    for n, stream in enumerate(streams):
        base = n * step
        pending, consumers = _pending_summary(replies[base + 1])
        part = PartitionPending(n, stream, _length(replies[base]), pending, consumers)
        if detail and isinstance(replies[base + 2], list) and replies[base + 2]:
            part.oldest_entry_id = str(replies[base + 2][0][0])
        if detail:
            _lock_ttl(part, replies[base + 3])
        partitions.append(part)
    summary = TenantPending(tenant, partitions, _length(replies[-1]))
    if detail:
        await _add_pending_detail(redis, group, partitions)
    return summary


async def _add_pending_detail(
    redis: RedisClient, group: str, partitions: Sequence[PartitionPending]
) -> None:
    busy = [p for p in partitions if p.pending]
    now_ms = await redis_now_ms(redis)
    for part in partitions:
        if part.oldest_entry_id is not None:
            part.oldest_entry_age_ms = max(0, now_ms - id_time_ms(part.oldest_entry_id))
    if not busy:
        return
    pipe = redis.pipeline(transaction=False)
    for part in busy:
        pipe.xpending_range(
            part.stream, group, min="-", max="+", count=min(part.pending, PENDING_DETAIL_MAX)
        )
    for part, rows in zip(busy, await pipe.execute(), strict=True):
        if not rows:
            continue
        oldest = rows[0]
        part.oldest_pending_id = str(oldest["message_id"])
        part.oldest_pending_age_ms = max(0, now_ms - id_time_ms(part.oldest_pending_id))
        part.oldest_pending_idle_ms = int(oldest["time_since_delivered"])
        counts = [int(r["times_delivered"]) for r in rows]
        part.max_deliveries = max(counts)
        part.deliveries = sum(counts)


# --------------------------------------------------------------------------- pending entries


@dataclass(slots=True)
class OperationView:
    """What an entry would do: its operation, table and row key (as written, uncoerced)."""

    op: str
    tag: str
    table: str | None
    key: dict[str, Any] | None


@dataclass(slots=True)
class EntryView:
    """A stream entry decoded for an operator; ``error`` says why it cannot apply."""

    fields: dict[str, str] | None
    global_id: str | None = None
    request_id: str | None = None
    pushed_at: float | None = None
    traceparent: str | None = None
    operation: OperationView | None = None
    error: str | None = None


@dataclass(slots=True)
class PendingEntry:
    """One entry of a partition's pending-entries list."""

    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int
    age_ms: int
    view: EntryView


def describe_operation(operation: Operation, registry: ModelRegistry) -> OperationView:
    """The table an operation targets and the raw values of the row key it names."""
    try:
        model = registry.resolve(operation.tag, operation.kind)
    except DrainerDbError:
        return OperationView(operation.kind.value, operation.tag, None, None)
    source = operation.orig if operation.kind is OpKind.UPDATE else operation.values
    key = {name: source.get(name) for name in model.key_columns} if model.key_columns else None
    return OperationView(operation.kind.value, operation.tag, model.name, key)


def view_entry(fields: dict[str, str] | None, registry: ModelRegistry) -> EntryView:
    """Decode an entry's fields for display; never raises."""
    if fields is None:
        return EntryView(None, error="the entry was deleted from the stream while pending")
    view = EntryView(
        fields,
        global_id=fields.get("global_id"),
        request_id=fields.get("request_id"),
        traceparent=fields.get("traceparent") or None,
    )
    try:
        envelope = decode_entry(fields)
        view.operation = describe_operation(envelope.operation, registry)
    except DrainerDbError as exc:
        view.error = str(exc)
        return view
    except Exception as exc:  # a view is for display: one odd entry must not fail a page
        view.error = f"cannot decode the entry: {exc!r}"
        return view
    # JSON has no NaN or infinity: such a time is shown as unknown
    view.pushed_at = envelope.pushed_at if math.isfinite(envelope.pushed_at) else None
    if view.operation.table is None:
        view.error = f"unknown table {envelope.operation.tag!r}"
    return view


async def pending_entries(
    redis: RedisClient,
    stream: str,
    group: str,
    registry: ModelRegistry,
    *,
    consumer: str | None = None,
    min_idle_ms: int | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[PendingEntry], str | None]:
    """One page of a partition's pending entries, oldest first, and the next cursor."""
    try:
        rows = await redis.xpending_range(
            stream,
            group,
            min=f"({after}" if after else "-",
            max="+",
            count=limit,
            consumername=consumer,
            idle=min_idle_ms or None,
        )
    except ResponseError as exc:
        if "NOGROUP" in str(exc):
            return [], None
        raise
    if not rows:
        return [], None
    pipe = redis.pipeline(transaction=False)
    for row in rows:
        pipe.xrange(stream, min=row["message_id"], max=row["message_id"], count=1)
    found = await pipe.execute()
    now_ms = await redis_now_ms(redis)
    out = []
    for row, reply in zip(rows, found, strict=True):
        entry_id = str(row["message_id"])
        fields = dict(reply[0][1]) if reply and reply[0][1] else None
        out.append(
            PendingEntry(
                entry_id=entry_id,
                consumer=str(row["consumer"]),
                idle_ms=int(row["time_since_delivered"]),
                deliveries=int(row["times_delivered"]),
                age_ms=max(0, now_ms - id_time_ms(entry_id)),
                view=view_entry(fields, registry),
            )
        )
    cursor = out[-1].entry_id if len(rows) >= limit else None
    return out, cursor


# --------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an operator means; unset fields match everything."""

    table: str | None = None
    error_class: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def id_range(self) -> tuple[str, str]:
        """The dead-letter id range (ids carry the time they were written)."""
        start = f"{self.since_ms}-0" if self.since_ms is not None else "-"
        end = f"{self.until_ms}-{MAX_ID_PART}" if self.until_ms is not None else "+"
        return start, end

    def matches(self, letter: DeadLetter, view: EntryView) -> bool:
        """True when ``letter`` passes every set filter."""
        if self.error_class is not None and letter.error_class != self.error_class:
            return False
        if self.table is not None:
            op = view.operation
            if op is None or self.table not in (op.table, op.tag):
                return False
        return True


@dataclass(slots=True)
class DeadLetterPage:
    """Matching dead letters of one tenant and where to continue (None: the end)."""

    items: list[tuple[DeadLetter, EntryView]]
    next_start: str | None
    #: Dead letters read to find them (at most the scan's ``scan_max``).
    scanned: int = 0


async def scan_dead_letters(
    stream: DeadLetterStream,
    registry: ModelRegistry,
    flt: DeadLetterFilter,
    *,
    start: str | None = None,
    end: str | None = None,
    limit: int = 100,
    scan_max: int = DEAD_LETTER_SCAN_MAX,
) -> DeadLetterPage:
    """Matching dead letters from ``start`` (inclusive id), at most ``limit`` of them.

    Scans at most ``scan_max`` dead letters, so a filter that matches little
    cannot hold a request for long; ``next_start`` continues where it stopped.
    """
    low, high = flt.id_range()
    if start is not None and (low == "-" or parse_entry_id(start) > parse_entry_id(low)):
        low = start
    if end is not None:
        high = end
    items: list[tuple[DeadLetter, EntryView]] = []
    scanned = 0
    while scanned < scan_max:
        count = min(DEAD_LETTER_SCAN_PAGE, scan_max - scanned)  # never past scan_max
        page = await stream.page(start=low, end=high, count=count)
        for letter in page:
            scanned += 1
            low = next_id(letter.id)
            if flt.error_class is not None and letter.error_class != flt.error_class:
                continue  # decided without decoding the entry
            view = view_entry(letter.fields, registry)
            if flt.matches(letter, view):
                items.append((letter, view))
                if len(items) >= limit:
                    return DeadLetterPage(items, low, scanned)
        if len(page) < count:
            return DeadLetterPage(items, None, scanned)
    return DeadLetterPage(items, low, scanned)


async def last_dead_letter_id(redis: RedisClient, stream: DeadLetterStream) -> str | None:
    """The newest dead letter's id (a fixed end for a bulk operation), or None."""
    reply = await redis.xrevrange(stream.key, count=1)
    rows = cast(list[tuple[Any, Any]], reply or [])
    return str(rows[0][0]) if rows else None
