"""What an insert's ``null`` becomes where it means the column's DEFAULT.

diesel writes ``DEFAULT`` for a ``None`` field of an insert. Sending ``DEFAULT``
per row would split batches by which columns each row leaves out, so a column
whose default is a constant (``false``, ``0``, ``'default'::character varying``)
gets that constant filled in, a column without a default gets NULL (which is
what DEFAULT gives it), and only a column whose default is computed (``now()``,
a sequence) is left out of the row so that the database computes it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from drainer.db.coercion import Coercer

#: Marker: leave the column out of the row, the database computes its default.
OMIT: Any = object()

_NULL = re.compile(r"NULL(?:::[\w\" .]+)?", re.IGNORECASE)
_BOOLEAN = re.compile(r"(true|false)", re.IGNORECASE)
_INTEGER = re.compile(r"\(?(-?[0-9]+)\)?(?:::[\w\" .]+)?")
_DECIMAL = re.compile(r"\(?(-?[0-9]+\.[0-9]+)\)?(?:::[\w\" .]+)?")
_STRING = re.compile(r"'((?:[^']|'')*)'(?:::[\w\" .\[\]]+)?")


def _server_default_text(column: sa.Column[Any]) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if isinstance(arg, str):
        return arg
    if isinstance(arg, sa.TextClause):
        return arg.text
    return ""  # a default we cannot read (FetchedValue, an expression): computed


def _constant(text: str, type_: Any) -> Any:
    """The constant a default's SQL text stands for, or OMIT if it is computed."""
    text = text.strip()
    if _NULL.fullmatch(text):
        return None
    if isinstance(type_, sa.Boolean) and (match := _BOOLEAN.fullmatch(text)):
        return match.group(1).lower() == "true"
    if isinstance(type_, sa.Integer) and (match := _INTEGER.fullmatch(text)):
        return int(match.group(1))
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        match = _INTEGER.fullmatch(text) or _DECIMAL.fullmatch(text)
        if match:
            return Decimal(match.group(1))
    if isinstance(type_, sa.String) and (match := _STRING.fullmatch(text)):
        return match.group(1).replace("''", "'")
    return OMIT


def insert_default(column: sa.Column[Any], coerce: Coercer) -> Any:
    """What a ``null`` for ``column`` becomes in an insert: a bindable constant,
    None (no default: NULL), or :data:`OMIT` (computed by the database)."""
    if column.default is not None or column.identity is not None or column.computed is not None:
        return OMIT  # SQLAlchemy (Python-side default) or the database computes it
    text = _server_default_text(column)
    if text is None:
        return None
    value = _constant(text, column.type)
    if value is OMIT or value is None:
        return value
    try:
        return coerce(value)
    except (ValueError, TypeError, ArithmeticError):
        return OMIT
