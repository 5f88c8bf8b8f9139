"""Database side of drainer: operations, models (reflected or declared), coercion, fenced execution.

Knows nothing of Redis: batches arrive as ordered entries with positions.
"""

from drainer.db.errors import (
    CoercionError,
    ConstraintViolation,
    DrainerDbError,
    InternalError,
    MalformedOperation,
    MissingKey,
    NoRowMatched,
    PermanentError,
    StreamWentBack,
    TransientError,
    UnknownColumn,
    UnknownTable,
)
from drainer.db.executor import BatchEntry, BatchResult, EntryResult, Executor, Outcome, execute_one
from drainer.db.fence import WATERMARK_TABLE, read_watermarks
from drainer.db.models import ModelRegistry, TableModel
from drainer.db.operations import Operation, OpKind, json_default, parse_operation

__all__ = [
    "WATERMARK_TABLE",
    "BatchEntry",
    "BatchResult",
    "CoercionError",
    "ConstraintViolation",
    "DrainerDbError",
    "EntryResult",
    "Executor",
    "InternalError",
    "MalformedOperation",
    "MissingKey",
    "ModelRegistry",
    "NoRowMatched",
    "OpKind",
    "Operation",
    "Outcome",
    "PermanentError",
    "StreamWentBack",
    "TableModel",
    "TransientError",
    "UnknownColumn",
    "UnknownTable",
    "execute_one",
    "json_default",
    "parse_operation",
    "read_watermarks",
]
