"""Coercion of JSON-decoded values per column type, checked against real PostgreSQL."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.types import TypeEngine

from drainer.db.coercion import coercer_for
from drainer.db.errors import CoercionError
from drainer.db.models import ModelRegistry
from tests.conftest import sqlalchemy_url

MOOD = pg.ENUM("happy", "sad", "ok", name="mood", create_type=False)
UUID_TEXT = "6f1c2b8e-3d4a-4f5b-9c6d-7e8f9a0b1c2d"


def coerce(type_: TypeEngine[Any], value: Any) -> Any:
    return coercer_for(sa.Column("c", type_))(value)


ACCEPTED: list[tuple[TypeEngine[Any], Any, Any]] = [
    # timestamp without time zone: naive, in UTC
    (pg.TIMESTAMP(), "2026-01-01 10:00:00.123", datetime(2026, 1, 1, 10, 0, 0, 123000)),
    (pg.TIMESTAMP(), "2026-01-01 10:00:00", datetime(2026, 1, 1, 10)),
    (pg.TIMESTAMP(), "2026-01-01T10:00:00", datetime(2026, 1, 1, 10)),
    (pg.TIMESTAMP(), "2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10)),
    (pg.TIMESTAMP(), "2026-01-01T15:30:00+05:30", datetime(2026, 1, 1, 10)),
    (pg.TIMESTAMP(), "2026-01-01T10:00:00.123456789", datetime(2026, 1, 1, 10, 0, 0, 123456)),
    (pg.TIMESTAMP(), [2026, 1, 10, 0, 0, 123456789], datetime(2026, 1, 1, 10, 0, 0, 123456)),
    (pg.TIMESTAMP(), [2024, 366, 23, 59, 59, 0], datetime(2024, 12, 31, 23, 59, 59)),
    (pg.TIMESTAMP(), [2026, 32, 10, 0, 0, 0, 1, 0, 0], datetime(2026, 2, 1, 9)),
    # timestamptz: aware, naive input taken as UTC
    (pg.TIMESTAMP(timezone=True), "2026-01-01 10:00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    (
        pg.TIMESTAMP(timezone=True),
        "2026-01-01T15:30:00+05:30",
        datetime(2026, 1, 1, 10, tzinfo=UTC),
    ),
    (pg.DATE(), "2026-03-01", date(2026, 3, 1)),
    (pg.DATE(), [2026, 60], date(2026, 3, 1)),
    (pg.DATE(), [2024, 60], date(2024, 2, 29)),
    (pg.TIME(), "10:15:30", time(10, 15, 30)),
    (pg.TIME(), "10:15:30.123456789", time(10, 15, 30, 123456)),
    (pg.TIME(), [10, 15, 30, 5000], time(10, 15, 30, 5)),
    (pg.BYTEA(), [0, 1, 255], b"\x00\x01\xff"),
    (pg.BYTEA(), [], b""),
    (MOOD, "happy", "happy"),
    (pg.VARCHAR(8), "12345678", "12345678"),
    (pg.TEXT(), "x" * 10_000, "x" * 10_000),
    (pg.CHAR(3), "abc", "abc"),
    (pg.SMALLINT(), 32767, 32767),
    (pg.SMALLINT(), -32768, -32768),
    (pg.INTEGER(), "42", 42),
    (pg.INTEGER(), " -7 ", -7),
    (pg.INTEGER(), 42.0, 42),
    (pg.BIGINT(), 2**63 - 1, 2**63 - 1),
    (pg.NUMERIC(12, 4), 0.1, Decimal("0.1")),
    (pg.NUMERIC(12, 4), 5, Decimal(5)),
    (pg.NUMERIC(12, 4), "12.3400", Decimal("12.3400")),
    (pg.NUMERIC(12, 4), "1e3", Decimal("1E+3")),
    (pg.REAL(), 1, 1.0),
    (pg.DOUBLE_PRECISION(), "2.5", 2.5),
    (pg.BOOLEAN(), True, True),
    (pg.BOOLEAN(), "false", False),
    (pg.UUID(), UUID_TEXT, uuid.UUID(UUID_TEXT)),
    (pg.UUID(as_uuid=False), UUID_TEXT.upper(), UUID_TEXT),
    (pg.ARRAY(pg.TEXT()), ["a", None, "c"], ["a", None, "c"]),
    (pg.ARRAY(MOOD), ["ok", "sad"], ["ok", "sad"]),
    (pg.ARRAY(pg.INTEGER(), dimensions=2), [[1, "2"], [None, 3]], [[1, 2], [None, 3]]),
    (pg.ARRAY(pg.BYTEA()), [[1, 2]], [b"\x01\x02"]),
    (pg.INTERVAL(), "P1D", "P1D"),  # no rule for the type: passed through
    # numbers read exactly (Decimal) and floats taken as their shortest form
    (pg.INTEGER(), Decimal("42"), 42),
    (pg.BIGINT(), Decimal("9007199254740993.0"), 9007199254740993),
    (pg.BIGINT(), 1e18, 10**18),
    (pg.NUMERIC(), 1e23, Decimal("1E+23")),  # not the float's 99999999999999991611392
    (pg.NUMERIC(), 10**40, Decimal(10**40)),
    (pg.NUMERIC(20, 4), Decimal("1234567890123456.1234"), Decimal("1234567890123456.1234")),
    (pg.NUMERIC(12, 4), "1.23450", Decimal("1.23450")),  # trailing zeros round nothing
    (pg.NUMERIC(6, 2), "-9999.99", Decimal("-9999.99")),
    (pg.DOUBLE_PRECISION(), Decimal("0.1"), 0.1),
    (pg.DOUBLE_PRECISION(), "1e308", 1e308),
    (pg.REAL(), Decimal("1.5"), 1.5),
    (pg.INET(), "10.0.0.1", ipaddress.ip_interface("10.0.0.1")),
    (pg.INET(), "2001:db8::1/64", ipaddress.ip_interface("2001:db8::1/64")),
    (pg.CIDR(), "10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
    (pg.BIT(3), "101", "101"),
    (pg.BIT(), "1", "1"),
    (pg.BIT(3, varying=True), "", ""),
    (pg.MONEY(), Decimal("12.3"), "12.3"),
    (pg.MONEY(), 5, "5"),
    (pg.MONEY(), "1e3", "1000"),
    (pg.OID(), 4294967295, 4294967295),
    (pg.ARRAY(pg.NUMERIC(6, 2)), ["1.5", 2], [Decimal("1.5"), Decimal(2)]),
    (pg.ARRAY(pg.INET()), ["::1"], [ipaddress.ip_interface("::1")]),
]


@pytest.mark.parametrize(("type_", "value", "expected"), ACCEPTED)
def test_accepted_forms(type_: TypeEngine[Any], value: Any, expected: Any) -> None:
    result = coerce(type_, value)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, datetime):
        assert result.tzinfo == expected.tzinfo


@pytest.mark.parametrize(
    "value", [{"a": [1, None]}, [1, 2], "text", 1.5, 0, True, {"nested": {"x": None}}]
)
@pytest.mark.parametrize("type_", [pg.JSON(), pg.JSONB(), sa.JSON()])
def test_json_values_pass_unchanged(type_: TypeEngine[Any], value: Any) -> None:
    assert coerce(type_, value) is value


REJECTED: list[tuple[TypeEngine[Any], Any, str]] = [
    (pg.TIMESTAMP(), "abc", "expected an ISO-8601 timestamp, got 'abc'"),
    (pg.TIMESTAMP(), "2026-13-01 10:00:00", "expected an ISO-8601 timestamp"),
    (pg.TIMESTAMP(), 1767261600, "expected an ISO-8601 timestamp or [year, day_of_year"),
    (pg.TIMESTAMP(), [2026, 367, 0, 0, 0, 0], "day_of_year 367 is out of range for 2026"),
    (pg.TIMESTAMP(), [2026, 1, 24, 0, 0, 0], "hour must be in 0..23"),
    (pg.TIMESTAMP(), [2026, 1, 0, 0, 0, 10**9], "nanosecond 1000000000 is out of range"),
    (pg.TIMESTAMP(), [2026, 1, 10], "expected an ISO-8601 string or [year, day_of_year"),
    (pg.TIMESTAMP(), [2026, 1, 10, 0, 0, True], "expected an ISO-8601 string or"),
    (pg.TIMESTAMP(timezone=True), {"at": 1}, "expected an ISO-8601 timestamp"),
    (pg.DATE(), "2026-02-30", "expected an ISO-8601 date (YYYY-MM-DD), got '2026-02-30'"),
    (pg.DATE(), "2026-03-01T00:00:00", "expected an ISO-8601 date"),
    (pg.DATE(), [2026], "[year, day_of_year]"),
    (pg.DATE(), 20260301, "expected an ISO-8601 date"),
    (pg.TIME(), "25:00:00", "expected a time (HH:MM:SS[.fff]), got '25:00:00'"),
    (pg.TIME(), "10:00:00+01:00", "expected a time without a UTC offset"),
    (pg.TIME(), [10, 15], "[hour, minute, second, nanosecond]"),
    (pg.BYTEA(), [256], "expected an array of integers 0-255 (bytea), found 256"),
    (pg.BYTEA(), [1, -1], "found -1"),
    (pg.BYTEA(), [True], "found True"),
    (pg.BYTEA(), [200, 7, False], "found False"),  # a bool among bytes 0/1 would pass bytes()
    (pg.BYTEA(), [9, 0, 1, True], "found True"),
    (pg.BYTEA(), [1.0], "found 1.0"),
    (pg.BYTEA(), "AAEC", "expected an array of integers 0-255 (bytea), got 'AAEC'"),
    (MOOD, "angry", "'angry' is not a value of enum mood (allowed: 'happy', 'sad', 'ok')"),
    (MOOD, 1, "expected a string (a value of enum mood), got 1"),
    (pg.VARCHAR(8), "123456789", "too long: 9 characters, the column allows 8"),
    (pg.VARCHAR(8), 42, "expected a string, got 42"),
    (pg.TEXT(), True, "expected a string, got True"),
    (pg.TEXT(), "a\x00b", "NUL character"),
    (pg.SMALLINT(), 32768, "out of range for smallint: 32768"),
    (pg.INTEGER(), 2**31, "out of range for integer: 2147483648"),
    (pg.BIGINT(), -(2**63) - 1, "out of range for bigint"),
    (pg.INTEGER(), 4.5, "expected an integer, got 4.5"),
    (pg.INTEGER(), True, "expected an integer, got True"),
    (pg.INTEGER(), "4.5", "expected an integer, got '4.5'"),
    (pg.INTEGER(), "4_2", "expected an integer"),
    (pg.INTEGER(), "abc", "expected an integer, got 'abc'"),
    (pg.NUMERIC(), "abc", "expected a number or numeric string, got 'abc'"),
    (pg.NUMERIC(), "NaN", "expected a number or numeric string"),
    (pg.NUMERIC(), False, "expected a number or numeric string, got False"),
    (pg.NUMERIC(), [1], "expected a number or numeric string"),
    (pg.REAL(), "x", "expected a number or numeric string, got 'x'"),
    (pg.DOUBLE_PRECISION(), False, "expected a number or numeric string, got False"),
    (pg.BOOLEAN(), 1, "expected true or false, got 1"),
    (pg.BOOLEAN(), "yes", "expected true or false, got 'yes'"),
    (pg.UUID(), "nope", "expected a UUID, got 'nope'"),
    (pg.UUID(), 123, "expected a UUID string, got 123"),
    (pg.ARRAY(pg.TEXT()), "a", "expected an array, got 'a'"),
    (pg.ARRAY(pg.TEXT()), ["a", 1], "element 1: expected a string, got 1"),
    (pg.ARRAY(MOOD), ["ok", "bad"], "element 1: 'bad' is not a value of enum mood"),
    # nothing rounded, cut, or turned into something else
    (pg.INTEGER(), Decimal("1.5"), "expected an integer, got 1.5"),
    (pg.BIGINT(), Decimal("9007199254740993.5"), "expected an integer, got 9007199254740993.5"),
    (pg.BIGINT(), Decimal("1E+999999999"), "out of range for bigint: 1E+999999999"),
    (pg.INTEGER(), float("inf"), "expected an integer, got inf"),
    (
        pg.NUMERIC(12, 4),
        Decimal("1.23456"),
        "1.23456 has 5 digits after the decimal point; numeric(12,4) keeps 4, so it would be",
    ),
    (pg.NUMERIC(12, 4), 0.00001, "1e-05 has 5 digits after the decimal point"),
    (
        pg.NUMERIC(6, 2),
        12345,
        "out of range for numeric(6,2): 12345 has 5 digits before the decimal point, "
        "the column keeps 4",
    ),
    (pg.NUMERIC(), "1e131072", "out of range for numeric: '1e131072' has 131073 digits"),
    (pg.NUMERIC(), "1e-16384", "more than 16383 digits after the decimal point"),
    (pg.NUMERIC(), float("nan"), "expected a number or numeric string, got nan"),
    (pg.NUMERIC(), Decimal("NaN"), "expected a number or numeric string, got NaN"),
    (pg.DOUBLE_PRECISION(), "1e999", "out of range for a floating-point column: '1e999'"),
    (pg.DOUBLE_PRECISION(), Decimal("1E+999"), "out of range for a floating-point column"),
    (pg.DOUBLE_PRECISION(), Decimal("1e-400"), "too small for a floating-point column"),
    (pg.DOUBLE_PRECISION(), float("inf"), "expected a number or numeric string, got inf"),
    (pg.REAL(), 1e39, "out of range for real: 1e+39"),
    (pg.REAL(), 1e-50, "too small for real (would be 0): 1e-50"),
    (pg.INET(), 5, "expected an IP address string (inet), got 5"),
    (pg.INET(), True, "expected an IP address string (inet), got True"),
    (pg.INET(), "10.0.0.256", "expected an IP address (inet), got '10.0.0.256'"),
    (pg.INET(), "fe80::1%eth0", "an IPv6 zone index cannot be stored in inet"),
    (pg.CIDR(), "10.0.0.1/8", "has host bits set"),
    (pg.CIDR(), 5, "expected a network string (cidr), got 5"),
    (pg.BIT(3), "1111", "expected exactly 3 bits (bit(3)), got 4"),
    (pg.BIT(3), "1", "expected exactly 3 bits (bit(3)), got 1"),
    (pg.BIT(3), "10a", "expected a string of 0s and 1s (bit(3)), got '10a'"),
    (pg.BIT(3), 5, "expected a string of 0s and 1s (bit(3)), got 5"),
    (pg.BIT(3, varying=True), "1111", "too long: 4 bits, the column allows 3 (bit varying(3))"),
    (pg.MONEY(), "1.005", "'1.005' has 3 digits after the decimal point; money keeps 2"),
    (pg.MONEY(), "$1.00", "expected a number or numeric string, got '$1.00'"),
    (pg.MONEY(), 10**18, "out of range for money"),
    (pg.OID(), 1.5, "expected an integer, got 1.5"),
    (pg.OID(), -1, "out of range for oid: -1"),
    (pg.OID(), True, "expected an integer, got True"),
]


@pytest.mark.parametrize(("type_", "value", "reason"), REJECTED)
def test_rejected_values_say_why(type_: TypeEngine[Any], value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        coerce(type_, value)


def test_enum_error_lists_a_few_labels_of_a_long_enum() -> None:
    currency = pg.ENUM(*(f"C{i:03d}" for i in range(160)), name="Currency")
    with pytest.raises(ValueError, match="not a value of enum Currency") as caught:
        coerce(currency, "XXX")
    assert "'C000', 'C001'" in str(caught.value)
    assert "160 in all" in str(caught.value)
    assert "C159" not in str(caught.value)


def _iso(moment: datetime) -> tuple[str, str]:
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    clock = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    return day, clock


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    extra_nanos=st.integers(0, 999),
    offset_minutes=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_any_timestamp_round_trips_through_every_accepted_form(
    moment: datetime, extra_nanos: int, offset_minutes: int
) -> None:
    to_timestamp = coercer_for(sa.Column("t", pg.TIMESTAMP()))
    nanos = moment.microsecond * 1000 + extra_nanos
    day, clock = _iso(moment)
    local = moment + timedelta(minutes=offset_minutes)
    local_day, local_clock = _iso(local)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    forms = [
        f"{day} {clock}.{nanos:09d}",
        f"{day}T{clock}.{moment.microsecond:06d}Z",
        f"{local_day}T{local_clock}.{moment.microsecond:06d}{sign}{hours:02d}:{minutes:02d}",
        [moment.year, moment.timetuple().tm_yday, moment.hour, moment.minute, moment.second, nanos],
    ]
    for form in forms:
        assert to_timestamp(form) == moment, form
    aware = coercer_for(sa.Column("t", pg.TIMESTAMP(timezone=True)))(forms[2])
    assert aware == moment.replace(tzinfo=UTC)
    assert aware.tzinfo is UTC


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_round_trip_from_a_serde_byte_array(data: bytes) -> None:
    assert coerce(pg.BYTEA(), orjson.loads(orjson.dumps(list(data)))) == data


# --- through the real database -------------------------------------------

EVERYTHING_DDL = [
    "CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok')",
    "CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)",
    """CREATE TABLE everything (
        id integer PRIMARY KEY, small smallint, big bigint, qty positive_int,
        amount numeric(12, 4), ratio real, score double precision, flag boolean,
        name varchar(8), body text, code char(3),
        created timestamp, seen timestamptz, day date, at time,
        blob bytea, feeling mood, feelings mood[],
        doc json, docb jsonb, docs jsonb[], tags text[], nums integer[], ref uuid
    )""",
]

# As a producer would write it: serde's Vec<u8>, time's tuple, strings for enums.
PAYLOAD = b"""{
  "id": 1, "small": "12", "big": 9007199254740993, "qty": "7",
  "amount": 12.3456, "ratio": 0.5, "score": "2.25", "flag": "true",
  "name": "widget", "body": "long text", "code": "abc",
  "created": "2026-01-01T10:00:00.123456789Z", "seen": "2026-01-01 15:30:00+05:30",
  "day": [2024, 60], "at": [10, 15, 30, 5000],
  "blob": [0, 1, 254, 255], "feeling": "happy", "feelings": ["ok", null, "sad"],
  "doc": {"a": [1, null]}, "docb": {"k": "v", "n": 1.5}, "docs": [{"x": 1}, {"y": [2]}],
  "tags": ["a", null, "c"], "nums": [1, "2", null], "ref": "6f1c2b8e-3d4a-4f5b-9c6d-7e8f9a0b1c2d"
}"""

EXPECTED = {
    "id": 1,
    "small": 12,
    "big": 9007199254740993,
    "qty": 7,
    "amount": Decimal("12.3456"),
    "ratio": 0.5,
    "score": 2.25,
    "flag": True,
    "name": "widget",
    "body": "long text",
    "code": "abc",
    "created": datetime(2026, 1, 1, 10, 0, 0, 123456),
    "seen": datetime(2026, 1, 1, 10, tzinfo=UTC),
    "day": date(2024, 2, 29),
    "at": time(10, 15, 30, 5),
    "blob": b"\x00\x01\xfe\xff",
    "feeling": "happy",
    "feelings": ["ok", None, "sad"],
    "doc": {"a": [1, None]},
    "docb": {"k": "v", "n": 1.5},
    "docs": [{"x": 1}, {"y": [2]}],
    "tags": ["a", None, "c"],
    "nums": [1, 2, None],
    "ref": uuid.UUID(UUID_TEXT),
}


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(pg_dsn))
    async with engine.begin() as conn:
        for statement in EVERYTHING_DDL:
            await conn.execute(sa.text(statement))
    yield engine
    await engine.dispose()


async def test_coerced_values_round_trip_through_postgresql(engine: AsyncEngine) -> None:
    model = (await ModelRegistry.reflect(engine)).tables["everything"]
    row = model.coerce_row(orjson.loads(PAYLOAD))
    assert row == EXPECTED
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(sa.insert(model.table).values(row))
    async with AsyncSession(engine) as session:
        stored = (await session.execute(sa.select(model.table))).mappings().one()
    assert dict(stored) == EXPECTED


async def test_json_none_is_sql_null_not_json_null(engine: AsyncEngine) -> None:
    registry = await ModelRegistry.reflect(engine, null_sets_null=["everything"])
    model = registry.tables["everything"]
    async with AsyncSession(engine) as session, session.begin():
        # Core insert, ORM insert, and an update setting the column to null.
        await session.execute(
            sa.insert(model.table).values(model.coerce_row({"id": 1, "doc": None, "docb": None}))
        )
        assert model.model is not None
        session.add(model.model(**model.coerce_row({"id": 2, "doc": None, "docb": None})))
        await session.execute(
            sa.insert(model.table).values(model.coerce_row({"id": 3, "doc": [1], "docb": [1]}))
        )
        await session.flush()
        changes = model.coerce_changes({"doc": None, "docb": None})
        await session.execute(sa.update(model.table).where(model.table.c.id == 3).values(changes))
    async with AsyncSession(engine) as session:
        result = await session.execute(
            sa.text("SELECT id, doc IS NULL, docb IS NULL FROM everything ORDER BY id")
        )
        assert result.all() == [(1, True, True), (2, True, True), (3, True, True)]


async def test_a_bad_value_names_table_column_and_reason(engine: AsyncEngine) -> None:
    model = (await ModelRegistry.reflect(engine)).tables["everything"]
    cases = {
        "name": ("x" * 9, "too long: 9 characters, the column allows 8"),
        "code": ("abcd", "too long: 4 characters, the column allows 3"),
        "feeling": ("angry", "'angry' is not a value of enum mood"),
        "qty": ("seven", "expected an integer, got 'seven'"),
        "blob": ("AAEC", "expected an array of integers 0-255 (bytea)"),
    }
    for column, (value, reason) in cases.items():
        with pytest.raises(CoercionError) as caught:
            model.coerce_row({"id": 1, column: value})
        assert (caught.value.table, caught.value.column) == ("everything", column)
        assert str(caught.value).startswith(f"everything.{column}: {reason}")
        assert caught.value.error_class == "coercion"


def test_aware_offsets_are_converted_not_dropped() -> None:
    moment = datetime(2026, 1, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert coerce(pg.TIMESTAMP(), moment.isoformat()) == datetime(2026, 1, 1, 10)
