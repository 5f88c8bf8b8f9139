"""Statements compiled once by SQLAlchemy and run on the batch session's own connection.

Executing a statement through SQLAlchemy costs far more client CPU than the
database spends on a one-row write: building the statement, its cache key and
an execution context, then processing the result took about 200 µs per update
on this path (``docs/performance.md``), against about 40 µs for the same
statement sent by asyncpg. The drainer's statements come in few shapes (a
table and a set of columns), so each shape is compiled once by SQLAlchemy,
from the mapped table and with its bind processors, and then run directly on
the asyncpg connection under the batch's session: inside the session's
transaction and savepoints, so the fence and the careful path are unchanged.

Driver errors are raised as SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`
wrapping the asyncpg exception, so callers classify them (SQLSTATE, transient
or permanent) exactly as they do errors from ``session.execute``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, and_, bindparam, delete, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import sqltypes

from drainer.db.models import TableModel

Processor = Callable[[Any], Any]

#: Statement shapes kept per database before the cache starts over.
MAX_SHAPES = 1024
#: Where a positional parameter's value comes from: the row/SET values, or the key.
FROM_VALUES = 0
FROM_KEY = 1


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """One statement shape: its SQL and how to build its positional arguments."""

    sql: str
    sources: tuple[tuple[int, str], ...]
    processors: tuple[Processor | None, ...]
    # (position, processor) of the parameters that have a bind processor
    _processed: tuple[tuple[int, Processor], ...] = field(init=False, repr=False)
    # all parameters from the values (an insert): one C-level lookup of them all
    _from_values: Callable[[Mapping[str, Any]], Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        processed = tuple((i, p) for i, p in enumerate(self.processors) if p is not None)
        object.__setattr__(self, "_processed", processed)
        names = [name for source, name in self.sources if source == FROM_VALUES]
        getter = None
        if len(names) == len(self.sources) and len(names) >= 2:
            # itemgetter of two or more names returns a tuple (of one, the value itself)
            getter = operator.itemgetter(*names)
        object.__setattr__(self, "_from_values", getter)

    def args(self, values: Mapping[str, Any], key: Mapping[str, Any] | None = None) -> list[Any]:
        """The positional arguments for one execution, bind-processed as SQLAlchemy would."""
        if self._from_values is not None:
            out = list(self._from_values(values))
        else:
            out = [
                values[name] if source == FROM_VALUES else key[name]  # type: ignore[index]
                for source, name in self.sources
            ]
        for index, process in self._processed:  # once per entry: only the few that need it
            out[index] = process(out[index])
        return out

    def column_records(
        self, columns: Mapping[str, Sequence[Any]], start: int, end: int
    ) -> list[tuple[Any, ...]]:
        """The positional arguments of rows ``start`` to ``end`` of an insert whose values
        come column by column (``columns``: column key -> value per row), bind-processed
        as :meth:`args` does, one tuple per row."""
        out = []
        for (source, name), process in zip(self.sources, self.processors, strict=True):
            if source != FROM_VALUES:
                raise ValueError(f"{self.sql!r} takes a key: not an insert")
            values = columns[name][start:end]
            out.append(values if process is None else [process(v) for v in values])
        return list(zip(*out, strict=True))

    def array_args(
        self, rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[list[Any]]:
        """One array per positional parameter, over ``(values, key)`` rows (``unnest``)."""
        out = []
        for (source, name), process in zip(self.sources, self.processors, strict=True):
            if process is None:
                out.append([row[source][name] for row in rows])
            else:
                out.append([process(row[source][name]) for row in rows])
        return out


@dataclass(frozen=True, slots=True)
class CopyStatement:
    """``COPY <table> (<columns>) FROM STDIN`` of one insert shape (binary, via asyncpg)."""

    table: str
    schema: str | None
    columns: tuple[str, ...]
    #: builds one record (the INSERT's positional arguments, bind-processed)
    insert: DriverStatement


class DriverStatements:
    """The compiled statements of one database, by shape."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # None marks a shape SQLAlchemy must execute itself
        self._cache: dict[tuple[Any, ...], DriverStatement | None] = {}
        # None marks a shape that goes as INSERT statements
        self._copy_cache: dict[tuple[Any, ...], CopyStatement | None] = {}

    def _compile(self, stmt: Any, sources: Mapping[str, tuple[int, str]]) -> DriverStatement | None:
        compiled = stmt.compile(dialect=self.dialect)
        order = compiled.positiontup
        if order is None or any(name not in sources for name in order):
            # a parameter of SQLAlchemy's own (a Python-side column default or
            # onupdate, computed per execution): this shape stays with SQLAlchemy
            return None
        processors = tuple(
            compiled.binds[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for name in order
        )
        return DriverStatement(str(compiled), tuple(sources[name] for name in order), processors)

    def insert(self, model: TableModel, columns: Sequence[str]) -> DriverStatement | None:
        """``INSERT`` of ``columns`` (Column keys), ``ON CONFLICT DO NOTHING`` on the key."""
        cache_key = ("insert", model.name, tuple(columns))
        try:
            return self._cache[cache_key]
        except KeyError:
            self._bound()
            names = {f"v{i}": (FROM_VALUES, column) for i, column in enumerate(columns)}
            stmt = pg_insert(model.table).values(
                {column: bindparam(f"v{i}") for i, column in enumerate(columns)}
            )
            if model.conflict_columns:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(model.conflict_columns))
            found = self._cache[cache_key] = self._compile(stmt, names)
            return found

    def copy(self, model: TableModel, columns: Sequence[str]) -> CopyStatement | None:
        """``COPY`` of ``columns``, or None where only the ``INSERT`` will do.

        A shape SQLAlchemy must execute itself (a Python-side default) cannot be
        copied; otherwise the records are the INSERT's own arguments, in its order.
        """
        cache_key = ("copy", model.name, tuple(columns))
        try:
            return self._copy_cache[cache_key]
        except KeyError:
            pass
        insert = self.insert(model, columns)
        table = model.table
        found: CopyStatement | None = None
        if insert is not None and all(_copies(table.c[c].type) for _, c in insert.sources):
            names = tuple(table.c[column].name for _, column in insert.sources)
            found = CopyStatement(table.name, table.schema, names, insert)
        if len(self._copy_cache) >= MAX_SHAPES:
            self._copy_cache.clear()
        self._copy_cache[cache_key] = found
        return found

    def update(
        self, model: TableModel, columns: Sequence[str], key: Sequence[str]
    ) -> DriverStatement | None:
        """``UPDATE`` setting ``columns`` of the row whose key columns equal ``key``."""
        cache_key = ("update", model.name, tuple(columns), tuple(key))
        try:
            return self._cache[cache_key]
        except KeyError:
            self._bound()
            table = model.table
            names = {f"v{i}": (FROM_VALUES, column) for i, column in enumerate(columns)}
            names |= {f"k{i}": (FROM_KEY, column) for i, column in enumerate(key)}
            stmt = (
                update(table)
                .where(
                    and_(*(table.c[column] == bindparam(f"k{i}") for i, column in enumerate(key)))
                )
                .values({column: bindparam(f"v{i}") for i, column in enumerate(columns)})
            )
            found = self._cache[cache_key] = self._compile(stmt, names)
            return found

    def delete(self, model: TableModel, key: Sequence[str]) -> DriverStatement | None:
        """``DELETE`` of the row whose key columns equal ``key``."""
        cache_key = ("delete", model.name, tuple(key))
        try:
            return self._cache[cache_key]
        except KeyError:
            self._bound()
            table = model.table
            names = {f"k{i}": (FROM_KEY, column) for i, column in enumerate(key)}
            stmt = delete(table).where(
                and_(*(table.c[column] == bindparam(f"k{i}") for i, column in enumerate(key)))
            )
            found = self._cache[cache_key] = self._compile(stmt, names)
            return found

    def update_many(
        self, model: TableModel, columns: Sequence[str], key: Sequence[str]
    ) -> DriverStatement | None:
        """One ``UPDATE ... FROM unnest(...)`` for many rows, or None if a type rules it out.

        Each parameter is an array of one column's values (``array_args``); the rows
        must have distinct keys, so the statement changes each row at most once and
        its command tag counts the rows found.
        """
        cache_key = ("update_many", model.name, tuple(columns), tuple(key))
        try:
            return self._cache[cache_key]
        except KeyError:
            self._bound()
            found = self._cache[cache_key] = self._compile_grouped(model, columns, key)
            return found

    def delete_many(self, model: TableModel, key: Sequence[str]) -> DriverStatement | None:
        """One ``DELETE ... USING unnest(...)`` for many rows, or None if a type rules it out.

        Like :meth:`update_many`: one array per key column, distinct keys, and the
        command tag counts the rows found.
        """
        cache_key = ("delete_many", model.name, tuple(key))
        try:
            return self._cache[cache_key]
        except KeyError:
            self._bound()
            found = self._cache[cache_key] = self._compile_grouped(model, (), key)
            return found

    def _bound(self) -> None:
        # Shapes follow the producers' column sets, which are few; a producer that
        # varies them without end must not grow this cache without end.
        if len(self._cache) >= MAX_SHAPES:
            self._cache.clear()

    def _compile_grouped(
        self, model: TableModel, columns: Sequence[str], key: Sequence[str]
    ) -> DriverStatement | None:
        """``UPDATE ... FROM unnest`` setting ``columns``, or (no columns) ``DELETE ...
        USING unnest``, of the rows whose key columns equal each row of the arrays."""
        table = model.table
        quote = self.dialect.identifier_preparer.quote
        targets = [table.c[column] for column in (*columns, *key)]
        # unnest() flattens nested arrays: array columns go one statement per row;
        # a Python-side onupdate is SQLAlchemy's to compute, per row
        if any(isinstance(col.type, ARRAY) for col in targets) or (
            columns and any(col.onupdate is not None for col in table.columns)
        ):
            return None
        try:
            types = [col.type.compile(dialect=self.dialect) for col in targets]
        except CompileError:  # a type with no SQL name of its own: one statement per row
            return None
        aliases = [f"c{i}" for i in range(len(columns))] + [f"k{i}" for i in range(len(key))]
        name = self.dialect.identifier_preparer.format_table(table)
        # The join alone would be planned once for the prepared statement: on a fresh
        # (empty) table as a hash join over a sequential scan, kept as the table grows.
        # Naming the keys with = ANY(...) as well makes every plan an index lookup.
        conditions = []
        for i, column in enumerate(key):
            target, position = f"{name}.{quote(table.c[column].name)}", len(columns) + i
            conditions.append(f"{target} = v.k{i}")
            conditions.append(f"{target} = ANY(${position + 1}::{types[position]}[])")
        where = " AND ".join(conditions)
        arrays = ", ".join(f"${i}::{type_}[]" for i, type_ in enumerate(types, 1))
        rows = f"unnest({arrays}) AS v({', '.join(aliases)})"
        if columns:
            sets = ", ".join(
                f"{quote(table.c[column].name)} = v.{alias}"
                for column, alias in zip(columns, aliases, strict=False)
            )
            sql = f"UPDATE {name} SET {sets} FROM {rows} WHERE {where}"
        else:
            sql = f"DELETE FROM {name} USING {rows} WHERE {where}"
        sources = tuple((FROM_VALUES, column) for column in columns) + tuple(
            (FROM_KEY, column) for column in key
        )
        processors = tuple(
            col.type.dialect_impl(self.dialect).bind_processor(self.dialect) for col in targets
        )
        return DriverStatement(sql, sources, processors)


#: Column types whose coerced values asyncpg writes in binary ``COPY`` (others, such as
#: bit, money or oid, take text the INSERT casts on the server: they are not copied).
_COPYABLE_TYPES: tuple[type[Any], ...] = (
    sqltypes.String,  # text, varchar, char and enums
    sqltypes.Integer,
    sqltypes.Numeric,
    sqltypes.Float,
    sqltypes.Boolean,
    sqltypes.Date,
    sqltypes.DateTime,
    sqltypes.Time,
    sqltypes.Interval,
    postgresql.INTERVAL,
    sqltypes.Uuid,
    sqltypes.JSON,  # json and jsonb
    sqltypes.LargeBinary,
    postgresql.INET,
    postgresql.CIDR,
)


def _copies(type_: Any) -> bool:
    if isinstance(type_, ARRAY):
        return _copies(type_.item_type)
    return isinstance(type_, _COPYABLE_TYPES)


async def copy_records(
    driver: asyncpg.Connection, stmt: CopyStatement, records: Sequence[Sequence[Any]]
) -> None:
    """Write ``records`` with one binary ``COPY`` (in the connection's transaction)."""
    try:
        await driver.copy_records_to_table(
            stmt.table, records=records, columns=stmt.columns, schema_name=stmt.schema
        )
    except Exception as exc:
        # asyncpg's binary encoders raise TypeError/ValueError for a value they cannot
        # write: wrapped like the server's refusals (without a SQLSTATE), so the caller
        # can fall back to INSERT statements for this shape
        raise _wrapped(f"COPY {stmt.table}", exc) from exc


async def begin_on_driver(session: AsyncSession) -> asyncpg.Connection:
    """Open the session's transaction now and return its asyncpg connection.

    SQLAlchemy's asyncpg adapter sends ``BEGIN`` only with its first statement, so a
    driver statement before one would run (and commit) on its own. The adapter's own
    start (the ``BEGIN`` it would send) is called when it has one; otherwise, one
    statement through the session opens the transaction. Either way the session owns
    the transaction: its commit, rollback and savepoints are SQLAlchemy's.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection | None = raw.driver_connection
    assert driver is not None  # checked out for this session: not yet closed
    if not driver.is_in_transaction():
        start = getattr(raw.dbapi_connection, "_start_transaction", None)
        try:
            if start is not None:
                await start()
        except Exception:
            # SQLAlchemy's own path meets the failure again below: it raises it as a
            # DBAPIError and invalidates a connection that is gone (a direct call does not)
            pass
        if not driver.is_in_transaction():
            await session.execute(_BEGIN_NOW)
    return driver


#: A statement SQLAlchemy runs only to open the session's transaction.
_BEGIN_NOW = text("SELECT 1")


def _wrapped(sql: str, exc: BaseException) -> DBAPIError:
    return DBAPIError(sql, None, exc)


async def execute(driver: asyncpg.Connection, stmt: DriverStatement, args: Sequence[Any]) -> int:
    """Run ``stmt`` once; returns the rows it touched."""
    try:
        status = await driver.execute(stmt.sql, *args)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _wrapped(stmt.sql, exc) from exc
    # the command tag: "UPDATE 1", "DELETE 0", "INSERT 0 1"
    _, _, count = status.rpartition(" ")
    return int(count) if count.isdigit() else 0


async def execute_many(
    driver: asyncpg.Connection, stmt: DriverStatement, rows: Sequence[Sequence[Any]]
) -> None:
    """Run ``stmt`` once per row, pipelined in one round trip."""
    try:
        await driver.executemany(stmt.sql, rows)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _wrapped(stmt.sql, exc) from exc
