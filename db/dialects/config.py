"""A user's tagged-union updates declared in configuration (``[tables.tagged_updates]``).

One table per target table; TOML has no null, so columns set to SQL NULL are
listed in ``nulls``::

    [tables.tagged_updates.orders]
    enum = "OrderUpdate"
    stamps = ["modified_at"]

    [tables.tagged_updates.orders.variants]
    StatusUpdate = { fields = ["status!", "reason>cancel_reason"], sets = { updated_by = "" } }
    Cancel = { fields = ["note?"], nulls = ["shipped_at"], stamps = ["cancelled_at"] }

Derived columns need code: declare those in a module (``[tables] dialects``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drainer.db.dialects.dialect import Dialect
from drainer.db.dialects.tagged import TaggedUnion, Variant

#: Keys a table's entry may have, and a variant's.
UNION_KEYS = frozenset({"enum", "stamps", "variants"})
VARIANT_KEYS = frozenset({"fields", "sets", "nulls", "stamps"})

#: Name of the dialect built from configuration.
CONFIG_DIALECT = "config"


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: expected a list of strings, got {value!r:.60}")
    return value


def _unknown(keys: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise ValueError(
            f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _variant(name: str, spec: Any, where: str) -> Variant:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a table with fields, sets, nulls, stamps")
    _unknown(spec, VARIANT_KEYS, where)
    sets: dict[str, Any] = {}
    raw_sets = spec.get("sets", {})
    if not isinstance(raw_sets, Mapping):
        raise ValueError(f"{where}.sets: expected a table of column = value")
    sets.update(raw_sets)
    for column in _strings(spec.get("nulls", []), f"{where}.nulls"):
        sets[column] = None
    stamps = spec.get("stamps")
    return Variant(
        name,
        *_strings(spec.get("fields", []), f"{where}.fields"),
        sets=sets,
        stamps=None if stamps is None else _strings(stamps, f"{where}.stamps"),
    )


def union_from_config(table: str, spec: Any) -> TaggedUnion:
    """One ``[tables.tagged_updates.<table>]`` entry; ValueError naming what is wrong."""
    where = f"tables.tagged_updates.{table}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a table with enum, stamps and variants")
    _unknown(spec, UNION_KEYS, where)
    enum = spec.get("enum", table)
    if not isinstance(enum, str) or not enum:
        raise ValueError(f"{where}.enum: expected the enum's name")
    variants = spec.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise ValueError(f"{where}.variants: expected at least one variant")
    try:
        return TaggedUnion(
            enum,
            stamps=tuple(_strings(spec.get("stamps", []), f"{where}.stamps")),
            variants=tuple(
                _variant(name, body, f"{where}.variants.{name}") for name, body in variants.items()
            ),
        )
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: {exc}") from exc


def dialect_from_config(tagged_updates: Mapping[str, Any]) -> Dialect:
    """The dialect of ``[tables.tagged_updates]``: one tagged union per table."""
    return Dialect(
        name=CONFIG_DIALECT,
        updates={table: union_from_config(table, spec) for table, spec in tagged_updates.items()},
    )
