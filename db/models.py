"""Target tables: which table a wire tag names, its key columns, its coercers.

A :class:`ModelRegistry` is built once at start-up, either by reflecting the
database (automap, so Hyperswitch's schema needs no hand-written models) or
from the user's declarative classes. It resolves each entry's table tag to a
:class:`TableModel`, which turns the entry's JSON values into bindable ones.

Columns are named by their database names everywhere (wire data, ``keys``
settings, ``key_columns``, ``conflict_columns``, error messages) except in the
dicts the coercing methods return: those are keyed by ``Column.key`` so that
``table.c[k]`` and ``insert(table).values(row)`` take them directly. The two
differ only for a column declared with an explicit ``key=``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.automap import AutomapBase, automap_base
from sqlalchemy.orm import Mapper, registry

from drainer.db.coercion import Coercer, coercer_for
from drainer.db.defaults import OMIT, insert_default
from drainer.db.dialects import NOT_MINE, Dialect, FlatStruct, TaggedUnion, ValueShape, load_dialect
from drainer.db.errors import (
    CoercionError,
    MalformedOperation,
    MissingKey,
    UnknownColumn,
    UnknownTable,
)
from drainer.db.fence import WATERMARK_TABLE
from drainer.db.operations import OpKind
from drainer.db.parking import PARKED_TABLE

log = logging.getLogger("drainer.db")

#: Dialects bound when none are named: Hyperswitch's, whose rules bind only to
#: tables that have every column they name.
DEFAULT_DIALECTS = ("hyperswitch",)

#: Tables the drainer owns in the target database: never an operation's target.
DRAINER_TABLES = frozenset({WATERMARK_TABLE, PARKED_TABLE})

#: Suffix Hyperswitch appends to an update's table tag (``address_update``).
UPDATE_SUFFIX = "_update"

#: How many table names an UnknownTable message lists.
SHOWN_TABLE_NAMES = 12

_COERCION_FAILURES = (ValueError, TypeError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class CoercedColumns:
    """Inserted rows of one shape, coerced: one list of values per column."""

    #: the column keys, in the rows' order
    keys: tuple[str, ...]
    #: column key -> its value in each row
    columns: Mapping[str, list[Any]]
    #: how many rows
    count: int

    def row(self, index: int) -> dict[str, Any]:
        """Row ``index`` as :meth:`TableModel.coerce_row` returns it."""
        columns = self.columns
        return {key: columns[key][index] for key in self.keys}


@dataclass(slots=True)
class TableModel:
    """One target table: its mapped class, key columns and value coercion."""

    name: str
    model: type[Any] | None
    table: sa.Table
    key_columns: tuple[str, ...]
    conflict_columns: tuple[str, ...] | None
    null_sets_null: bool = False
    #: the tagged-union form of this table's ``update_data``, if a dialect gives one
    union: TaggedUnion | None = None
    #: an insert's null means the column's DEFAULT (diesel's rule), not NULL
    insert_null_is_default: bool = False
    value_shapes: tuple[ValueShape, ...] = ()
    #: the struct an inserted row is, if a dialect gives one (required fields, no others)
    flat_insert: FlatStruct | None = None
    #: the struct a flat ``update_data`` is, if a dialect gives one
    flat_update: FlatStruct | None = None
    # column name -> (Column.key, coercer); built once, read per value.
    _columns: dict[str, tuple[str, Coercer]] = field(init=False, repr=False, compare=False)
    _key_sources: tuple[tuple[str, str, Coercer], ...] = field(
        init=False, repr=False, compare=False
    )
    # column name -> what an insert's null becomes: None (NULL), a column's default
    # (``insert_null_is_default``), or OMIT (left to the database)
    _insert_nulls: dict[str, Any] = field(init=False, repr=False, compare=False)
    _omits: bool = field(init=False, repr=False, compare=False)
    # the keys of the columns whose insert null is OMIT
    _omitted_keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {col.name: col for col in self.table.columns}
        coercers = {
            name: _shaped(coercer_for(col), self.name, col, self.value_shapes)
            for name, col in by_name.items()
        }
        self._columns = {name: (col.key, coercers[name]) for name, col in by_name.items()}
        self._key_sources = tuple(
            (name, by_name[name].key, coercers[name]) for name in self.key_columns
        )
        self._insert_nulls = {
            name: insert_default(col, coercers[name]) if self.insert_null_is_default else None
            for name, col in by_name.items()
        }
        self._omits = any(null is OMIT for null in self._insert_nulls.values())
        self._omitted_keys = frozenset(
            by_name[name].key for name, null in self._insert_nulls.items() if null is OMIT
        )

    def coerce_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce an inserted row; every column must exist, nulls stay SQL NULL
        (or DEFAULT, see ``insert_null_is_default``).

        A table with a ``flat_insert`` struct first has the row checked by it.
        """
        if self.flat_insert is not None:
            values = self._flat_checked(self.flat_insert, values)
        columns, nulls = self._columns, self._insert_nulls
        # One comprehension per row (the common case); any failure takes the loop
        # below, which names the column at fault.
        try:
            fast = {
                columns[name][0]: nulls[name] if value is None else columns[name][1](value)
                for name, value in values.items()
            }
        except (KeyError, *_COERCION_FAILURES):
            pass
        else:
            if self._omits and OMIT in fast.values():  # the database computes these
                return {key: value for key, value in fast.items() if value is not OMIT}
            return fast
        row: dict[str, Any] = {}
        for name, value in values.items():
            try:
                key, coerce = columns[name]
            except KeyError:
                raise UnknownColumn(self.name, name) from None
            if value is None:
                if nulls[name] is not OMIT:
                    row[key] = nulls[name]
                continue
            try:
                row[key] = coerce(value)
            except _COERCION_FAILURES as exc:
                raise CoercionError(self.name, name, str(exc)) from exc
        return row

    def coerce_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
        """Coerce inserted rows column by column (rows with other columns than the first: None).

        The same values as :meth:`coerce_row` per row. None when any row would fail, or
        the table checks rows against a struct: then :meth:`coerce_row`, row by row,
        names the row and column at fault.
        """
        by_key = self._columnwise(rows)
        if by_key is None:
            return None
        keys = tuple(by_key)
        # every list is one per column or one per row: strict would check that per row
        rows_of = zip(*by_key.values(), strict=False)
        out = [dict(zip(keys, values, strict=False)) for values in rows_of]
        if self._omits:  # the database computes these
            return [{k: v for k, v in row.items() if v is not OMIT} for row in out]
        return out

    def coerce_columns(self, rows: Sequence[Mapping[str, Any]]) -> CoercedColumns | None:
        """Coerce inserted rows of one shape column by column, into one list per column.

        Each column's coercer and null are found once, not once per row, and no dict
        is built per row: an insert run goes from these lists straight into ``COPY``
        records. None where :meth:`coerce_rows` is None, and when a column is left to
        its DEFAULT in some rows but not in others (the rows differ in shape).
        """
        by_key = self._columnwise(rows)
        if by_key is None:
            return None
        if self._omits:
            for key in self._omitted_keys.intersection(by_key):
                values = by_key[key]
                omitted = sum(1 for value in values if value is OMIT)
                if omitted == len(values):
                    del by_key[key]  # null in every row: the database computes it
                elif omitted:
                    return None
        if not by_key:  # every column left to the database: no record to write
            return None
        return CoercedColumns(tuple(by_key), by_key, len(rows))

    def _columnwise(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]] | None:
        """Column key -> its coerced value per row (OMIT where left to the database)."""
        if self.flat_insert is not None or not rows:
            return None
        width = len(rows[0])
        # each row has every column of the first (or KeyError below) and no other
        if any(len(row) != width for row in rows):
            return None
        columns, nulls = self._columns, self._insert_nulls
        by_key: dict[str, list[Any]] = {}
        try:
            for name in rows[0]:
                key, coerce = columns[name]
                null = nulls[name]
                by_key[key] = [null if (v := row[name]) is None else coerce(v) for row in rows]
        except (KeyError, *_COERCION_FAILURES):
            return None
        return by_key

    def coerce_changes(self, update_data: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce an update's SET values; a null leaves its column unchanged unless
        the table is configured so that null sets SQL NULL."""
        columns = self._columns
        if not self.null_sets_null and columns.keys() >= update_data.keys():
            try:  # the common case in one comprehension; a failure names its column below
                return {
                    columns[name][0]: columns[name][1](value)
                    for name, value in update_data.items()
                    if value is not None
                }
            except (KeyError, *_COERCION_FAILURES):
                pass
        changes: dict[str, Any] = {}
        for name, value in update_data.items():
            try:
                key, coerce = columns[name]
            except KeyError:
                raise UnknownColumn(self.name, name) from None
            if value is None:
                if self.null_sets_null:
                    changes[key] = None
                continue
            try:
                changes[key] = coerce(value)
            except _COERCION_FAILURES as exc:
                raise CoercionError(self.name, name, str(exc)) from exc
        return changes

    def changes_for(
        self, update_data: Mapping[str, Any], orig: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """The coerced SET values of an update, flat (checked by the table's
        ``flat_update`` struct, if any) or in the table's tagged-union form."""
        union = self.union
        if union is not None and union.is_tagged(update_data):
            (tag,) = update_data
            if tag not in self._columns:
                try:
                    changes = union.changeset(update_data, orig, now)
                except MalformedOperation as exc:
                    raise MalformedOperation(f"{self.name}: {exc}") from None
                return self.coerce_set(changes)
        if self.flat_update is not None:
            # its nulls stay for coerce_changes: skipped, or NULL if null_sets_null
            update_data = self._flat_checked(self.flat_update, update_data)
        return self.coerce_changes(update_data)

    def _flat_checked(self, struct: FlatStruct, values: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return struct.check(values)
        except MalformedOperation as exc:
            raise MalformedOperation(f"{self.name}: {exc}") from None

    def coerce_set(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce a computed changeset: every column is set, None is SQL NULL."""
        columns = self._columns
        coerced: dict[str, Any] = {}
        for name, value in changes.items():
            try:
                key, coerce = columns[name]
            except KeyError:
                raise UnknownColumn(self.name, name) from None
            if value is None:
                coerced[key] = None
                continue
            try:
                coerced[key] = coerce(value)
            except _COERCION_FAILURES as exc:
                raise CoercionError(self.name, name, str(exc)) from exc
        return coerced

    def key_from(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The coerced key column values found in ``data``; other fields are ignored."""
        if not self._key_sources:
            raise MissingKey(
                self.name,
                f"table {self.name} has no primary key; set [tables.keys] {self.name} = [...]",
            )
        key: dict[str, Any] = {}
        for name, column_key, coerce in self._key_sources:
            value = data.get(name)
            if value is None:
                state = "null" if name in data else "missing"
                raise MissingKey(self.name, f"key column {name!r} is {state}")
            try:
                key[column_key] = coerce(value)
            except _COERCION_FAILURES as exc:
                raise CoercionError(self.name, name, str(exc)) from exc
        return key


class ModelRegistry:
    """Every target table by name, and the tag aliases that lead to them."""

    def __init__(self, tables: Mapping[str, TableModel], aliases: Mapping[str, str]) -> None:
        self.tables: dict[str, TableModel] = dict(tables)
        self.aliases: dict[str, str] = dict(aliases)
        # Only hits are cached: misses come from bad entries and could be unbounded.
        self._resolved: dict[tuple[str, OpKind], TableModel] = {}

    def resolve(self, tag: str, kind: OpKind) -> TableModel:
        """The table an operation's tag names; raise :class:`UnknownTable` if none."""
        try:
            return self._resolved[tag, kind]
        except KeyError:
            pass
        candidates = [tag]
        if kind is OpKind.UPDATE and tag.endswith(UPDATE_SUFFIX):
            candidates.insert(0, tag[: -len(UPDATE_SUFFIX)])
        for candidate in candidates:
            found = self.tables.get(self.aliases.get(candidate, candidate))
            if found is not None:
                self._resolved[tag, kind] = found
                return found
        raise UnknownTable(tag, self._known_tables())

    def _known_tables(self) -> str:
        names = sorted(self.tables)
        shown = ", ".join(names[:SHOWN_TABLE_NAMES])
        if len(names) > SHOWN_TABLE_NAMES:
            shown += f", ... {len(names)} in all"
        return f"known tables: {shown or '(none)'}"

    @classmethod
    async def reflect(
        cls,
        engine: AsyncEngine,
        *,
        aliases: Mapping[str, str] | None = None,
        keys: Mapping[str, Sequence[str]] | None = None,
        null_sets_null: Iterable[str] = (),
        dialects: Sequence[Dialect | str] | None = None,
        schema: str | None = None,
        exclude: Iterable[str] = DRAINER_TABLES,
    ) -> ModelRegistry:
        """Reflect and automap every table of ``schema`` (default: the connection's
        default schema, i.e. the first of its ``search_path``)."""
        skipped = frozenset(exclude)
        async with engine.connect() as conn:
            metadata, classes = await conn.run_sync(_automap, schema, skipped)
        found = [(table, classes.get(table)) for table in metadata.tables.values()]
        return cls._build(found, aliases, keys, null_sets_null, dialects)

    @classmethod
    def from_models(
        cls,
        models: Iterable[type[Any]],
        *,
        aliases: Mapping[str, str] | None = None,
        keys: Mapping[str, Sequence[str]] | None = None,
        null_sets_null: Iterable[str] = (),
        dialects: Sequence[Dialect | str] | None = None,
        exclude: Iterable[str] = DRAINER_TABLES,
    ) -> ModelRegistry:
        """Build from the user's ORM-mapped (declarative) classes."""
        skipped = frozenset(exclude)
        found: dict[sa.Table, type[Any]] = {}
        for model in models:
            mapper = sa.inspect(model, raiseerr=False)
            if not isinstance(mapper, Mapper):
                raise TypeError(f"{model!r} is not an ORM-mapped class")
            # Single-table inheritance: the class that owns the table stands for it.
            while mapper.single and mapper.inherits is not None:
                mapper = mapper.inherits
            table = mapper.local_table
            if not isinstance(table, sa.Table):
                raise ValueError(f"{model.__name__} is not mapped to a single table")
            if table.name not in skipped:
                found.setdefault(table, mapper.class_)
        if not found:
            raise ValueError("no ORM-mapped classes given")
        for table in found:
            _json_null_is_sql_null(table)
        return cls._build(list(found.items()), aliases, keys, null_sets_null, dialects)

    @classmethod
    def from_module(
        cls,
        module_path: str,
        *,
        aliases: Mapping[str, str] | None = None,
        keys: Mapping[str, Sequence[str]] | None = None,
        null_sets_null: Iterable[str] = (),
        dialects: Sequence[Dialect | str] | None = None,
        exclude: Iterable[str] = DRAINER_TABLES,
    ) -> ModelRegistry:
        """Import ``module_path`` (dotted) and build from every mapped class in it."""
        try:
            module = importlib.import_module(module_path)
        except ImportError as exc:
            raise ValueError(f"cannot import models module {module_path!r}: {exc}") from exc
        models = _mapped_classes(vars(module).values())
        if not models:
            raise ValueError(
                f"module {module_path!r} defines no ORM-mapped classes "
                "(expected declarative models, e.g. subclasses of a DeclarativeBase)"
            )
        return cls.from_models(
            models,
            aliases=aliases,
            keys=keys,
            null_sets_null=null_sets_null,
            dialects=dialects,
            exclude=exclude,
        )

    @classmethod
    def _build(
        cls,
        found: Sequence[tuple[sa.Table, type[Any] | None]],
        aliases: Mapping[str, str] | None,
        keys: Mapping[str, Sequence[str]] | None,
        null_sets_null: Iterable[str],
        dialects: Sequence[Dialect | str] | None,
    ) -> ModelRegistry:
        by_name: dict[str, tuple[sa.Table, type[Any] | None]] = {}
        for table, model in found:
            if table.name in by_name:
                raise ValueError(f"two tables are named {table.name!r}; table names must be unique")
            by_name[table.name] = (table, model)
        key_names = _validated_keys(keys or {}, by_name)
        nulling = set(null_sets_null)
        unknown = sorted(nulling - by_name.keys())
        if unknown:
            raise ValueError(f"null_sets_null: unknown table {unknown[0]!r}")
        bound = _bind_dialects(_load_dialects(dialects), by_name)
        tables: dict[str, TableModel] = {}
        for name, (table, model) in by_name.items():
            primary = tuple(col.name for col in table.primary_key.columns)
            rules = bound.tables.get(name, _Bound())
            tables[name] = TableModel(
                name=name,
                model=model,
                table=table,
                key_columns=key_names.get(name, rules.keys or primary),
                conflict_columns=primary or None,
                null_sets_null=name in nulling,
                union=rules.union,
                insert_null_is_default=rules.insert_null_is_default,
                value_shapes=bound.shapes,
                flat_insert=rules.flat_insert,
                flat_update=rules.flat_update,
            )
        return cls(tables, _effective_aliases(aliases or {}, bound.aliases, tables))


@dataclass(slots=True)
class _Bound:
    """A dialect's rules that fit one table."""

    keys: tuple[str, ...] = ()
    union: TaggedUnion | None = None
    insert_null_is_default: bool = False
    flat_insert: FlatStruct | None = None
    flat_update: FlatStruct | None = None


@dataclass(slots=True)
class _Binding:
    """What the dialects bound: rules per table, aliases, value shapes."""

    tables: dict[str, _Bound] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    shapes: tuple[ValueShape, ...] = ()


def _load_dialects(dialects: Sequence[Dialect | str] | None) -> list[Dialect]:
    chosen = DEFAULT_DIALECTS if dialects is None else dialects
    return [d if isinstance(d, Dialect) else load_dialect(d) for d in chosen]


def _bind_dialects(
    dialects: Sequence[Dialect], by_name: Mapping[str, tuple[sa.Table, Any]]
) -> _Binding:
    """Each dialect's rules for the tables that exist and have every column the
    rules name (a later dialect's rule for a table replaces an earlier one's)."""
    bound = _Binding()
    shapes: list[ValueShape] = []
    for dialect in dialects:
        bound.aliases.update(dialect.aliases)
        shapes.extend(dialect.value_shapes)
        for name in sorted(dialect.tables()):
            if name not in by_name:
                continue
            columns = {col.name for col in by_name[name][0].columns}
            missing = sorted(dialect.columns_needed(name) - columns)
            if missing:
                log.warning(
                    "dialect %s: table %s lacks column(s) %s its rules name; "
                    "the table keeps the generic rules",
                    dialect.name,
                    name,
                    ", ".join(missing),
                )
                continue
            rules = bound.tables.setdefault(name, _Bound())
            if name in dialect.keys:
                rules.keys = tuple(dialect.keys[name])
            if name in dialect.updates:
                rules.union = dialect.updates[name]
            if name in dialect.insert_null_is_default:
                rules.insert_null_is_default = True
            if name in dialect.flat_inserts:
                rules.flat_insert = dialect.flat_inserts[name]
            if name in dialect.flat_updates:
                rules.flat_update = dialect.flat_updates[name]
    bound.shapes = tuple(shapes)
    return bound


def _shaped(
    coerce: Coercer, table: str, column: sa.Column[Any], shapes: Sequence[ValueShape]
) -> Coercer:
    """``coerce`` that first unwraps the value shapes meant for the column."""
    family = _type_family(column.type)
    unwraps = tuple(s.unwrap for s in shapes if s.applies_to(table, column.name, family))
    if not unwraps:
        return coerce

    def coerce_shaped(value: Any) -> Any:
        if type(value) is dict:
            for unwrap in unwraps:
                inner = unwrap(value)
                if inner is not NOT_MINE:
                    return coerce(inner)
        return coerce(value)

    return coerce_shaped


def _type_family(type_: Any) -> str | None:
    if isinstance(type_, sa.TypeDecorator):
        return None
    if isinstance(type_, sa.LargeBinary):
        return "bytea"
    if isinstance(type_, sa.String) and not isinstance(type_, sa.Enum):
        return "text"
    return None


def _validated_keys(
    keys: Mapping[str, Sequence[str]], by_name: Mapping[str, tuple[sa.Table, Any]]
) -> dict[str, tuple[str, ...]]:
    """Configured key columns, checked: any unknown name is a start-up error."""
    result: dict[str, tuple[str, ...]] = {}
    for name, columns in keys.items():
        if name not in by_name:
            raise ValueError(f"keys: unknown table {name!r}")
        if isinstance(columns, str) or not columns:
            raise ValueError(f"keys: table {name!r} needs a non-empty list of column names")
        known = {col.name for col in by_name[name][0].columns}
        for column in columns:
            if column not in known:
                raise ValueError(f"keys: table {name!r} has no column {column!r}")
        if len(set(columns)) != len(columns):
            raise ValueError(f"keys: table {name!r} lists a column twice: {list(columns)}")
        result[name] = tuple(columns)
    return result


def _effective_aliases(
    user: Mapping[str, str], dialect: Mapping[str, str], tables: Mapping[str, TableModel]
) -> dict[str, str]:
    """The dialects' aliases overridden by the user's.

    A dialect's alias is dropped when its target is absent or its tag is itself
    a table; a bad user alias is an error.
    """
    aliases = {
        tag: target for tag, target in dialect.items() if target in tables and tag not in tables
    }
    for tag, target in user.items():
        if target not in tables:
            raise ValueError(f"alias {tag!r} points at unknown table {target!r}")
        aliases[tag] = target
    return aliases


def _no_relationship(*_args: Any, **_kwargs: Any) -> None:
    # The drainer writes rows by key; automapped relationships would only add
    # mapper configuration work and name-clash warnings on foreign keys.
    return None


def _json_none_on_reflect(
    _inspector: sa.Inspector, _table: sa.Table, column: ReflectedColumn
) -> None:
    _set_json_none_as_null(column["type"])


def _set_json_none_as_null(type_: Any) -> None:
    if isinstance(type_, sa.ARRAY):
        type_ = type_.item_type
    if isinstance(type_, sa.JSON):
        type_.none_as_null = True


def _json_null_is_sql_null(table: sa.Table) -> None:
    """Make a Python None in a JSON column SQL NULL, not the JSON literal ``null``.

    Types may be shared between a user's columns, so each gets its own copy.
    """
    for column in table.columns:
        if isinstance(column.type, sa.JSON) and not column.type.none_as_null:
            json_type = column.type.copy()
            json_type.none_as_null = True
            column.type = json_type


def _automap(
    conn: sa.Connection, schema: str | None, skipped: frozenset[str]
) -> tuple[sa.MetaData, dict[sa.Table, type[Any]]]:
    """Reflect the tables and automap each one that has a primary key."""
    metadata = sa.MetaData()
    event.listen(metadata, "column_reflect", _json_none_on_reflect)
    metadata.reflect(conn, schema=schema, only=lambda name, _meta: name not in skipped)
    base: type[AutomapBase] = automap_base(metadata=metadata)
    base.prepare(generate_relationship=_no_relationship)  # type: ignore[arg-type]
    return metadata, {model.__table__: model for model in base.classes}


def _mapped_classes(namespace: Iterable[Any]) -> list[type[Any]]:
    """Mapped classes in a module's namespace, and those of any registry found there."""
    found: dict[type[Any], None] = {}
    for value in namespace:
        if not isinstance(value, type):
            continue
        if isinstance(sa.inspect(value, raiseerr=False), Mapper):
            found[value] = None
        owner = getattr(value, "registry", None)
        if isinstance(owner, registry):
            for mapper in sorted(owner.mappers, key=lambda m: m.class_.__qualname__):
                found[mapper.class_] = None
    return list(found)
