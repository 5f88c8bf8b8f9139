"""Hooks the consumer loop calls as it works, so telemetry can watch without being wired in.

The consumer side knows nothing of OpenTelemetry: a :class:`DrainObserver` is told
what happened (entries read, a batch committed or failed, an error) and the
application's telemetry turns that into metrics and spans. The base class does
nothing, so a tenant without telemetry pays one method call per batch.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

from drainer.db.operations import OpKind

if TYPE_CHECKING:
    from drainer.consumers.entry import StreamSource
    from drainer.consumers.group import ReadResult
    from drainer.db.executor import BatchEntry, BatchResult


class ErrorClass(enum.StrEnum):
    """Where the consumer loop failed (the ``class`` of the errors metric)."""

    READ = "read"  # Redis: reading, claiming, dead-lettering
    PARSE = "parse"  # an entry that is not a valid operation for the target tables
    QUERY = "query"  # the database: unreachable, refused a row, matched no row
    ACK = "ack"  # acknowledging a committed batch


#: Dead-letter error classes that mean the entry itself could not be understood.
PARSE_ERROR_CLASSES = frozenset(
    {"malformed", "unknown_table", "unknown_column", "coercion", "missing_key", "permanent"}
)


class DrainObserver:
    """Told what a tenant's partition workers do; every hook is a no-op here."""

    #: Whether the worker should time its Redis read and ack scripts for
    #: :meth:`stream_read_time` and :meth:`stream_ack_time` (off: no clock is read).
    times_redis: bool = False

    def stream_empty(self, stream: str) -> None:
        """A read that could take entries (not busy, not held by Hyperswitch) got none."""

    def stream_read_time(self, stream: str, duration_s: float) -> None:
        """The read script ran for ``duration_s`` (only called when ``times_redis``)."""

    def stream_ack_time(self, stream: str, duration_s: float) -> None:
        """The ack script (XACK+XDEL of a batch) ran (only called when ``times_redis``)."""

    def entries_read(self, stream: str, read: ReadResult) -> None:
        """A read returned entries (new, own or just claimed)."""

    def batch_done(
        self,
        stream: str,
        read: ReadResult,
        batch: Sequence[BatchEntry[StreamSource]],
        result: BatchResult[StreamSource],
        started_ns: int,
    ) -> None:
        """A batch's transaction committed (``started_ns``: wall clock when it began)."""

    def batch_failed(
        self,
        stream: str,
        batch: Sequence[BatchEntry[StreamSource]],
        error: BaseException,
        started_ns: int,
    ) -> None:
        """A batch's transaction could not commit; its entries stay pending."""

    def error(self, stream: str, error_class: ErrorClass) -> None:
        """The partition worker hit an error of ``error_class``."""

    def statement(self, kind: OpKind, table: str, duration_s: float, rows: int) -> None:
        """One SQL statement of a batch ran (``rows`` entries, e.g. a multi-row insert)."""


#: The shared do-nothing observer of tenants without telemetry.
NO_OBSERVER = DrainObserver()
