"""Convert JSON-decoded values to what asyncpg binds for each column type.

Producers serialise rows with serde (Hyperswitch) or plain JSON, so a value
arrives as a JSON scalar, array or object and must become the Python value the
column's SQLAlchemy type expects. :func:`coercer_for` builds one function per
column at start-up; those functions run once per value on the hot path, so
each handles its common case first and does its checking only on the way to
an error. A coercer raises :class:`ValueError` with a short reason; the caller
names the table and column. ``None`` never reaches a coercer: it is SQL NULL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

Coercer = Callable[[Any], Any]

#: Inclusive bounds of PostgreSQL's integer types.
SMALLINT_RANGE = (-(2**15), 2**15 - 1)
INTEGER_RANGE = (-(2**31), 2**31 - 1)
BIGINT_RANGE = (-(2**63), 2**63 - 1)

#: How much of an offending value an error message quotes.
SHOWN_VALUE_CHARS = 60
#: How many enum labels an error message lists before "... N in all".
SHOWN_ENUM_LABELS = 6

NANOS_PER_MICRO = 1_000
MAX_BYTE = 255
MAX_NANOSECOND = 999_999_999

# Rust's `time` crate serialises PrimitiveDateTime as this tuple, OffsetDateTime
# as the same plus the offset's hours, minutes and seconds.
DATETIME_TUPLE = "[year, day_of_year, hour, minute, second, nanosecond]"
DATE_TUPLE = "[year, day_of_year]"
TIME_TUPLE = "[hour, minute, second, nanosecond]"

_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def _show(value: Any) -> str:
    """A short rendering of ``value`` for an error message."""
    text = repr(value)
    if len(text) > SHOWN_VALUE_CHARS:
        return text[: SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _identity(value: Any) -> Any:
    return value


def coercer_for(column: sa.Column[Any]) -> Coercer:
    """The function converting a JSON-decoded value for ``column``'s type."""
    return coercer_for_type(column.type)


def coercer_for_type(type_: TypeEngine[Any]) -> Coercer:
    """The coercer for a SQLAlchemy type; unknown types pass values through."""
    # Order matters: Enum is a String, Float is a Numeric, and a TypeDecorator
    # binds values of its own Python domain, which only its author knows.
    if isinstance(type_, sa.TypeDecorator):
        return _identity
    if isinstance(type_, postgresql.DOMAIN):
        return coercer_for_type(type_.data_type)
    if isinstance(type_, sa.ARRAY):
        return _array(coercer_for_type(type_.item_type), type_.dimensions or 1)
    if isinstance(type_, sa.JSON):
        return _identity
    if isinstance(type_, sa.Enum):
        return _enum(type_.name or "enum", type_.enums)
    if isinstance(type_, sa.String):
        return _text(type_.length)
    if isinstance(type_, sa.Boolean):
        return _boolean
    if isinstance(type_, sa.SmallInteger):
        return _integer(SMALLINT_RANGE, "smallint")
    if isinstance(type_, sa.BigInteger):
        return _integer(BIGINT_RANGE, "bigint")
    if isinstance(type_, sa.Integer):
        return _integer(INTEGER_RANGE, "integer")
    if isinstance(type_, sa.Float):
        return _decimal if type_.asdecimal else _float
    if isinstance(type_, sa.Numeric):
        return _decimal if type_.asdecimal else _float
    if isinstance(type_, sa.DateTime):
        return _timestamptz if type_.timezone else _timestamp
    if isinstance(type_, sa.Date):
        return _date
    if isinstance(type_, sa.Time):
        return _timetz if type_.timezone else _time
    if isinstance(type_, sa.LargeBinary):
        return _bytea
    if isinstance(type_, sa.Uuid):
        return _uuid if type_.as_uuid else _uuid_text
    return _identity


# --- text and enums -------------------------------------------------------


def _text(length: int | None) -> Coercer:
    limit = length

    def coerce_text(value: Any) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("contains a NUL character, which PostgreSQL text cannot store")
            if limit is not None and len(value) > limit:
                raise ValueError(f"too long: {len(value)} characters, the column allows {limit}")
            return value
        raise ValueError(f"expected a string, got {_show(value)}")

    return coerce_text


def _enum(name: str, labels: list[str]) -> Coercer:
    allowed = frozenset(labels)
    shown = ", ".join(repr(label) for label in labels[:SHOWN_ENUM_LABELS])
    if len(labels) > SHOWN_ENUM_LABELS:
        shown += f", ... {len(labels)} in all"

    def coerce_enum(value: Any) -> Any:
        if isinstance(value, str):
            if value in allowed:
                return value
            raise ValueError(f"{_show(value)} is not a value of enum {name} (allowed: {shown})")
        raise ValueError(f"expected a string (a value of enum {name}), got {_show(value)}")

    return coerce_enum


# --- numbers and booleans -------------------------------------------------


def _integer(bounds: tuple[int, int], sql_name: str) -> Coercer:
    low, high = bounds

    def coerce_integer(value: Any) -> Any:
        if type(value) is not int:
            value = _as_int(value)
        if low <= value <= high:
            return value
        raise ValueError(f"out of range for {sql_name}: {value}")

    return coerce_integer


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {_show(value)}")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    raise ValueError(f"expected an integer, got {_show(value)}")


def _decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {_show(value)}")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    # str() of a float is its shortest round-tripping form: 0.1 stays 0.1.
    if isinstance(value, float) or (isinstance(value, str) and _NUMBER_TEXT.fullmatch(value)):
        number = Decimal(str(value).strip())
        if number.is_finite():
            return number
    raise ValueError(f"expected a number or numeric string, got {_show(value)}")


def _float(value: Any) -> Any:
    if type(value) is float:
        return value
    try:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            return float(value)
    except OverflowError:
        raise ValueError(f"out of range for a floating-point column: {_show(value)}") from None
    raise ValueError(f"expected a number or numeric string, got {_show(value)}")


def _boolean(value: Any) -> Any:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
    raise ValueError(f"expected true or false, got {_show(value)}")


# --- dates and times ------------------------------------------------------


def _parts(value: list[Any], sizes: tuple[int, ...], shape: str) -> list[int]:
    if len(value) not in sizes or not all(type(part) is int for part in value):
        raise ValueError(f"expected an ISO-8601 string or {shape}, got {_show(value)}")
    return value


def _date_from_parts(year: int, day_of_year: int) -> date:
    try:
        first = date(year, 1, 1)
    except ValueError:
        raise ValueError(f"year {year} is out of range") from None
    last = date(year, 12, 31).timetuple().tm_yday
    if not 1 <= day_of_year <= last:
        raise ValueError(f"day_of_year {day_of_year} is out of range for {year} (1-{last})")
    return first + timedelta(days=day_of_year - 1)


def _time_from_parts(hour: int, minute: int, second: int, nanosecond: int) -> time:
    if not 0 <= nanosecond <= MAX_NANOSECOND:
        raise ValueError(f"nanosecond {nanosecond} is out of range (0-{MAX_NANOSECOND})")
    return time(hour, minute, second, nanosecond // NANOS_PER_MICRO)


def _datetime(value: Any) -> datetime:
    """Parse any accepted timestamp form; the result may be naive or aware."""
    if isinstance(value, str):
        # fromisoformat takes `T` or space, `Z`/offsets, and since 3.11 truncates
        # fractions past microseconds, which covers the `time` crate's 9 digits.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO-8601 timestamp, got {_show(value)}") from None
    if isinstance(value, list):
        parts = _parts(value, (6, 9), DATETIME_TUPLE)
        day = _date_from_parts(parts[0], parts[1])
        moment = datetime.combine(day, _time_from_parts(*parts[2:6]))
        if len(parts) == 9:
            offset = timedelta(hours=parts[6], minutes=parts[7], seconds=parts[8])
            moment = moment.replace(tzinfo=timezone(offset))
        return moment
    if isinstance(value, datetime):
        return value
    raise ValueError(f"expected an ISO-8601 timestamp or {DATETIME_TUPLE}, got {_show(value)}")


def _timestamp(value: Any) -> Any:
    moment = _datetime(value)
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"out of range once converted to UTC: {_show(value)}") from None


def _timestamptz(value: Any) -> Any:
    moment = _datetime(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range once converted to UTC: {_show(value)}") from None


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"expected an ISO-8601 date (YYYY-MM-DD), got {_show(value)}"
            ) from None
    if isinstance(value, list):
        year, day_of_year = _parts(value, (2,), DATE_TUPLE)
        return _date_from_parts(year, day_of_year)
    if type(value) is date:
        return value
    raise ValueError(f"expected an ISO-8601 date or {DATE_TUPLE}, got {_show(value)}")


def _any_time(value: Any) -> time:
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a time (HH:MM:SS[.fff]), got {_show(value)}") from None
    if isinstance(value, list):
        return _time_from_parts(*_parts(value, (4,), TIME_TUPLE))
    if isinstance(value, time):
        return value
    raise ValueError(f"expected a time (HH:MM:SS[.fff]) or {TIME_TUPLE}, got {_show(value)}")


def _time(value: Any) -> Any:
    moment = _any_time(value)
    if moment.tzinfo is not None:
        # A time of day has no date to convert through, so an offset is ambiguous.
        raise ValueError(f"expected a time without a UTC offset, got {_show(value)}")
    return moment


def _timetz(value: Any) -> Any:
    moment = _any_time(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- bytes, uuids, arrays -------------------------------------------------


def _bytea(value: Any) -> Any:
    if isinstance(value, list):
        # bytes() would take True as 1; serde never writes a bool for a u8.
        if all(type(item) is int for item in value):
            try:
                return bytes(value)
            except ValueError:
                pass
        bad = next(item for item in value if type(item) is not int or not 0 <= item <= MAX_BYTE)
        raise ValueError(f"expected an array of integers 0-255 (bytea), found {_show(bad)}")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValueError(f"expected an array of integers 0-255 (bytea), got {_show(value)}")


def _uuid(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValueError(f"expected a UUID, got {_show(value)}") from None
    if isinstance(value, uuid.UUID):
        return value
    raise ValueError(f"expected a UUID string, got {_show(value)}")


def _uuid_text(value: Any) -> Any:
    return str(_uuid(value))


def _array(element: Coercer, dimensions: int) -> Coercer:
    inner = element if dimensions <= 1 else _array(element, dimensions - 1)

    def coerce_array(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"expected an array, got {_show(value)}")
        if inner is _identity:
            return value
        result: list[Any] = []
        for index, item in enumerate(value):
            if item is None:
                result.append(None)
                continue
            try:
                result.append(inner(item))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"element {index}: {exc}") from None
        return result

    return coerce_array
