"""The executor's driver path: grouped updates and deletes, fallbacks to SQLAlchemy, refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from drainer.db.driver import begin_on_driver
from drainer.db.executor import COPY_MIN_ROWS, BatchEntry, EntryResult, Executor, Outcome
from drainer.db.fence import create_watermark_table
from drainer.db.models import ModelRegistry
from drainer.db.operations import Operation, OpKind
from tests.conftest import sqlalchemy_url

NOW = dt.datetime(2026, 5, 1, 12, 0, 0)
STREAM = "s"


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
account = sa.Table(
    "account",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("note", sa.String),
    sa.Column("tags", ARRAY(sa.String)),
    sa.Column("seen_at", sa.DateTime),
    # Python-side default and onupdate: SQLAlchemy computes them per execution
    sa.Column("version", sa.Integer, default=1, onupdate=lambda: 2),
)
child = sa.Table(
    "child",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("account_id", sa.String, sa.ForeignKey("account.id"), nullable=False),
)
plain = sa.Table(
    "plain",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("at", sa.DateTime),
)


class Account(Base):
    __table__ = account


class Child(Base):
    __table__ = child


class Plain(Base):
    __table__ = plain


class Hooks:
    """Batch hooks that keep the dead letters in memory."""

    def __init__(self) -> None:
        self.dead: list[EntryResult] = []

    async def confirm_went_back(self, entries: Sequence[BatchEntry]) -> Sequence[BatchEntry]:
        return entries

    async def dead_letter(self, results: Sequence[EntryResult]) -> None:
        self.dead.extend(results)


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(pg_dsn))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await create_watermark_table(conn)
    yield engine
    await engine.dispose()


@pytest.fixture
def executor(engine: AsyncEngine) -> Executor:
    return Executor(engine, ModelRegistry.from_models([Account, Child, Plain]), max_attempts=3)


def _batch(ops: Sequence[Operation], start: int = 1, attempt: int = 1) -> list[BatchEntry[None]]:
    return [
        BatchEntry(
            entry_id=f"{start + i}-0",
            position=(start + i, 0),
            operation=op,
            source=None,
            attempt=attempt,
        )
        for i, op in enumerate(ops)
    ]


def ins(table: str, **values: Any) -> Operation:
    return Operation(OpKind.INSERT, table, values)


def upd(table: str, key: str, **values: Any) -> Operation:
    return Operation(OpKind.UPDATE, f"{table}_update", values, {"id": key})


def dele(table: str, key: str) -> Operation:
    return Operation(OpKind.DELETE, table, {"id": key})


async def _rows(engine: AsyncEngine, table: sa.Table) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(table))
        return {row.id: dict(row._mapping) for row in result}


async def test_consecutive_updates_of_distinct_rows_apply_in_order(
    engine: AsyncEngine, executor: Executor
) -> None:
    ops = [ins("plain", id=f"p{i}", n=0) for i in range(5)]
    # three rounds over the same rows: each round is one statement, rounds in order
    for round_ in (1, 2, 3):
        ops += [upd("plain", f"p{i}", n=round_ * 10 + i, at=NOW.isoformat()) for i in range(5)]
    ops.append(upd("plain", "p0", n=99))  # a different column set: its own statement
    ops.append(dele("plain", "p4"))
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * len(ops)
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == {"p0": 99, "p1": 31, "p2": 32, "p3": 33}
    assert all(r["at"] == NOW for r in rows.values())
    assert result.watermark == (len(ops), 0)


@pytest.mark.parametrize(
    ("change", "left"),
    [
        (lambda key: upd("plain", key, n=1), {"a": 1, "b": 0}),  # b's update not yet
        (lambda key: dele("plain", key), {"b": 0}),  # b's delete not yet
    ],
    ids=["update", "delete"],
)
async def test_a_missing_row_in_a_group_waits_and_keeps_order(
    engine: AsyncEngine,
    executor: Executor,
    change: Callable[[str], Operation],
    left: dict[str, int],
) -> None:
    ops = [
        ins("plain", id="a", n=0),
        ins("plain", id="b", n=0),
        change("a"),
        change("ghost"),  # no such row: the batch stops here to retry later
        change("b"),
    ]
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    assert result.retry is not None and result.retry.entry_id == "4-0"
    assert [r.entry.entry_id for r in result.handled] == ["1-0", "2-0", "3-0"]
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == left


async def test_array_columns_and_python_defaults_go_through_sqlalchemy(
    engine: AsyncEngine, executor: Executor
) -> None:
    ops = [
        ins("account", id="x", balance=1, tags=["a", "b"]),
        ins("account", id="y", balance=2, tags=["c"]),
        upd("account", "x", balance=10, tags=["z"]),
        upd("account", "y", balance=20, tags=["q", "r"]),
    ]
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * 4
    rows = await _rows(engine, account)
    assert rows["x"]["tags"] == ["z"] and rows["y"]["tags"] == ["q", "r"]
    assert rows["x"]["balance"] == 10 and rows["y"]["balance"] == 20
    # the Python-side default on insert and onupdate on update were applied
    assert rows["x"]["version"] == 2 and rows["y"]["version"] == 2


async def test_a_refused_row_is_dead_lettered_and_the_batch_goes_on(
    engine: AsyncEngine, executor: Executor
) -> None:
    ops = [
        ins("plain", id="a", n=1),
        ins("child", id="orphan", account_id="nobody"),  # foreign key violation
        ins("plain", id="b", n=2),
        upd("plain", "a", n=3),
        upd("plain", "b", n=4),
    ]
    hooks = Hooks()
    result = await executor.apply(STREAM, _batch(ops), hooks)
    outcomes = [r.outcome for r in result.handled]
    assert outcomes == [Outcome.APPLIED, Outcome.DEAD, *[Outcome.APPLIED] * 3]
    assert [r.entry.entry_id for r in hooks.dead] == ["2-0"]
    assert "23503" in str(hooks.dead[0].error)
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == {"a": 3, "b": 4}
    assert await _rows(engine, child) == {}


async def test_consecutive_deletes_of_distinct_rows_go_as_one_statement(
    engine: AsyncEngine, executor: Executor
) -> None:
    setup = [ins("plain", id=f"p{i}", n=i) for i in range(6)]
    assert (await executor.apply(STREAM, _batch(setup), Hooks())).count(Outcome.APPLIED) == 6
    await _record_statements(engine, "plain", "DELETE")
    # deletes, an insert, then deletes again: two runs, each one statement, in order
    ops = [dele("plain", f"p{i}") for i in range(4)]
    ops += [ins("plain", id="p0", n=10), dele("plain", "p0"), dele("plain", "p5")]
    result = await executor.apply(STREAM, _batch(ops, start=10), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * len(ops)
    assert set(await _rows(engine, plain)) == {"p4"}
    async with engine.connect() as conn:
        queries = [row.query for row in await conn.execute(sa.text("SELECT query FROM written_by"))]
    assert len(queries) == 6
    assert all(q.startswith("DELETE FROM") and "USING unnest(" in q for q in queries)
    assert len(set(queries)) == 1  # one statement text; two executions, four rows then two


async def test_a_refused_delete_in_a_group_is_dead_lettered_alone(
    engine: AsyncEngine, executor: Executor
) -> None:
    setup = [ins("account", id=a, balance=1) for a in ("a1", "a2", "a3")]
    setup.append(ins("child", id="c1", account_id="a2"))
    assert (await executor.apply(STREAM, _batch(setup), Hooks())).count(Outcome.APPLIED) == 4
    hooks = Hooks()
    ops = [dele("account", a) for a in ("a1", "a2", "a3")]  # a2 still has a child
    result = await executor.apply(STREAM, _batch(ops, start=10), hooks)
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED, Outcome.DEAD, Outcome.APPLIED]
    assert [r.entry.entry_id for r in hooks.dead] == ["11-0"]
    assert "23503" in str(hooks.dead[0].error)
    assert set(await _rows(engine, account)) == {"a2"}


async def _record_statements(engine: AsyncEngine, table: str, event: str = "INSERT") -> None:
    """Make every row written to ``table`` (or deleted: ``event``) log the statement."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE written_by (query text)"))
        await conn.execute(
            sa.text(
                "CREATE FUNCTION log_writer() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO written_by VALUES (current_query()); RETURN NEW; END $$"
            )
        )
        await conn.execute(
            sa.text(
                f"CREATE TRIGGER log_writer AFTER {event} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION log_writer()"
            )
        )


async def _writers(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT query FROM written_by"))
        return [row.query.split(None, 1)[0].upper() for row in rows]


async def test_a_long_insert_run_is_one_copy_with_every_value_kept(
    engine: AsyncEngine, executor: Executor
) -> None:
    await _record_statements(engine, "plain")
    count = COPY_MIN_ROWS + 8
    ops = [ins("plain", id=f"p{i}", n=2**62 + i, at=NOW.isoformat()) for i in range(count)]
    ops.append(upd("plain", "p0", n=-1))  # after the copy, in order
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * len(ops)
    assert await _writers(engine) == ["COPY"] * count
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == {
        f"p{i}": (-1 if i == 0 else 2**62 + i) for i in range(count)
    }
    assert all(r["at"] == NOW for r in rows.values())
    assert result.watermark == (len(ops), 0)


async def test_a_short_insert_run_goes_as_insert_statements(
    engine: AsyncEngine, executor: Executor
) -> None:
    await _record_statements(engine, "plain")
    ops = [ins("plain", id=f"p{i}", n=i) for i in range(COPY_MIN_ROWS - 1)]
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * len(ops)
    assert set(await _writers(engine)) == {"INSERT"}


async def test_a_copy_meeting_an_existing_row_reruns_as_inserts_and_keeps_the_row(
    engine: AsyncEngine, executor: Executor
) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO plain (id, n) VALUES ('p5', 555)"))
    await _record_statements(engine, "plain")
    count = COPY_MIN_ROWS + 1
    ops = [ins("plain", id=f"p{i}", n=i) for i in range(count)]
    result = await executor.apply(STREAM, _batch(ops), Hooks())
    # as with INSERT ... ON CONFLICT DO NOTHING: applied, the existing row untouched
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * count
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == {
        f"p{i}": (555 if i == 5 else i) for i in range(count)
    }
    # the failed copy wrote nothing (rolled back); the rerun inserted the others
    assert await _writers(engine) == ["INSERT"] * (count - 1)
    # the next run of that shape is not copied for a while: no second failed copy
    more = [ins("plain", id=f"q{i}", n=i) for i in range(count)]
    result = await executor.apply(STREAM, _batch(more, start=count + 1), Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.APPLIED] * count
    assert await _writers(engine) == ["INSERT"] * (2 * count - 1)


async def test_a_refused_row_in_a_copied_run_is_dead_lettered_alone(
    engine: AsyncEngine, executor: Executor
) -> None:
    count = COPY_MIN_ROWS + 2
    ops = [ins("child", id=f"c{i}", account_id="a") for i in range(count)]
    ops[3] = ins("child", id="c3", account_id="nobody")  # foreign key violation
    setup = [ins("account", id="a", balance=1)]
    hooks = Hooks()
    result = await executor.apply(STREAM, _batch(setup + ops), hooks)
    outcomes = [r.outcome for r in result.handled]
    assert outcomes == [Outcome.APPLIED] * 4 + [Outcome.DEAD] + [Outcome.APPLIED] * (count - 4)
    assert [r.entry.entry_id for r in hooks.dead] == ["5-0"]
    assert set(await _rows(engine, child)) == {f"c{i}" for i in range(count)} - {"c3"}
    # one bad row does not stop the shape from being copied next time
    again = [ins("child", id=f"d{i}", account_id="a") for i in range(count)]
    await _record_statements(engine, "child")
    result = await executor.apply(STREAM, _batch(again, start=100), Hooks())
    assert await _writers(engine) == ["COPY"] * count


async def test_the_transaction_opened_on_the_driver_is_the_sessions(engine: AsyncEngine) -> None:
    """A driver statement after ``begin_on_driver`` commits and rolls back with the session."""
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        driver = await begin_on_driver(session)
        assert driver.is_in_transaction()
        await driver.execute("INSERT INTO plain (id, n) VALUES ('kept', 1)")
    async with sessions() as session:
        async with session.begin():
            driver = await begin_on_driver(session)
            await driver.execute("INSERT INTO plain (id, n) VALUES ('undone', 2)")
            await session.rollback()
        # a savepoint is the session's too: released or rolled back by SQLAlchemy
        async with session.begin():
            driver = await begin_on_driver(session)
            async with session.begin_nested() as nested:
                await session.connection()  # SQLAlchemy sends the SAVEPOINT when asked
                await driver.execute("INSERT INTO plain (id, n) VALUES ('nested', 3)")
                await nested.rollback()
            await driver.execute("INSERT INTO plain (id, n) VALUES ('after', 4)")
    assert set(await _rows(engine, plain)) == {"kept", "after"}


async def test_a_bad_value_in_a_long_insert_run_dead_letters_only_its_entry(
    engine: AsyncEngine, executor: Executor
) -> None:
    """The run is coerced column by column until a value fails; then row by row, so the
    dead letter names its entry and column, and the rest of the run is still copied."""
    count = COPY_MIN_ROWS + 8
    ops = [ins("plain", id=f"p{i}", n=i, at=NOW.isoformat()) for i in range(count)]
    ops[5] = ins("plain", id="p5", n="five", at=NOW.isoformat())
    hooks = Hooks()
    result = await executor.apply(STREAM, _batch(ops), hooks)
    outcomes = [r.outcome for r in result.handled]
    assert outcomes == [Outcome.APPLIED] * 5 + [Outcome.DEAD] + [Outcome.APPLIED] * (count - 6)
    [dead] = hooks.dead
    assert dead.entry.entry_id == "6-0"
    assert "plain.n" in str(dead.error)
    assert set(await _rows(engine, plain)) == {f"p{i}" for i in range(count)} - {"p5"}


async def test_a_copied_run_cut_by_the_watermark_writes_each_later_entry_once(
    engine: AsyncEngine, executor: Executor
) -> None:
    """A redelivered batch whose first entries were applied already: the rest of its run,
    coerced column by column, is written from the columns at the right rows."""
    await _record_statements(engine, "plain")
    count = COPY_MIN_ROWS + 20
    ops = [ins("plain", id=f"p{i}", n=1000 + i, at=NOW.isoformat()) for i in range(count)]
    first = await executor.apply(STREAM, _batch(ops[:10]), Hooks())
    assert first.watermark == (10, 0)
    again = _batch(ops)
    for entry in again:
        entry.first_delivery = False
    result = await executor.apply(STREAM, again, Hooks())
    assert [r.outcome for r in result.handled] == [Outcome.SKIPPED] * 10 + [Outcome.APPLIED] * (
        count - 10
    )
    assert (await _writers(engine)).count("COPY") == count - 10
    rows = await _rows(engine, plain)
    assert {k: r["n"] for k, r in rows.items()} == {f"p{i}": 1000 + i for i in range(count)}
    assert result.watermark == (count, 0)
