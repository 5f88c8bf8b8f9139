"""Batch execution: one transaction per partition batch, fenced by the watermark.

A batch runs first on the fast path: consecutive inserts into one table go as
one ``COPY`` (or pipelined ``INSERT`` statements), consecutive updates of distinct
rows with the same columns as one ``UPDATE ... FROM unnest(...)``, consecutive
deletes of distinct rows as one ``DELETE ... USING unnest(...)``, and no
savepoints are taken.
Statements run on the session's own asyncpg connection, compiled once per
shape (:mod:`db.driver`). If the database refuses any entry,
the transaction is rolled back and the batch runs again entry by entry, each
in its own savepoint, so one bad entry is dead-lettered while the rest of the
batch still applies, in order.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from sqlalchemy import Table, and_, delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from drainer.db import parking
from drainer.db.driver import (
    DriverStatement,
    DriverStatements,
    begin_on_driver,
    copy_records,
    execute,
    execute_many,
)
from drainer.db.errors import (
    ConstraintViolation,
    DrainerDbError,
    InternalError,
    NoRowMatched,
    PartitionBusy,
    PermanentError,
    StreamWentBack,
    TransientError,
)
from drainer.db.fence import (
    LOCK_NOT_AVAILABLE,
    Position,
    advance_watermark_on,
    lock_watermark_on,
)
from drainer.db.models import CoercedColumns, ModelRegistry, TableModel
from drainer.db.operations import Operation, OpKind

log = logging.getLogger("drainer.db")

#: SQLSTATE classes where the same statement can never succeed: data exceptions,
#: integrity violations, syntax or undefined objects, unsupported features,
#: cardinality, check-option and trigger-raised (PL/pgSQL) errors.
PERMANENT_SQLSTATE_CLASSES = frozenset({"21", "22", "23", "2B", "42", "44", "0A", "P0"})
UNIQUE_VIOLATION = "23505"
#: Most consecutive updates (or deletes) sent as one statement.
MAX_GROUPED_ROWS = 1000
#: Insert runs at least this long are written with one binary ``COPY`` (shorter ones:
#: one pipelined ``INSERT`` per row costs less than starting a copy).
COPY_MIN_ROWS = 32
#: Insert runs at least this long (one table, same columns) are coerced column by column.
COLUMNWISE_MIN_ROWS = 8
#: After a ``COPY`` of a shape met a row that already existed, its inserts go as
#: ``INSERT ... ON CONFLICT DO NOTHING`` for this long (a conflict reruns the batch).
COPY_PAUSE_S = 60.0


class Outcome(enum.StrEnum):
    """What became of one entry of a batch."""

    APPLIED = "applied"  # written (an insert whose row existed counts here too)
    EXISTED = "existed"  # insert found its row already there (careful path only)
    SKIPPED = "skipped"  # at or below the watermark: applied before, redelivered
    DEAD = "dead"  # dead-lettered


#: What the caller read an entry from (the consumers' stream entry); the executor
#: carries it through to the results untouched.
SourceT = TypeVar("SourceT")


@dataclass(slots=True)
class BatchEntry(Generic[SourceT]):
    """One entry of a partition batch, in stream order."""

    entry_id: str
    position: Position
    operation: Operation | None
    #: where the caller read it from (None when an operation is executed directly)
    source: SourceT
    error: PermanentError | None = None
    first_delivery: bool = True
    attempt: int = 1
    #: ``extra`` of every log line about this entry (its global_id, request_id, ...)
    log_fields: Mapping[str, Any] | None = None
    #: The entity the entry belongs to (what ``park_entity`` parks); None: never parked.
    global_id: str | None = None


@dataclass(slots=True)
class EntryResult(Generic[SourceT]):
    """The outcome of one handled entry."""

    entry: BatchEntry[SourceT]
    outcome: Outcome
    error: DrainerDbError | None = None


@dataclass(slots=True)
class BatchResult(Generic[SourceT]):
    """What a batch did. Entries after ``retry`` were not handled and stay pending."""

    handled: list[EntryResult[SourceT]] = field(default_factory=list)
    retry: BatchEntry[SourceT] | None = None
    retry_error: NoRowMatched | None = None
    watermark: Position = (0, 0)

    def count(self, outcome: Outcome) -> int:
        """How many handled entries had ``outcome``."""
        return sum(1 for r in self.handled if r.outcome is outcome)

    @property
    def dead(self) -> list[EntryResult[SourceT]]:
        """The dead-lettered entries."""
        return [r for r in self.handled if r.outcome is Outcome.DEAD]


class BatchHooks(Protocol[SourceT]):
    """What the batch needs from its caller before it commits."""

    async def confirm_went_back(
        self, entries: Sequence[BatchEntry[SourceT]]
    ) -> Sequence[BatchEntry[SourceT]]:
        """Of first deliveries found at or below the watermark, those still held by us."""
        ...

    async def dead_letter(self, results: Sequence[EntryResult[SourceT]]) -> Sequence[str] | None:
        """Store dead letters durably (called inside the transaction, before commit).

        Returns their dead-letter ids in the order given (what a park records), or None.
        """
        ...


class _Prepared:
    """An entry resolved and coerced: its kind, table, values and key.

    An insert coerced column by column (:meth:`TableModel.coerce_columns`) holds its
    run and its row's index instead of a dict of its own: the run is written from
    the columns, and ``values`` builds the dict only where one row goes alone.
    """

    __slots__ = ("_values", "index", "key", "kind", "model", "run")

    def __init__(
        self,
        kind: OpKind,
        model: TableModel,
        values: dict[str, Any] | None,
        key: dict[str, Any],
        run: CoercedColumns | None = None,
        index: int = 0,
    ) -> None:
        self.kind = kind
        self.model = model
        self._values = values
        self.key = key
        self.run = run
        self.index = index

    @property
    def values(self) -> dict[str, Any]:
        """The coerced row (insert) or SET values (update), by column key."""
        values = self._values
        if values is None:
            assert self.run is not None
            values = self._values = self.run.row(self.index)
        return values


#: Told of every statement that ran: (kind, table, seconds, entries it wrote).
StatementHook = Callable[[OpKind, str, float, int], None]


class _Refused(Exception):
    """The database refused an entry on the fast path: rerun the batch carefully."""


class _CopyFailed(Exception):
    """A ``COPY`` of an insert run failed: rerun the batch with ``INSERT`` statements."""


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, if it carries one."""
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_permanent(exc: BaseException) -> bool:
    """True when retrying the statement that raised ``exc`` cannot help."""
    code = sqlstate_of(exc)
    return code is not None and code[:2] in PERMANENT_SQLSTATE_CLASSES


class Executor:
    """Applies partition batches to one database (one tenant's schema)."""

    def __init__(
        self,
        engine: AsyncEngine,
        registry: ModelRegistry,
        *,
        max_attempts: int,
        park_entity: bool = False,
        on_statement: StatementHook | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.max_attempts = max_attempts
        #: ``on_dead_letter = "park_entity"``: a dead letter parks its entity (db.parking)
        self.park_entity = park_entity
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._insert_statements: dict[tuple[str, bool], Any] = {}
        # statement shapes compiled once, run on the session's asyncpg connection (db.driver)
        self._driver_statements = DriverStatements(engine.dialect)
        #: Times statements by operation and table (telemetry); None: no clock is read.
        self.on_statement = on_statement
        # (table, columns) -> monotonic time until which its inserts are not copied
        self._copy_paused: dict[tuple[str, tuple[str, ...]], float] = {}

    def prepare(self, operation: Operation, now: datetime | None = None) -> _Prepared:
        """Resolve and coerce an operation; raises a :class:`PermanentError` if it is bad.

        ``now`` is the apply time that tagged-union updates stamp (default: now).
        """
        model = self.registry.resolve(operation.tag, operation.kind)
        if operation.kind is OpKind.INSERT:
            return _Prepared(operation.kind, model, model.coerce_row(operation.values), {})
        if operation.kind is OpKind.UPDATE:
            key = model.key_from(operation.orig)
            changes = model.changes_for(operation.values, operation.orig, now or _utcnow())
            return _Prepared(operation.kind, model, changes, key)
        return _Prepared(operation.kind, model, {}, model.key_from(operation.values))

    async def apply(
        self, stream: str, entries: Sequence[BatchEntry[SourceT]], hooks: BatchHooks[SourceT]
    ) -> BatchResult[SourceT]:
        """Apply a batch in one transaction; raise :class:`TransientError` to retry it whole."""
        prepared = self._prepare_batch(entries)
        try:
            try:
                try:
                    return await self._run(stream, entries, prepared, hooks, careful=False)
                except _CopyFailed:
                    return await self._run(
                        stream, entries, prepared, hooks, careful=False, copy=False
                    )
            except _Refused:
                return await self._run(stream, entries, prepared, hooks, careful=True)
            except (DBAPIError, OSError, TimeoutError, TransientError):
                raise
            except Exception:
                # unexpected, and the fast path cannot say which entry raised it: the
                # careful path runs each entry alone and dead-letters the one at fault
                log.warning("batch of %s raised unexpectedly; rerunning entry by entry", stream)
                return await self._run(stream, entries, prepared, hooks, careful=True)
        except DBAPIError as exc:
            raise TransientError(f"database error: {exc.orig or exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"database unreachable: {exc}") from exc

    def _prepare_batch(
        self, entries: Sequence[BatchEntry[SourceT]]
    ) -> list[_Prepared | PermanentError]:
        """Each entry resolved and coerced, or the permanent error it is dead-lettered with.

        Runs of inserts into one table with the same columns are coerced column by
        column (:meth:`TableModel.coerce_rows`); a short run, or one with any bad value,
        is coerced row by row instead (once: the rest of a failed run is not retried
        column-wise), so an error names its entry.
        """
        prepared: list[_Prepared | PermanentError] = []
        now = _utcnow()  # one apply time per batch: its stamped updates still group
        i, n = 0, len(entries)
        while i < n:
            entry = entries[i]
            op = entry.operation
            if entry.error is not None or op is None or op.kind is not OpKind.INSERT:
                prepared.append(self._prepare_entry(entry, now))
                i += 1
                continue
            j = _insert_shape_end(entries, i)
            run = entries[i:j]
            coerced = self._coerce_run(run) if j - i >= COLUMNWISE_MIN_ROWS else None
            if coerced is None:
                prepared.extend(self._prepare_entry(e, now) for e in run)
            else:
                model, columns = coerced
                prepared.extend(
                    _Prepared(OpKind.INSERT, model, None, {}, columns, k) for k in range(j - i)
                )
            i = j
        return prepared

    def _coerce_run(
        self, run: Sequence[BatchEntry[SourceT]]
    ) -> tuple[TableModel, CoercedColumns] | None:
        first = run[0].operation
        assert first is not None
        try:
            model = self.registry.resolve(first.tag, OpKind.INSERT)
            columns = model.coerce_columns([e.operation.values for e in run])  # type: ignore[union-attr]
        except Exception:  # the row-by-row path meets it again and names the entry
            return None
        return None if columns is None else (model, columns)

    def _prepare_entry(
        self, entry: BatchEntry[SourceT], now: datetime
    ) -> _Prepared | PermanentError:
        if entry.error is not None or entry.operation is None:
            return entry.error or PermanentError("entry carries no operation")
        try:
            return self.prepare(entry.operation, now)
        except PermanentError as exc:
            return exc
        except Exception as exc:  # a bug or an input nobody foresaw: this entry only
            return InternalError(f"table tag {entry.operation.tag!r}", exc)

    async def _run(
        self,
        stream: str,
        entries: Sequence[BatchEntry[SourceT]],
        prepared: Sequence[_Prepared | PermanentError],
        hooks: BatchHooks[SourceT],
        *,
        careful: bool,
        copy: bool = True,
    ) -> BatchResult[SourceT]:
        result: BatchResult[SourceT] = BatchResult()
        handled = result.handled
        async with self.sessions() as session, session.begin():
            try:
                watermark = await lock_watermark_on(await _driver(session), stream)
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                    # held by another transaction: back off this partition only
                    raise PartitionBusy(stream) from exc
                raise DBAPIError("lock watermark", None, exc) from exc
            result.watermark = watermark
            # park_entity: entity -> entry id of the dead letter it waits behind
            parks: dict[str, str] | None = None
            new_parks: dict[str, str] = {}
            if self.park_entity:
                parks = await parking.lookup(
                    await _driver(session),
                    stream,
                    (e.global_id for e in entries if e.global_id is not None),
                )

            def dead(entry: BatchEntry[SourceT], error: DrainerDbError) -> None:
                handled.append(EntryResult(entry, Outcome.DEAD, error))
                gid = entry.global_id
                if parks is not None and gid is not None and gid not in parks:
                    parks[gid] = new_parks[gid] = entry.entry_id

            went_back: list[BatchEntry[SourceT]] = []
            i, n = 0, len(entries)
            while i < n:
                entry, prep = entries[i], prepared[i]
                if entry.position <= watermark:
                    if entry.first_delivery:
                        went_back.append(entry)
                    else:
                        handled.append(EntryResult(entry, Outcome.SKIPPED))
                    i += 1
                    continue
                if parks and entry.global_id in parks:
                    gid = entry.global_id
                    assert gid is not None
                    dead(entry, parking.EntryParked(stream, parks[gid], gid))
                    i += 1
                    continue
                if isinstance(prep, PermanentError):
                    dead(entry, prep)
                    i += 1
                    continue
                if prep.kind is OpKind.INSERT and not careful:
                    j = _until_parked(entries, parks, i, self._insert_run_end(prepared, i))
                    run_rows: Sequence[Any] = prepared[i:j]  # all _Prepared inserts
                    await self._insert_many(session, prep.model, run_rows, copy=copy)
                    handled.extend(EntryResult(e, Outcome.APPLIED) for e in entries[i:j])
                    i = j
                    continue
                if not careful and (
                    (prep.kind is OpKind.UPDATE and prep.values) or prep.kind is OpKind.DELETE
                ):
                    j = _until_parked(entries, parks, i, self._grouped_run_end(prepared, i))
                    run: Sequence[Any] = prepared[i:j]  # all _Prepared, of prep's kind
                    if j - i > 1 and await self._grouped(session, run):
                        handled.extend(EntryResult(e, Outcome.APPLIED) for e in entries[i:j])
                        i = j
                        continue
                try:
                    outcome = await self._execute_one(session, prep, careful=careful)
                except (ConstraintViolation, InternalError) as exc:
                    dead(entry, exc)
                    i += 1
                    continue
                if outcome is None:
                    miss = NoRowMatched(prep.model.name, prep.key)
                    if entry.attempt >= self.max_attempts:
                        dead(entry, miss)
                        i += 1
                        continue
                    result.retry, result.retry_error = entry, miss
                    break
                handled.append(EntryResult(entry, outcome))
                i += 1
            if went_back:
                handled[:0] = await self._went_back(went_back, hooks, watermark)
            last = max((r.entry.position for r in handled), default=watermark)
            if last > watermark:
                try:
                    await advance_watermark_on(await _driver(session), stream, last)
                except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    raise DBAPIError("advance watermark", None, exc) from exc
                result.watermark = last
            letters = result.dead
            if letters:
                ids = await hooks.dead_letter(letters)
                if parks:
                    await self._record_parks(session, stream, letters, ids, new_parks)
        return result

    async def _record_parks(
        self,
        session: AsyncSession,
        stream: str,
        letters: Sequence[EntryResult[SourceT]],
        ids: Sequence[str] | None,
        new_parks: dict[str, str],
    ) -> None:
        """Write the batch's parks (new heads, entries parked) in its transaction."""
        dead_ids = list(ids) if ids is not None else [""] * len(letters)
        heads: dict[str, str] = {}
        parked_new: dict[str, list[str]] = {gid: [] for gid in new_parks}
        appended: dict[str, list[str]] = {}
        for r, dead_id in zip(letters, dead_ids, strict=True):
            gid = r.entry.global_id
            if gid is None:
                continue
            if isinstance(r.error, parking.EntryParked):
                (parked_new[gid] if gid in new_parks else appended.setdefault(gid, [])).append(
                    dead_id
                )
            elif new_parks.get(gid) == r.entry.entry_id:
                heads[gid] = dead_id
        new = [(gid, head, heads.get(gid, ""), parked_new[gid]) for gid, head in new_parks.items()]
        try:
            await parking.record(await _driver(session), stream, new, appended)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DBAPIError("record parks", None, exc) from exc

    @staticmethod
    def _insert_run_end(prepared: Sequence[_Prepared | PermanentError], start: int) -> int:
        first = prepared[start]
        assert isinstance(first, _Prepared)
        end = start + 1
        run = first.run
        if run is not None:
            # rows of one column-wise run, consecutive (entries at or below the
            # watermark, or parked, may have cut it)
            index = first.index
            while end < len(prepared):
                nxt = prepared[end]
                if not (isinstance(nxt, _Prepared) and nxt.run is run):
                    break
                index += 1
                if nxt.index != index:
                    break
                end += 1
            return end
        columns = first.values.keys()
        while end < len(prepared):
            nxt = prepared[end]
            if not (
                isinstance(nxt, _Prepared)
                and nxt.kind is OpKind.INSERT
                and nxt.run is None
                and nxt.model is first.model
                and nxt.values.keys() == columns
            ):
                break
            end += 1
        return end

    @staticmethod
    def _grouped_run_end(prepared: Sequence[_Prepared | PermanentError], start: int) -> int:
        """End of the run of updates (or deletes) from ``start`` that can go as one
        statement: same kind, table and columns, distinct keys (so each row is changed
        or deleted once, as in sequence)."""
        first = prepared[start]
        assert isinstance(first, _Prepared)
        kind = first.kind
        # the statement takes values by column name: the same set of columns will do
        columns = first.values.keys()
        key_columns = first.key.keys()
        try:
            seen = {tuple(first.key.values())}
        except TypeError:  # an unhashable key value (an array): it goes alone
            return start + 1
        end = start + 1
        while end < len(prepared) and end - start < MAX_GROUPED_ROWS:
            nxt = prepared[end]
            if not (
                isinstance(nxt, _Prepared)
                and nxt.kind is kind
                and nxt.model is first.model
                and nxt.values.keys() == columns
                and nxt.key.keys() == key_columns
            ):
                break
            try:
                key = tuple(nxt.key.values())
                if key in seen:
                    break
            except TypeError:  # an unhashable key value (an array): it goes alone
                break
            seen.add(key)
            end += 1
        return end

    async def _grouped(self, session: AsyncSession, run: Sequence[_Prepared]) -> bool:
        """Apply a run of updates (or deletes) as one statement; False if their shape
        cannot be grouped.

        A key that matches no row, or any refusal, sends the batch down the careful
        path, which takes each entry on its own (retries, dead letters).
        """
        first = run[0]
        statements = self._driver_statements
        stmt = (
            statements.update_many(first.model, tuple(first.values), tuple(first.key))
            if first.kind is OpKind.UPDATE
            else statements.delete_many(first.model, tuple(first.key))
        )
        if stmt is None:
            return False
        started = time.perf_counter()
        try:
            touched = await execute(
                await _driver(session), stmt, stmt.array_args([(p.values, p.key) for p in run])
            )
        except DBAPIError as exc:
            # sqlstate None: asyncpg refused to encode a value; one by one will tell which
            if is_permanent(exc) or sqlstate_of(exc) is None:
                raise _Refused from exc
            raise
        if touched != len(run):
            raise _Refused
        if self.on_statement is not None:
            elapsed = time.perf_counter() - started
            self.on_statement(first.kind, first.model.name, elapsed, len(run))
        return True

    async def _went_back(
        self, entries: list[BatchEntry[SourceT]], hooks: BatchHooks[SourceT], watermark: Position
    ) -> list[EntryResult[SourceT]]:
        confirmed = {e.entry_id for e in await hooks.confirm_went_back(entries)}
        results = []
        for entry in entries:
            if entry.entry_id in confirmed:
                log.error(
                    "entry %s was delivered for the first time but sits at or below the "
                    "partition's watermark: the stream went back; dead-lettering it",
                    entry.entry_id,
                    extra=entry.log_fields,
                )
                # the id names a change this partition committed: most likely this one
                error = StreamWentBack(
                    f"first delivery of {entry.entry_id} is at or below the partition's "
                    f"applied watermark {watermark[0]}-{watermark[1]}: most likely applied "
                    "already (the stream went back, e.g. Redis restored from an older snapshot)"
                )
                results.append(EntryResult(entry, Outcome.DEAD, error))
            else:
                # taken over and applied by another consumer meanwhile
                results.append(EntryResult(entry, Outcome.SKIPPED))
        return results

    def _insert_statement(self, model: TableModel) -> Any:
        key = (model.name, model.conflict_columns is not None)
        stmt = self._insert_statements.get(key)
        if stmt is None:
            stmt = pg_insert(model.table)
            if model.conflict_columns:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(model.conflict_columns))
            self._insert_statements[key] = stmt
        return stmt

    async def _insert_many(
        self,
        session: AsyncSession,
        model: TableModel,
        rows: Sequence[_Prepared],
        *,
        copy: bool = False,
    ) -> None:
        """Write a run of inserts of one shape: one ``COPY``, or pipelined inserts."""
        started = time.perf_counter()
        columns = _run_columns(rows)
        copied = (
            copy
            and len(rows) >= COPY_MIN_ROWS
            and await self._copy_many(session, model, rows, columns)
        )
        if not copied:
            stmt = self._driver_statements.insert(model, columns)
            try:
                if stmt is None:
                    await session.execute(self._insert_statement(model), [r.values for r in rows])
                else:
                    await execute_many(await _driver(session), stmt, _records(stmt, rows))
            except DBAPIError as exc:
                if is_permanent(exc):
                    raise _Refused from exc
                raise
        if self.on_statement is not None:
            self.on_statement(OpKind.INSERT, model.name, time.perf_counter() - started, len(rows))

    async def _copy_many(
        self,
        session: AsyncSession,
        model: TableModel,
        rows: Sequence[_Prepared],
        columns: tuple[str, ...],
    ) -> bool:
        """Write an insert run with one ``COPY``; False when this shape is not copied.

        ``COPY`` has no ``ON CONFLICT``: a row that exists already (or any refusal)
        fails it, which aborts the transaction, so :class:`_CopyFailed` reruns the
        batch with ``INSERT ... ON CONFLICT DO NOTHING`` statements, whose outcome
        is the same. A shape that met a conflict is not copied for ``COPY_PAUSE_S``.
        """
        shape = (model.name, columns)
        paused_until = self._copy_paused.get(shape)
        if paused_until is not None:
            if time.monotonic() < paused_until:
                return False
            del self._copy_paused[shape]
        stmt = self._driver_statements.copy(model, columns)
        if stmt is None:
            return False
        try:
            await copy_records(await _driver(session), stmt, _records(stmt.insert, rows))
        except DBAPIError as exc:
            code = sqlstate_of(exc)
            if code is not None and not is_permanent(exc):
                raise  # the database is unwell: the whole batch retries as it would anyway
            if code is None:
                # a value the binary copy cannot encode (a type asyncpg has no binary
                # codec for): this shape goes as INSERT statements from now on
                self._copy_paused[shape] = float("inf")
            elif code == UNIQUE_VIOLATION:
                self._copy_paused[shape] = time.monotonic() + COPY_PAUSE_S
            # any other refusal is one bad row: the rerun finds it, the shape stays copied
            raise _CopyFailed from exc
        return True

    async def _execute_one(
        self, session: AsyncSession, prep: _Prepared, *, careful: bool
    ) -> Outcome | None:
        """Run one operation; None when an update or delete matched no row."""
        started = time.perf_counter()
        outcome = await self._execute_one_untimed(session, prep, careful=careful)
        if self.on_statement is not None:
            self.on_statement(prep.kind, prep.model.name, time.perf_counter() - started, 1)
        return outcome

    async def _execute_one_untimed(
        self, session: AsyncSession, prep: _Prepared, *, careful: bool
    ) -> Outcome | None:
        if not careful:
            try:
                return await self._statement(session, prep)
            except DBAPIError as exc:
                if is_permanent(exc):
                    raise _Refused from exc
                raise
        try:
            async with session.begin_nested():
                # SQLAlchemy emits the SAVEPOINT when the connection is first asked for;
                # the statement goes straight to the driver, so ask now
                await session.connection()
                return await self._statement(session, prep)
        except DBAPIError as exc:
            if not is_permanent(exc):
                raise
            code = sqlstate_of(exc)
            if (
                prep.kind is OpKind.INSERT
                and code == UNIQUE_VIOLATION
                and not prep.model.conflict_columns
            ):
                return Outcome.EXISTED
            raise ConstraintViolation(prep.model.name, code, _db_message(exc)) from exc
        except (OSError, TimeoutError):
            raise
        except Exception as exc:  # e.g. a value no bind processor can encode
            raise InternalError(prep.model.name, exc) from exc

    async def _statement(self, session: AsyncSession, prep: _Prepared) -> Outcome | None:
        table = prep.model.table
        statements = self._driver_statements
        if prep.kind is OpKind.INSERT:
            stmt = statements.insert(prep.model, tuple(prep.values))
            if stmt is None:
                await session.execute(self._insert_statement(prep.model), [prep.values])
            else:
                await execute(await _driver(session), stmt, stmt.args(prep.values))
            return Outcome.APPLIED
        if prep.kind is OpKind.UPDATE:
            if not prep.values:
                where = _key_clause(table, prep.key)
                found = await session.scalar(select(exists().where(where)))
                return Outcome.APPLIED if found else None
            stmt = statements.update(prep.model, tuple(prep.values), tuple(prep.key))
        else:
            stmt = statements.delete(prep.model, tuple(prep.key))
        if stmt is not None:
            touched = await execute(await _driver(session), stmt, stmt.args(prep.values, prep.key))
            return Outcome.APPLIED if touched else None
        # a shape SQLAlchemy computes values for (a Python-side default or onupdate)
        where = _key_clause(table, prep.key)
        if prep.kind is OpKind.UPDATE:
            res = await session.execute(update(table).where(where).values(prep.values))
        else:
            res = await session.execute(delete(table).where(where))
        return Outcome.APPLIED if res.rowcount else None  # type: ignore[attr-defined]


#: ``Session.info`` key of the asyncpg connection under the session's transaction
#: (each session of the executor runs one transaction, on one connection).
_DRIVER_INFO_KEY = "drainer.driver_connection"


async def _driver(session: AsyncSession) -> Any:
    driver = session.info.get(_DRIVER_INFO_KEY)
    if driver is None:
        driver = await begin_on_driver(session)
        session.info[_DRIVER_INFO_KEY] = driver
    return driver


def _insert_shape_end(entries: Sequence[BatchEntry[SourceT]], start: int) -> int:
    """End of the run of well-formed inserts from ``start`` with its tag and columns."""
    first = entries[start].operation
    assert first is not None
    tag, columns = first.tag, first.values.keys()
    end = start + 1
    while end < len(entries):
        entry = entries[end]
        op = entry.operation
        if (
            entry.error is not None
            or op is None
            or op.kind is not OpKind.INSERT
            or op.tag != tag
            or op.values.keys() != columns
        ):
            break
        end += 1
    return end


def _run_columns(rows: Sequence[_Prepared]) -> tuple[str, ...]:
    """The column keys of an insert run (every row has the same)."""
    run = rows[0].run
    return run.keys if run is not None else tuple(rows[0].values)


def _records(stmt: DriverStatement, rows: Sequence[_Prepared]) -> Sequence[Sequence[Any]]:
    """The positional arguments of each row of an insert run, from its columns when
    the run was coerced column by column (its rows consecutive, see ``_insert_run_end``)."""
    first = rows[0]
    if first.run is not None:
        return stmt.column_records(first.run.columns, first.index, first.index + len(rows))
    return [stmt.args(r.values) for r in rows]


def _until_parked(
    entries: Sequence[BatchEntry[SourceT]], parks: dict[str, str] | None, start: int, end: int
) -> int:
    """``end``, or the first entry after ``start`` of a parked entity (it goes alone)."""
    if not parks:
        return end
    for k in range(start + 1, end):
        if entries[k].global_id in parks:
            return k
    return end


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _key_clause(table: Table, key: dict[str, Any]) -> Any:
    return and_(*(table.c[name] == value for name, value in key.items()))


def _db_message(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    # asyncpg messages arrive as "<class 'asyncpg...'>: message"; keep the message
    return text.split(">: ", 1)[-1].strip()


async def execute_one(executor: Executor, operation: Operation) -> Outcome:
    """Apply one operation in its own transaction, outside any stream (no fence).

    Raises :class:`PermanentError` subclasses for bad operations,
    :class:`NoRowMatched` when an update or delete finds no row, and
    :class:`TransientError` when the database cannot be used right now.
    """
    prep = executor.prepare(operation)
    try:
        async with executor.sessions() as session, session.begin():
            outcome = await executor._execute_one(session, prep, careful=True)
    except DBAPIError as exc:
        raise TransientError(f"database error: {exc.orig or exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise TransientError(f"database unreachable: {exc}") from exc
    if outcome is None:
        raise NoRowMatched(prep.model.name, prep.key)
    return outcome
