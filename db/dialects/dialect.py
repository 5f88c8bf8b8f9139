"""A dialect: what one producer's wire format means beyond the generic rules.

The generic path reads flat rows and changesets. A producer with conventions of
its own (Hyperswitch's router is the first) is described by a :class:`Dialect`:
the table tags it writes, the columns its updates find rows by, what a ``null``
in its inserts means, the shapes its values arrive in, its tagged-union
updates, and the flat structs its inserts and flat updates are. The model
registry binds a dialect's rules to the tables that exist and have every
column the rules name; a table they do not fit keeps the generic rules, with
one warning.

Dialects are named in ``[tables] dialects``: a built-in name (``hyperswitch``)
or ``package.module:ATTRIBUTE`` of the user's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drainer.db.dialects.flat import FlatStruct
from drainer.db.dialects.tagged import TaggedUnion

#: Marker a value shape returns for a value that is not its shape.
NOT_MINE: Any = object()

#: Type families a value shape can apply to (see :func:`type_family`).
TYPE_FAMILIES = frozenset({"bytea", "text"})


@dataclass(frozen=True, slots=True)
class ValueShape:
    """A wrapper shape a producer writes values in, e.g. ``{"inner": [...]}``.

    ``unwrap`` gets a JSON object and returns the wrapped value, or
    :data:`NOT_MINE`; it runs only for objects arriving at a column of
    ``family``, so plain values cost nothing.
    """

    name: str
    family: str
    unwrap: Callable[[dict[str, Any]], Any]
    #: ``table.column`` names the shape is for; None: every column of the family
    columns: frozenset[str] | None = None

    def applies_to(self, table: str, column: str, family: str | None) -> bool:
        """Whether values of ``table.column`` (of type ``family``) may come in this shape."""
        if family != self.family:
            return False
        return self.columns is None or f"{table}.{column}" in self.columns

    def __post_init__(self) -> None:
        if self.family not in TYPE_FAMILIES:
            raise ValueError(f"value shape {self.name}: family must be one of {TYPE_FAMILIES}")


@dataclass(frozen=True, slots=True)
class Dialect:
    """One producer's conventions, as data (see the module docstring)."""

    name: str
    #: wire tag -> table name, for tags that are not the table's name
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: table -> the columns updates and deletes find their row by
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: tables whose insert ``null`` means the column's DEFAULT (diesel's rule)
    insert_null_is_default: frozenset[str] = frozenset()
    #: table -> its tagged-union ``update_data``
    updates: Mapping[str, TaggedUnion] = field(default_factory=dict)
    value_shapes: tuple[ValueShape, ...] = ()
    #: table -> the struct its inserted rows are (required fields, no others)
    flat_inserts: Mapping[str, FlatStruct] = field(default_factory=dict)
    #: table -> the struct its flat ``update_data`` is (not its tagged-union form)
    flat_updates: Mapping[str, FlatStruct] = field(default_factory=dict)

    def tables(self) -> set[str]:
        """Every table the dialect has a rule for."""
        return (
            set(self.keys)
            | set(self.insert_null_is_default)
            | set(self.updates)
            | set(self.flat_inserts)
            | set(self.flat_updates)
        )

    def columns_needed(self, table: str) -> set[str]:
        """The columns a table must have for the dialect's rules to fit it."""
        needed = set(self.keys.get(table, ()))
        union = self.updates.get(table)
        if union is not None:
            needed |= union.columns()
        for structs in (self.flat_inserts, self.flat_updates):
            struct = structs.get(table)
            if struct is not None:
                needed |= struct.columns()
        return needed


#: Dialects known by name.
BUILT_IN = {"hyperswitch": "drainer.db.dialects.hyperswitch:DIALECT"}


def load_dialect(reference: str) -> Dialect:
    """The dialect a ``[tables] dialects`` entry names; ValueError saying why not."""
    path = BUILT_IN.get(reference, reference)
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        known = ", ".join(sorted(BUILT_IN))
        raise ValueError(
            f"dialect {reference!r}: expected a built-in name ({known}) or 'package.module:NAME'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"dialect {reference!r}: cannot import {module_name!r}: {exc}") from exc
    found = getattr(module, attribute, None)
    if not isinstance(found, Dialect):
        raise ValueError(
            f"dialect {reference!r}: {module_name}.{attribute} is not a db.dialects.Dialect"
        )
    return found
