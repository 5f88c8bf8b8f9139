"""Response and request bodies of the operator API (they are its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drainer.escaping import escape_strings

#: Stream entry ids as Redis writes them: ``<milliseconds>-<sequence>``.
ENTRY_ID_PATTERN = r"^[0-9]+-[0-9]+$"
ENTRY_ID_EXAMPLE = "1767261600000-0"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _escape_bytes(cls, value: Any) -> Any:
        # entries hold what producers wrote: a byte that is not UTF-8 is shown as \xNN
        # (app.escaping); left as it is, pydantic's JSON mode would mangle or refuse it
        return escape_strings(value)


class Contents(StrEnum):
    """How much of an entry's contents a reading endpoint shows."""

    #: Everything taken from the entry's values is left out (see :class:`EntryView`).
    REDACTED = "redacted"
    #: The raw fields, the row key and the error messages too.
    FULL = "full"


class ErrorResponse(_Body):
    """Every 4xx and 5xx answer: what is wrong, in words."""

    detail: str = Field(description="What went wrong and, where possible, what to do.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For 422: each invalid parameter, as FastAPI reports it."
    )


# --------------------------------------------------------------------------- health


class Liveness(_Body):
    """``GET /health``."""

    status: Literal["ok", "stale"]
    consumer: str = Field(description="This process's consumer name in the groups.")
    uptime_s: float
    loop_age_s: float = Field(description="Seconds since a partition worker last went round.")
    stale_after_s: float = Field(description="Loop age beyond which the process is not live.")
    stopping: bool


class Check(_Body):
    """One dependency check."""

    ok: bool
    detail: str | None = None
    duration_ms: float | None = None


class TenantReadiness(_Body):
    """Readiness of one tenant."""

    tenant: str
    ready: bool
    redis: Check
    database: Check
    loop: Check
    last_error: str | None = Field(None, description="Last error a worker reported.")


class Readiness(_Body):
    """``GET /health/ready``: 200 when every tenant is ready, else 503."""

    ready: bool
    stopping: bool
    tenants: list[TenantReadiness]


class TenantDeepHealth(_Body):
    """The deep check of one tenant: probe writes and reads on Redis and the database."""

    tenant: str
    healthy: bool
    redis: Check
    database: Check


class DeepHealth(_Body):
    """``GET /health/deep``: 200 when every probe round-trips, else 503."""

    healthy: bool
    tenants: list[TenantDeepHealth]


# --------------------------------------------------------------------------- pending


class ConsumerPending(_Body):
    """Entries of a partition pending on one consumer."""

    name: str
    pending: int


class PartitionPending(_Body):
    """One partition stream."""

    partition: int
    stream: str
    backlog: int = Field(description="Entries not yet applied (the stream's length).")
    pending: int = Field(description="Entries delivered to a consumer and not acknowledged.")
    consumers: list[ConsumerPending]
    oldest_entry_id: str | None = None
    oldest_entry_age_ms: int | None = None
    oldest_pending_id: str | None = None
    oldest_pending_age_ms: int | None = Field(
        None, description="Now minus the time in the oldest pending entry's id."
    )
    oldest_pending_idle_ms: int | None = Field(
        None, description="Since the oldest pending entry was last delivered."
    )
    max_deliveries: int = Field(description="Most deliveries of any pending entry.")
    deliveries: int = Field(description="Deliveries summed over the pending entries.")
    held_by_hyperswitch: bool = Field(
        False,
        description="Hyperswitch's Rust drainer holds the partition's lock key "
        "(`<stream>_in_use`); with `honour_hyperswitch_lock` this drainer leaves it alone.",
    )
    hyperswitch_lock_ttl_ms: int | None = Field(
        None, description="The lock key's remaining time to live; null when not held or no expiry."
    )


class TenantPending(_Body):
    """One tenant's partitions."""

    tenant: str
    backlog: int
    pending: int
    dead_letters: int
    partitions: list[PartitionPending]


class PendingSummary(_Body):
    """``GET /pending``."""

    total: int = Field(
        description="Backlog over every partition and tenant: what autoscaling reads."
    )
    pending: int = Field(description="Delivered and not yet acknowledged, over all partitions.")
    dead_letters: int
    tenants: list[TenantPending]


class OperationView(_Body):
    """What an entry does."""

    op: str = Field(description="insert, update or delete.")
    tag: str = Field(description="The table tag as written by the producer.")
    table: str | None = Field(description="The mapped table; null when the tag is unknown.")
    key: dict[str, Any] | None = Field(
        description="The row key, as written (uncoerced); null when redacted."
    )


class EntryView(_Body):
    """An entry's decoded fields.

    Bytes that are not UTF-8 are shown as ``\\xNN``. Redacted (``contents=redacted``,
    the default of listings): ``fields``, ``operation.key`` and ``decode_error`` (and a
    dead letter's ``error``) are null, since they can hold or quote the row's values.
    """

    global_id: str | None = None
    request_id: str | None = None
    pushed_at: float | None = None
    traceparent: str | None = None
    operation: OperationView | None = None
    decode_error: str | None = Field(
        None, description="Why the entry cannot apply as it is, if it cannot; null when redacted."
    )
    fields: dict[str, str] | None = Field(
        None, description="The raw stream fields; null when redacted."
    )
    redacted: bool = Field(
        False, description="True when the entry's values were left out (contents=redacted)."
    )


class PendingEntry(EntryView):
    """One pending entry of a partition."""

    id: str
    consumer: str
    idle_ms: int
    deliveries: int
    age_ms: int


class PendingEntries(_Body):
    """``GET /pending/{stream}/entries``: one page, oldest first."""

    tenant: str
    stream: str
    partition: int
    items: list[PendingEntry]
    next_after: str | None = Field(description="Pass as ``after`` for the next page.")


class ReplayedEntry(_Body):
    """What the replay did with one entry."""

    id: str
    outcome: str = Field(
        description="applied, existed, skipped (already applied), dead (dead-lettered), "
        "retry (stays pending), not_tried, gone, acknowledged (no longer pending)."
    )
    previous_consumer: str | None = None
    attempt: int | None = None
    error: str | None = None
    error_class: str | None = None
    global_id: str | None = None
    request_id: str | None = None


class ReplayResult(_Body):
    """``POST /replay/{stream}/{entry_id}``."""

    tenant: str
    stream: str
    entry_id: str
    outcome: str = Field(description="The target entry's outcome (see entries).")
    message: str
    consumer: str = Field(description="The consumer the entries were claimed to.")
    watermark: str | None = Field(description="The partition's applied watermark after.")
    entries: list[ReplayedEntry] = Field(
        description="Every entry applied, in order: those pending before the target, then it."
    )


# --------------------------------------------------------------------------- dead letters


class DeadLetterOut(EntryView):
    """A dead letter: the original entry, where it came from and why it died."""

    id: str
    tenant: str
    source_stream: str
    source_id: str
    error_class: str
    error: str | None = Field(
        description="Why it was dead-lettered; null when redacted (it can quote a value)."
    )
    attempts: int
    dead_lettered_at: datetime
    warning: str | None = Field(
        None,
        description="What to know before requeueing it (stream_went_back: most likely applied "
        "already, requeue needs force).",
    )


class DeadLetterPage(_Body):
    """``GET /dead-letters``: one page."""

    items: list[DeadLetterOut]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null at the end. A page can hold "
        "fewer than ``limit`` items (even none) and still have one: the scan bound stopped it."
    )
    scanned: int = Field(
        description="Dead letters this request read to find the items (at most the server's "
        "dead_letter_scan_max)."
    )


class Released(_Body):
    """A parked dead letter put back on its partition stream when its head was released."""

    id: str
    new_entry_id: str


class Requeued(_Body):
    """A dead letter put back on its partition stream."""

    id: str
    tenant: str
    stream: str
    new_entry_id: str
    released: list[Released] = Field(
        default_factory=list,
        description="park_entity: the entries parked behind it, requeued after it, in order.",
    )


class RequeueFilter(_Body):
    """``POST /dead-letters/requeue``: which dead letters to put back."""

    tenant: str | None = None
    table: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    all: bool = Field(False, description="Required (true) when no other filter is given.")
    limit: int = Field(1000, ge=1, le=10_000, description="Most dead letters to requeue.")
    force: bool = Field(
        False,
        description="Also requeue stream_went_back dead letters (most likely applied already: "
        "requeueing applies them again). Without it, matching any is a 409.",
    )


class RequeueBatch(_Body):
    """What a requeue by filter did."""

    requeued: list[Requeued]
    count: int
    truncated: bool = Field(description="True when ``limit`` stopped it before the end.")


class Discarded(_Body):
    """``DELETE /dead-letters/{id}``."""

    id: str
    tenant: str
    deleted: bool
    released: list[Released] = Field(
        default_factory=list,
        description="park_entity: the entries parked behind it, requeued in order.",
    )


# --------------------------------------------------------------------------- traces


class TraceId(_Body):
    """``GET /trace-id``: where the drainer's spans of an entity are."""

    global_id: str
    trace_id: str = Field(description="32 hex digits: sha256(global_id)[0:16].")
    parent_span_id: str = Field(description="16 hex digits: sha256(global_id)[16:24].")
    traceparent: str = Field(description="A W3C traceparent that joins that trace.")


def entry_view_fields(view: Any, contents: Contents) -> dict[str, Any]:
    """The :class:`EntryView` fields of a :class:`consumers.inspect.EntryView`."""
    op = view.operation
    full = contents is Contents.FULL
    return {
        "global_id": view.global_id,
        "request_id": view.request_id,
        "pushed_at": view.pushed_at,
        "traceparent": view.traceparent,
        "operation": (
            OperationView(op=op.op, tag=op.tag, table=op.table, key=op.key if full else None)
            if op
            else None
        ),
        "decode_error": view.error if full else None,
        "fields": view.fields if full else None,
        "redacted": not full,
    }
