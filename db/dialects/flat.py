"""Flat structs: the rules a producer's serde applies to a flat row or changeset.

The generic path reads an insert's row and an update's changeset as they are:
every key a column, every null a NULL (insert) or a skip (update). A producer
that writes a struct as is (Hyperswitch's ``AddressNew``, its
``AddressUpdateInternal``) has its deserializer's rules on top, described by a
:class:`FlatStruct`::

    FlatStruct("AddressUpdateInternal", "city", "modified_at!", "updated_by!",
               checks={"city": trimmed_check(255)})

- a spec ``name`` is an ``Option`` field: null or missing is fine;
- ``name!`` is a non-``Option`` field: missing or null makes the entry malformed;
- a key no spec names makes the entry malformed (as for a tagged-union variant:
  it belongs to a producer newer than the rules), even if the table has that column;
- ``checks`` maps a field to a function that returns its value as the producer's
  deserializer leaves it (trimmed, e.g.) or raises ValueError.

Fields are columns of the same name. A dialect binds a struct to a table only if
the table has every column the struct names (:meth:`FlatStruct.columns`).

The checks run per entry, so they are kept to set operations on the keys plus
the few field checks; the values are copied only when a check changes one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drainer.db.errors import MalformedOperation

#: A field check: the value as the producer's deserializer leaves it; ValueError if it fails.
Check = Callable[[Any], Any]

#: Mark of a required (non-``Option``) field spec.
REQUIRED_MARK = "!"

#: ``char::is_whitespace`` (Unicode White_Space), what Rust's ``str::trim`` removes;
#: Python's ``str.strip()`` also strips U+001C..U+001F, which Rust keeps.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def rust_trimmed(value: Any, max_bytes: int, min_bytes: int = 1) -> str:
    """``value`` trimmed as Rust's ``str::trim`` does, its UTF-8 length checked."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r:.40}")
    text = value.strip(RUST_WHITESPACE)
    size = len(text.encode())
    if size > max_bytes:
        raise ValueError(f"the maximum allowed length for this field is {max_bytes}")
    if size < min_bytes:
        raise ValueError(f"the minimum required length for this field is {min_bytes}")
    return text


@dataclass(frozen=True, slots=True, init=False)
class FlatStruct:
    """One flat struct: its fields (``name!`` = not ``Option``) and field checks."""

    name: str
    fields: frozenset[str]
    required: frozenset[str]
    checks: Mapping[str, Check]
    # derived once, for the per-entry check
    _required_order: tuple[str, ...] = field(repr=False, compare=False)
    _check_items: tuple[tuple[str, Check], ...] = field(repr=False, compare=False)

    def __init__(self, name: str, *specs: str, checks: Mapping[str, Check] | None = None) -> None:
        names = [spec.removesuffix(REQUIRED_MARK) for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: a field is listed twice")
        unknown = set(checks or {}) - set(names)
        if unknown:
            raise ValueError(f"{name}: checks for unknown fields {sorted(unknown)}")
        required = {spec[:-1] for spec in specs if spec.endswith(REQUIRED_MARK)}
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", frozenset(names))
        object.__setattr__(self, "required", frozenset(required))
        object.__setattr__(self, "checks", dict(checks or {}))
        object.__setattr__(self, "_required_order", tuple(sorted(required)))
        object.__setattr__(self, "_check_items", tuple(self.checks.items()))

    def columns(self) -> set[str]:
        """The columns the struct can write: checked against the table at start-up."""
        return set(self.fields)

    def check(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """``values`` as the producer's deserializer leaves them, nulls kept.

        Raises :class:`MalformedOperation` (``Struct: why``) for a key that is no
        field, a missing or null required field, or a field check that fails.
        Returns ``values`` itself unless a check changed a value.
        """
        if not self.fields.issuperset(values):
            unknown = sorted(values.keys() - self.fields)
            raise MalformedOperation(f"{self.name}: unknown field {unknown[0]!r}")
        for name in self._required_order:
            if values.get(name) is None:
                if name in values:
                    raise MalformedOperation(f"{self.name}: field {name!r} must not be null")
                raise MalformedOperation(f"{self.name}: missing field {name!r}")
        copy: dict[str, Any] | None = None
        for name, check in self._check_items:
            value = values.get(name)
            if value is None:
                continue
            try:
                checked = check(value)
            except ValueError as exc:
                raise MalformedOperation(f"{self.name}.{name}: {exc}") from None
            if checked is not value:
                if copy is None:
                    copy = dict(values)
                copy[name] = checked
        return values if copy is None else copy

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """An insert's row as the producer's ``Insertable`` writes it (a null stays)."""
        return dict(self.check(values))

    def changeset(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """An update's changeset as diesel's ``AsChangeset`` writes it (nulls skipped)."""
        return {name: value for name, value in self.check(values).items() if value is not None}


__all__ = ["REQUIRED_MARK", "RUST_WHITESPACE", "Check", "FlatStruct", "rust_trimmed"]
