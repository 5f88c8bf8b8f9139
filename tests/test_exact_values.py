"""Numbers stay exact from the JSON text to the row; a value PostgreSQL (or asyncpg)
would store as something else is dead-lettered with the reason, never rounded or cut."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql as pg

from drainer.consumers.entry import decode_entry
from drainer.consumers.streams import StreamLayout
from drainer.db.coercion import coercer_for
from drainer.db.errors import MalformedOperation
from drainer.db.executor import COPY_MIN_ROWS, Executor
from drainer.db.operations import json_default, parse_operation
from tests.support.drainer import REDIS_URL, settings_from, write_config
from tests.support.run import drain_burst

DDL = """CREATE TABLE exact (
    id text PRIMARY KEY, price numeric(20, 4), total numeric, big bigint, qty integer,
    ratio double precision, score real, doc jsonb, raw json,
    addr inet, net cidr, flags bit(3), vflags bit varying(3), fee money, ref oid
)"""

#: Read back as PostgreSQL prints each column: what a user would check.
READ_BACK = """SELECT id, price::text, total::text, big::text, qty::text, ratio::text,
    score::text, doc::text, raw::text, addr::text, net::text, flags::text, vflags::text,
    fee::text, ref::text FROM exact"""


def insert(row: str) -> str:
    """A typed_sql insert into ``exact`` with the row written as JSON text, verbatim."""
    return '{"db_op":"insert","data":{"insertable":{"table":"exact","data":' + row + "}}}"


#: case -> (row JSON text, the columns as PostgreSQL prints them)
STORED: dict[str, tuple[str, dict[str, str]]] = {
    # float64 would give 1234567890123456.0000
    "price": ('{"id":"price","price":1234567890123456.1234}', {"price": "1234567890123456.1234"}),
    "price_zeros": ('{"id":"price_zeros","price":"12.340000"}', {"price": "12.3400"}),
    # float64 would give 9007199254740992
    "big": ('{"id":"big","big":9007199254740993.0}', {"big": "9007199254740993"}),
    "big_exp": ('{"id":"big_exp","big":1e18}', {"big": "1000000000000000000"}),
    # orjson reads integers past 64 bits as floats
    "total": (
        '{"id":"total","total":123456789012345678901234567890}',
        {"total": "123456789012345678901234567890"},
    ),
    # orjson refuses numbers past a double's range; numeric holds them
    "total_e400": ('{"id":"total_e400","total":1e400}', {"total": "1" + "0" * 400}),
    "doc": (
        '{"id":"doc","doc":{"n":1234567890123456.1234,"m":[0.1,9007199254740993]}}',
        {"doc": '{"m": [0.1, 9007199254740993], "n": 1234567890123456.1234}'},
    ),
    "raw": ('{"id":"raw","raw":{"n":9007199254740993.0}}', {"raw": '{"n":9007199254740993.0}'}),
    "ratio": ('{"id":"ratio","ratio":0.1,"score":"2.5"}', {"ratio": "0.1", "score": "2.5"}),
    "addr": ('{"id":"addr","addr":"10.0.0.1","net":"10.0.0.0/8"}', {"addr": "10.0.0.1/32"}),
    "bits": ('{"id":"bits","flags":"101","vflags":"1"}', {"flags": "101", "vflags": "1"}),
    "fee": ('{"id":"fee","fee":12.3,"ref":42}', {"fee": "$12.30", "ref": "42"}),
}

#: case -> (typed_sql, pushed_at, error class, the reason the dead letter gives)
DEAD: dict[str, tuple[str, str, str, str]] = {
    "rounded": (
        insert('{"id":"rounded","price":1.23456}'),
        "1",
        "coercion",
        "exact.price: 1.23456 has 5 digits after the decimal point; numeric(20,4) keeps 4",
    ),
    "too_big": (
        insert('{"id":"too_big","price":12345678901234567}'),
        "1",
        "coercion",
        "out of range for numeric(20,4): 12345678901234567 has 17 digits before",
    ),
    # asyncpg would encode it so that PostgreSQL stores 0
    "wraps": (
        insert('{"id":"wraps","total":"1e131072"}'),
        "1",
        "coercion",
        "out of range for numeric: '1e131072' has 131073 digits before the decimal point",
    ),
    "fraction": (
        insert('{"id":"fraction","qty":1.5}'),
        "1",
        "coercion",
        "exact.qty: expected an integer, got 1.5",
    ),
    "half": (
        insert('{"id":"half","big":9007199254740993.5}'),
        "1",
        "coercion",
        "exact.big: expected an integer, got 9007199254740993.5",
    ),
    "inf_text": (
        insert('{"id":"inf_text","ratio":"1e999"}'),
        "1",
        "coercion",
        "exact.ratio: out of range for a floating-point column: '1e999'",
    ),
    "inf_number": (
        insert('{"id":"inf_number","ratio":1e999}'),
        "1",
        "coercion",
        "exact.ratio: out of range for a floating-point column: 1E+999",
    ),
    "underflow": (
        insert('{"id":"underflow","score":1e-50}'),
        "1",
        "coercion",
        "exact.score: too small for real (would be 0)",
    ),
    "pushed_nan": (insert('{"id":"pushed_nan"}'), "nan", "malformed", "pushed_at must be"),
    "pushed_inf": (insert('{"id":"pushed_inf"}'), "1e999", "malformed", "pushed_at must be"),
    "dup_column": (
        insert('{"id":"dup_column","qty":1,"qty":2}'),
        "1",
        "malformed",
        "typed_sql has the key 'qty' twice in one object",
    ),
    "dup_op": (
        '{"db_op":"delete","db_op":"insert","data":{"insertable":{"table":"exact",'
        '"data":{"id":"dup_op"}}}}',
        "1",
        "malformed",
        "typed_sql has the key 'db_op' twice in one object",
    ),
    # asyncpg would store 0.0.0.5 and 0.0.0.1
    "addr_int": (
        insert('{"id":"addr_int","addr":5}'),
        "1",
        "coercion",
        "exact.addr: expected an IP address string (inet), got 5",
    ),
    "addr_bool": (
        insert('{"id":"addr_bool","addr":true}'),
        "1",
        "coercion",
        "exact.addr: expected an IP address string (inet), got True",
    ),
    "net_int": (
        insert('{"id":"net_int","net":5}'),
        "1",
        "coercion",
        "exact.net: expected a network string (cidr), got 5",
    ),
    # PostgreSQL's cast to bit(3) would cut '1111' to '111' and pad '1' to '100'
    "bits_long": (
        insert('{"id":"bits_long","flags":"1111"}'),
        "1",
        "coercion",
        "exact.flags: expected exactly 3 bits (bit(3)), got 4",
    ),
    "bits_short": (
        insert('{"id":"bits_short","flags":"1"}'),
        "1",
        "coercion",
        "exact.flags: expected exactly 3 bits (bit(3)), got 1",
    ),
    "vbits_long": (
        insert('{"id":"vbits_long","vflags":"1111"}'),
        "1",
        "coercion",
        "exact.vflags: too long: 4 bits, the column allows 3 (bit varying(3))",
    ),
    # PostgreSQL would store $1.01
    "fee_rounded": (
        insert('{"id":"fee_rounded","fee":"1.005"}'),
        "1",
        "coercion",
        "exact.fee: '1.005' has 3 digits after the decimal point; money keeps 2",
    ),
    # asyncpg would store 1
    "ref_fraction": (
        insert('{"id":"ref_fraction","ref":1.5}'),
        "1",
        "coercion",
        "exact.ref: expected an integer, got 1.5",
    ),
}


async def test_numbers_arrive_exactly_and_what_cannot_is_dead_lettered(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(DDL)
    config = write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    stream = StreamLayout("DRAINER_STREAM", 8, redis_prefix).stream_for("exact_1")
    entries = [(name, insert(row), "1") for name, (row, _) in STORED.items()]
    entries += [(name, typed_sql, pushed) for name, (typed_sql, pushed, _, _) in DEAD.items()]
    try:
        for name, typed_sql, pushed_at in entries:
            fields = {
                "request_id": name,
                "global_id": "exact_1",
                "typed_sql": typed_sql,
                "pushed_at": pushed_at,
            }
            await redis.xadd(stream, fields)  # type: ignore[arg-type]
        await drain_burst(settings_from(config))
        rows = {r["id"]: dict(r) for r in await conn.fetch(READ_BACK)}
        dead = {
            f["request_id"]: f
            for _id, f in await redis.xrange(f"{redis_prefix}:drainer:dead_letter")
        }
    finally:
        await redis.aclose()
        await conn.close()
    for name, (_row, expected) in STORED.items():
        assert name in rows, (name, dead.get(name, {}).get("dl_error"))
        assert {column: rows[name][column] for column in expected} == expected, name
    assert set(dead) == set(DEAD), sorted(set(dead) ^ set(DEAD))
    for name, (_sql, _pushed, error_class, reason) in DEAD.items():
        assert dead[name]["dl_error_class"] == error_class, (name, dead[name])
        assert reason in dead[name]["dl_error"], (name, dead[name]["dl_error"])
    assert not set(rows) & set(DEAD)


def update(key: str, changes: str) -> str:
    """A typed_sql update of the ``exact`` row ``key``, the changes as JSON text."""
    body = '{"orig":{"id":"' + key + '"},"update_data":' + changes + "}"
    return '{"db_op":"update","data":{"updatable":{"table":"exact","data":' + body + "}}}"


#: one shape of row, every column: the drainer sends such runs as one statement
SHAPED = (
    '"price":{n}1234567890123.1234,"total":{n}123456789012345678901234567890.5,'
    '"big":900719925474099{n}.0,"qty":{n},"ratio":0.{n},"score":{n}.5,'
    '"doc":{{"n":{n}234567890123456.1234}},"raw":{{"n":{n}.10}},"addr":"10.0.0.{n}",'
    '"net":"10.{n}.0.0/16","flags":"10{b}","vflags":"1{b}","fee":"{n}.25","ref":{n}'
)


def _shaped(n: int) -> dict[str, str]:
    b = n % 2
    return {
        "price": f"{n}1234567890123.1234",
        "total": f"{n}123456789012345678901234567890.5",
        "big": f"900719925474099{n}",
        "qty": str(n),
        "ratio": f"0.{n}",
        "score": f"{n}.5",
        "doc": f'{{"n": {n}234567890123456.1234}}',
        "raw": f'{{"n":{n}.10}}',
        "addr": f"10.0.0.{n}/32",
        "net": f"10.{n}.0.0/16",
        "flags": f"10{b}",
        "vflags": f"1{b}",
        "fee": f"${n}.25",
        "ref": str(n),
    }


async def test_rows_of_one_shape_go_as_one_statement_and_stay_exact(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grouped: list[tuple[str, int, bool]] = []
    insert_many, grouped_run = Executor._insert_many, Executor._grouped

    async def record_inserts(
        self: Executor, session: Any, model: Any, rows: Any, **options: Any
    ) -> Any:
        grouped.append(("insert", len(rows), True))
        return await insert_many(self, session, model, rows, **options)

    async def record_updates(self: Executor, session: Any, run: Any) -> bool:
        done = await grouped_run(self, session, run)
        grouped.append((run[0].kind.value, len(run), done))
        return done

    monkeypatch.setattr(Executor, "_insert_many", record_inserts)
    monkeypatch.setattr(Executor, "_grouped", record_updates)
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(DDL)
    config = write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    stream = StreamLayout("DRAINER_STREAM", 8, redis_prefix).stream_for("exact_1")
    ops = [insert(f'{{"id":"r{n}",' + SHAPED.format(n=n, b=n % 2) + "}") for n in (1, 2, 3)]
    # the updates swap the rows' values: 1 gets 4's, 2 gets 5's, 3 gets 6's
    ops += [update(f"r{n - 3}", "{" + SHAPED.format(n=n, b=n % 2) + "}") for n in (4, 5, 6)]
    try:
        for typed_sql in ops:
            fields = {"request_id": "r", "global_id": "exact_1", "typed_sql": typed_sql}
            await redis.xadd(stream, {**fields, "pushed_at": "1"})  # type: ignore[arg-type]
        await drain_burst(settings_from(config))
        rows = {r["id"]: dict(r) for r in await conn.fetch(READ_BACK)}
        dead = await redis.xrange(f"{redis_prefix}:drainer:dead_letter")
    finally:
        await redis.aclose()
        await conn.close()
    assert dead == []
    assert grouped == [("insert", 3, True), ("update", 3, True)]
    for n in (1, 2, 3):
        expected = _shaped(n + 3)
        assert {column: rows[f"r{n}"][column] for column in expected} == expected


COPIED_DDL = """CREATE TABLE exact_copy (
    id text PRIMARY KEY, price numeric(20, 4), total numeric, big bigint, ratio double precision,
    doc jsonb, raw json, addr inet
);
CREATE TABLE written_by (query text);
CREATE FUNCTION log_writer() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO written_by VALUES (current_query()); RETURN NEW; END $$;
CREATE TRIGGER log_writer AFTER INSERT ON exact_copy FOR EACH ROW EXECUTE FUNCTION log_writer()
"""


def _copied_row(n: int) -> tuple[str, dict[str, str]]:
    """Row ``n`` as JSON text, and its columns as PostgreSQL prints them."""
    text = (
        f'{{"id":"c{n}","price":{n}234567890123.1234,"total":{n}23456789012345678901234.5,'
        f'"big":{2**53 + n},"ratio":{n}.25,"doc":{{"n":{n}234567890123456.1234}},'
        f'"raw":{{"n":{n}.10}},"addr":"10.0.{n}.1/32"}}'
    )
    printed = {
        "price": f"{n}234567890123.1234",
        "total": f"{n}23456789012345678901234.5",
        "big": str(2**53 + n),
        "ratio": f"{n}.25",
        "doc": f'{{"n": {n}234567890123456.1234}}',
        "raw": f'{{"n":{n}.10}}',
        "addr": f"10.0.{n}.1",
    }
    return text, printed


async def test_a_copied_insert_run_keeps_every_number_exact(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    """A long run of one shape goes as one binary COPY, every value as written."""
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(COPIED_DDL)
    config = write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    stream = StreamLayout("DRAINER_STREAM", 8, redis_prefix).stream_for("exact_1")
    rows = {f"c{n}": _copied_row(n) for n in range(1, COPY_MIN_ROWS + 1)}
    try:
        for text, _ in rows.values():
            typed_sql = insert(text).replace('"table":"exact"', '"table":"exact_copy"')
            fields = {"request_id": "r", "global_id": "exact_1", "typed_sql": typed_sql}
            await redis.xadd(stream, {**fields, "pushed_at": "1"})  # type: ignore[arg-type]
        await drain_burst(settings_from(config))
        stored = {
            r["id"]: dict(r)
            for r in await conn.fetch(
                "SELECT id, price::text, total::text, big::text, ratio::text, doc::text, "
                "raw::text, host(addr) AS addr FROM exact_copy"
            )
        }
        writers = [
            r["query"].split(None, 1)[0].upper()
            for r in await conn.fetch("SELECT query FROM written_by")
        ]
        dead = await redis.xrange(f"{redis_prefix}:drainer:dead_letter")
    finally:
        await redis.aclose()
        await conn.close()
    assert dead == []
    assert writers == ["COPY"] * len(rows)
    for key, (_, printed) in rows.items():
        assert {column: stored[key][column] for column in printed} == printed


# --- the reader on its own ------------------------------------------------


def _values(row: str) -> dict[str, Any]:
    return parse_operation(insert(row)).values


def numeric_column(value: Any) -> Any:
    return coercer_for(sa.Column("c", pg.NUMERIC()))(value)


@pytest.mark.parametrize("spacing", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
def test_integers_stay_int_and_every_fraction_keeps_its_text(
    spacing: tuple[str, str],
) -> None:
    # the Hyperswitch dialect adds MinorUnit amounts only when they are ints
    row = {"amount": 6540, "neg": -(2**63), "top": 2**64 - 1}
    values = _values(json.dumps(row, separators=spacing))
    assert values == row
    assert all(type(value) is int for value in values.values())
    # past 64 bits an integer is an integral Decimal: exact, and writable to jsonb
    huge = _values(json.dumps({"n": 2**70}, separators=spacing))["n"]
    assert huge == 2**70
    assert orjson.dumps(huge, default=json_default) == str(2**70).encode()
    assert numeric_column(huge) == 2**70
    texts = ["0.1", "1e16", "1.5E-7", "-0.0", "100.0", "1234567890123456.1234", "1e400"]
    pairs = spacing[0].join(f'"n{i}"{spacing[1]}{t}' for i, t in enumerate(texts))
    values = _values("{" + pairs + "}")
    for i, text in enumerate(texts):
        assert numeric_column(values[f"n{i}"]) == Decimal(text), text


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_a_producer_writes_reads_back_as_its_text(number: float) -> None:
    text = orjson.dumps(number).decode()
    value = _values('{"n":' + text + "}")["n"]
    assert numeric_column(value) == Decimal(text)


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_any_decimal_text_reads_back_exactly(number: Decimal) -> None:
    text = str(number)
    value = _values('{"n":' + text + "}")["n"]
    assert numeric_column(value) == number
    # and a jsonb column is sent the same digits
    sent = orjson.dumps(value, default=json_default)
    assert Decimal(sent.decode()) == number


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"a":1,"b":{"c":1,"c":1}}', "the key 'c' twice in one object"),
        ('{"a":1, "a" :2}', "the key 'a' twice in one object"),
        ('{"a\\u0062":1,"ab":2}', "the key 'ab' twice in one object"),
        ('{"n":NaN}', "not valid JSON"),
        ('{"n":Infinity}', "not valid JSON"),
        ('{"s":"\\ud800"}', "not valid JSON"),
        ('{"n":1' + "0" * 5000 + "}", "not valid JSON"),
        ("[" * 2000 + "]" * 2000, "typed_sql"),
    ],
)
def test_a_document_no_reader_agrees_on_is_malformed(raw: str, reason: str) -> None:
    with pytest.raises(MalformedOperation, match=re.escape(reason)):
        parse_operation(raw)


@pytest.mark.parametrize("pushed_at", ["nan", "NaN", "inf", "-infinity", "1e999", "soon", ""])
def test_pushed_at_must_be_a_finite_time(pushed_at: str) -> None:
    fields = {
        "request_id": "r",
        "global_id": "g",
        "typed_sql": insert("{}"),
        "pushed_at": pushed_at,
    }
    with pytest.raises(MalformedOperation, match="pushed_at must be unix seconds"):
        decode_entry(fields)


def test_pushed_at_in_the_forms_producers_write() -> None:
    for text, seconds in [("1780000000", 1780000000.0), ("1780000000.25", 1780000000.25)]:
        fields = {"request_id": "r", "global_id": "g", "typed_sql": insert("{}"), "pushed_at": text}
        assert decode_entry(fields).pushed_at == seconds
