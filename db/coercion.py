"""Convert JSON-decoded values to what asyncpg binds for each column type.

Producers serialise rows with serde (Hyperswitch) or plain JSON, so a value
arrives as a JSON scalar, array or object and must become the Python value the
column's SQLAlchemy type expects. :func:`coercer_for` builds one function per
column at start-up; those functions run once per value on the hot path, so
each handles its common case first and does its checking only on the way to
an error. A coercer raises :class:`ValueError` with a short reason; the caller
names the table and column. ``None`` never reaches a coercer: it is SQL NULL.

Nothing is rounded or cut on the way in. Integer and numeric columns take a
number only when they can keep its exact value (``1.5`` is no integer, and
``numeric(20,4)`` refuses a fifth decimal); ``real`` and ``double precision``
take the nearest float, as PostgreSQL does with any text, but never an infinity
or a non-zero value that would become zero; ``inet``, ``cidr``, ``bit``,
``money`` and ``oid`` refuse what asyncpg or PostgreSQL would silently turn into
something else (``5`` as the address ``0.0.0.5``, ``'1111'`` cut to ``bit(3)``).
A ``float`` from :func:`db.operations.parse_operation` stands for its shortest
form, which is the text the producer wrote.
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
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
OID_RANGE = (0, 2**32 - 1)
#: Digits past which a number is out of every integer type's range (checked
#: before converting, so that 1E+999999999 never becomes a huge int).
MAX_INTEGER_DIGITS = 20

#: PostgreSQL's limits for an unconstrained numeric: digits before and after the
#: point. Past the first, asyncpg's binary encoding wraps (10**131072 is stored as 0).
NUMERIC_MAX_INTEGER_DIGITS = 131_072
NUMERIC_MAX_FRACTION_DIGITS = 16_383
#: money: cents in a signed 64-bit integer, two decimals (lc_monetary C or en_US).
MONEY_FRACTION_DIGITS = 2
MONEY_MAX = Decimal(2**63 - 1).scaleb(-MONEY_FRACTION_DIGITS)
#: Float(precision=...) at or below this many bits is PostgreSQL's real.
REAL_MAX_PRECISION = 24

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
_BITS = re.compile(r"[01]*")


def _show(value: Any) -> str:
    """A short rendering of ``value`` for an error message."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
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
    if isinstance(type_, postgresql.INET):
        return _inet
    if isinstance(type_, postgresql.CIDR):
        return _cidr
    if isinstance(type_, postgresql.BIT):
        return _bits(type_.length, type_.varying)
    if isinstance(type_, postgresql.MONEY):
        return _money
    if isinstance(type_, postgresql.OID):
        return _integer(OID_RANGE, "oid")
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
        is_real = isinstance(type_, sa.REAL) or (
            type_.precision is not None and type_.precision <= REAL_MAX_PRECISION
        )
        if type_.asdecimal:
            return _numeric(None, None)
        return _real if is_real else _float
    if isinstance(type_, sa.Numeric):
        # A Decimal binds exactly whatever the column's asdecimal says about reading.
        return _numeric(type_.precision, type_.scale)
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
            value = _as_int(value, sql_name)
        if low <= value <= high:
            return value
        raise ValueError(f"out of range for {sql_name}: {value}")

    return coerce_integer


def _as_int(value: Any, sql_name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {_show(value)}")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, float | Decimal):
        # through the written text: 1e23 is 10**23, not the float 99999999999999991611392
        number = _finite_decimal(value)
        if number is not None:
            if number and number.adjusted() >= MAX_INTEGER_DIGITS:
                raise ValueError(f"out of range for {sql_name}: {_show(value)}")
            if number == number.to_integral_value():
                return int(number)
    raise ValueError(f"expected an integer, got {_show(value)}")


def _finite_decimal(value: Any) -> Decimal | None:
    """The exact number ``value`` stands for, or None if it is not a finite number."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        # repr() is the shortest form, the producer's text: 0.1 stays 0.1.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        return Decimal(value.strip())
    return None


def _number(value: Any) -> Decimal:
    number = _finite_decimal(value)
    if number is None:
        raise ValueError(f"expected a number or numeric string, got {_show(value)}")
    return number


def _significant(number: Decimal) -> tuple[int, int]:
    """(digits before the point, exponent of the last non-zero digit) of a non-zero number."""
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    last = len(digits)
    while digits[last - 1] == 0:
        last -= 1
    return number.adjusted() + 1, exponent + len(digits) - last


def _numeric(precision: int | None, scale: int | None) -> Coercer:
    if precision is None:
        sql_name = "numeric"
        integer_digits, fraction_limit = NUMERIC_MAX_INTEGER_DIGITS, None
    else:
        scale = scale or 0
        sql_name = f"numeric({precision},{scale})"
        integer_digits, fraction_limit = precision - scale, scale

    def coerce_numeric(value: Any) -> Any:
        number = _number(value)
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if -exponent > NUMERIC_MAX_FRACTION_DIGITS:
            raise ValueError(
                f"{_show(value)} has more than {NUMERIC_MAX_FRACTION_DIGITS} digits after "
                "the decimal point, which PostgreSQL's numeric cannot hold"
            )
        if not number:
            return number
        before, last = _significant(number)
        if fraction_limit is not None and last < -fraction_limit:
            raise ValueError(
                f"{_show(value)} has {-last} digits after the decimal point; {sql_name} "
                f"keeps {fraction_limit}, so it would be rounded"
            )
        if before > integer_digits:
            raise ValueError(
                f"out of range for {sql_name}: {_show(value)} has {before} digits before "
                f"the decimal point, the column keeps {max(integer_digits, 0)}"
            )
        return number

    return coerce_numeric


def _float(value: Any) -> Any:
    if type(value) is float and math.isfinite(value):
        return value
    number = _number(value)
    result = float(number)
    if math.isinf(result):
        raise ValueError(f"out of range for a floating-point column: {_show(value)}")
    if result == 0.0 and number:
        raise ValueError(f"too small for a floating-point column (would be 0): {_show(value)}")
    return result


def _real(value: Any) -> Any:
    result = _float(value)
    try:
        single = struct.unpack("f", struct.pack("f", result))[0]
    except OverflowError:
        single = math.inf
    if math.isinf(single):
        raise ValueError(f"out of range for real: {_show(value)}")
    if single == 0.0 and result != 0.0:
        raise ValueError(f"too small for real (would be 0): {_show(value)}")
    return result


def _money(value: Any) -> Any:
    number = _number(value)
    if not number:
        return "0"
    _before, last = _significant(number)
    if last < -MONEY_FRACTION_DIGITS:
        raise ValueError(
            f"{_show(value)} has {-last} digits after the decimal point; money keeps "
            f"{MONEY_FRACTION_DIGITS}, so it would be rounded"
        )
    if number.copy_abs() > MONEY_MAX:  # copy_abs is exact; abs() rounds to 28 digits
        raise ValueError(f"out of range for money: {_show(value)}")
    # asyncpg sends money as text, which PostgreSQL reads in plain notation only
    return format(number, "f")


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


# --- bytes, uuids, addresses, bits, arrays -------------------------------------------------


_INT_ONLY = {int}


def _bytea(value: Any) -> Any:
    if isinstance(value, list):
        # bytes() takes True as 1 (and False as 0); serde never writes a bool for a
        # u8. Only bytes 0 and 1 can stand for one, so only then are item types checked.
        try:
            data = bytes(value)
        except (TypeError, ValueError):
            data = None
        if data is not None and (
            (0 not in data and 1 not in data) or set(map(type, value)) == _INT_ONLY
        ):
            return data
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


def _inet(value: Any) -> Any:
    if isinstance(value, str):
        try:
            address = ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError(f"expected an IP address (inet), got {_show(value)}") from None
        if "%" in value:
            # Python keeps an IPv6 zone index; asyncpg would drop it without a word
            raise ValueError(f"an IPv6 zone index cannot be stored in inet: {_show(value)}")
        return address
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ipaddress.ip_interface(value)
    # asyncpg would take the integer 5 as the address 0.0.0.5
    raise ValueError(f"expected an IP address string (inet), got {_show(value)}")


def _cidr(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ipaddress.ip_network(value)
        except ValueError as exc:
            raise ValueError(f"expected a network (cidr): {exc}") from None
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    raise ValueError(f"expected a network string (cidr), got {_show(value)}")


def _bits(length: int | None, varying: bool) -> Coercer:
    # PostgreSQL casts the bound value to the column's type, which cuts or
    # zero-pads a bit string without a word: the length is checked here.
    sql_name = f"bit varying({length})" if varying else f"bit({length})"

    def coerce_bits(value: Any) -> Any:
        if isinstance(value, str) and _BITS.fullmatch(value):
            size = len(value)
            if varying:
                if length is not None and size > length:
                    raise ValueError(
                        f"too long: {size} bits, the column allows {length} ({sql_name})"
                    )
            elif size != length:
                raise ValueError(f"expected exactly {length} bits ({sql_name}), got {size}")
            return value
        raise ValueError(f"expected a string of 0s and 1s ({sql_name}), got {_show(value)}")

    return coerce_bits


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
