"""Error classes of the database layer: each says whether retrying can help."""

from __future__ import annotations


class DrainerDbError(Exception):
    """Base class of every error the database layer raises on purpose."""

    #: Short, stable name recorded on dead letters and in metrics.
    error_class: str = "error"


class PermanentError(DrainerDbError):
    """Retrying the same entry can never succeed: dead-letter it."""

    error_class = "permanent"


class MalformedOperation(PermanentError):
    """The entry is not a valid operation (bad JSON, wrong shape, missing field)."""

    error_class = "malformed"


class UnknownTable(PermanentError):
    """The operation's table tag resolves to no mapped model."""

    error_class = "unknown_table"

    def __init__(self, tag: str, detail: str = "") -> None:
        self.tag = tag
        message = f"unknown table {tag!r}"
        super().__init__(f"{message}: {detail}" if detail else message)


class UnknownColumn(PermanentError):
    """The operation names a column the table does not have."""

    error_class = "unknown_column"

    def __init__(self, table: str, column: str) -> None:
        self.table = table
        self.column = column
        super().__init__(f"table {table!r} has no column {column!r}")


class CoercionError(PermanentError):
    """A value cannot be converted to its column's type."""

    error_class = "coercion"

    def __init__(self, table: str, column: str, reason: str) -> None:
        self.table = table
        self.column = column
        self.reason = reason
        super().__init__(f"{table}.{column}: {reason}")


class MissingKey(PermanentError):
    """An update or delete lacks a value for one of the table's key columns."""

    error_class = "missing_key"

    def __init__(self, table: str, detail: str) -> None:
        self.table = table
        super().__init__(f"{table}: {detail}")


class ConstraintViolation(PermanentError):
    """The database refused the row (foreign key, not null, check, too long, ...)."""

    error_class = "constraint"

    def __init__(self, table: str, sqlstate: str | None, message: str) -> None:
        self.table = table
        self.sqlstate = sqlstate
        super().__init__(f"{table}: [{sqlstate or '?'}] {message}")


class StreamWentBack(PermanentError):
    """A first delivery sits at or below the partition's watermark."""

    error_class = "stream_went_back"


class InternalError(PermanentError):
    """An unexpected exception while preparing or applying one entry (a value the
    driver cannot encode, a bug): the entry is dead-lettered rather than retried."""

    error_class = "internal"

    def __init__(self, where: str, exc: BaseException) -> None:
        self.exception = exc
        super().__init__(f"{where}: unexpected {type(exc).__name__}: {exc}")


class NoRowMatched(DrainerDbError):
    """An update or delete found no row; retried on later deliveries."""

    error_class = "no_row"

    def __init__(self, table: str, key: dict[str, object]) -> None:
        self.table = table
        self.key = key
        super().__init__(f"{table}: no row matches key {key!r}")


class TransientError(DrainerDbError):
    """The database could not be used right now; retry the whole batch later."""

    error_class = "transient"


class PartitionBusy(TransientError):
    """Another transaction holds the partition's watermark row: back off this partition.

    A replica still applying the partition, or a frozen one whose transaction
    PostgreSQL has not ended yet; the entries stay pending and are retried later.
    """

    error_class = "partition_busy"

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(
            f"partition {stream}: its watermark row is locked by another transaction "
            "(a replica still applying it, or a frozen one); backing off this partition"
        )
