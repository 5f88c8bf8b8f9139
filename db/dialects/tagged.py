"""Tagged-union updates: ``update_data`` as an externally tagged enum, as data.

Some producers do not write an update's changeset; they write which change
happened, as a serde externally tagged enum (``{"ResponseUpdate": {...}}``),
and their own drainer turns each variant into a changeset with rules of its
own. A :class:`TaggedUnion` holds those rules for one table, one
:class:`Variant` a variant, so a new variant is one line of data::

    TaggedUnion("RefundUpdate", stamps=("modified_at",), variants=(
        Variant("MetadataAndReasonUpdate", "metadata", "reason>refund_reason", "updated_by!"),
    ))

A field spec is the field's wire name with marks:

- ``name``: copied to column ``name``; ``null`` or missing leaves the column as
  it is (an ``Option<T>`` field: diesel's changeset skips ``None``).
- ``name!``: required (a non-``Option`` field); ``null`` or missing is an error.
- ``name?``: ``null`` sets SQL NULL (``Some(field)`` into ``Option<Option<T>>``).
- ``name>column``: written to ``column`` (a rename); combines with the marks
  above, e.g. ``reason!>refund_reason``.
- ``-name``: accepted and ignored (the producer's conversion drops it).

Columns set to constants go in ``sets`` (``None`` is SQL NULL), columns stamped
with the time the update is applied in ``stamps``, and rules that compute
columns from the fields, the changeset and the original row in ``derive``
(:class:`Derivation`). Fields no spec names make the entry malformed: a field
the rules do not know belongs to a producer newer than the rules.

Everything here works on decoded JSON values; coercion to column types comes
after, by the table's coercers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drainer.db.errors import MalformedOperation

#: ``derive`` function: (variant fields, original row, changeset so far) -> None;
#: it changes the changeset in place (keys are column names, None is SQL NULL).
DeriveFn = Callable[[Mapping[str, Any], Mapping[str, Any], dict[str, Any]], None]

#: Marks of a field spec (see the module docstring).
REQUIRED_MARK = "!"
NULLABLE_MARK = "?"
IGNORED_MARK = "-"
RENAME_MARK = ">"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one variant field reaches the changeset."""

    name: str
    column: str | None  # None: ignored
    required: bool = False
    null_sets_null: bool = False

    @classmethod
    def parse(cls, spec: str) -> FieldRule:
        """Parse a field spec such as ``reason!>refund_reason``."""
        text = spec.strip()
        if text.startswith(IGNORED_MARK):
            name = text[1:]
            _check_name(name, spec)
            return cls(name, None)
        name, _, column = text.partition(RENAME_MARK)
        required = name.endswith(REQUIRED_MARK)
        nullable = name.endswith(NULLABLE_MARK)
        if required or nullable:
            name = name[:-1]
        _check_name(name, spec)
        column = column or name
        _check_name(column, spec)
        return cls(name, column, required=required, null_sets_null=nullable)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {list: "an array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number")


def _check_name(name: str, spec: str) -> None:
    if not name or not name.replace("_", "a").isalnum():
        raise ValueError(
            f"bad field spec {spec!r}: expected name, name!, name?, name>column or -name"
        )


@dataclass(frozen=True, slots=True)
class Derivation:
    """A rule computing columns; ``consumes`` lists the fields it reads itself."""

    name: str
    apply: DeriveFn
    consumes: tuple[str, ...] = ()
    #: columns it may write (checked against the table at start-up)
    writes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, init=False)
class Variant:
    """One variant of a tagged union: what its fields and constants set."""

    name: str
    fields: tuple[FieldRule, ...]
    sets: Mapping[str, Any]
    stamps: tuple[str, ...] | None
    derive: tuple[str, ...]
    _by_name: Mapping[str, FieldRule]

    def __init__(
        self,
        name: str,
        *fields: str,
        sets: Mapping[str, Any] | None = None,
        stamps: Sequence[str] | None = None,
        derive: Sequence[str] = (),
    ) -> None:
        rules = tuple(FieldRule.parse(spec) for spec in fields)
        by_name = {rule.name: rule for rule in rules}
        if len(by_name) != len(rules):
            raise ValueError(f"variant {name}: a field is listed twice")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", rules)
        object.__setattr__(self, "sets", dict(sets or {}))
        object.__setattr__(self, "stamps", None if stamps is None else tuple(stamps))
        object.__setattr__(self, "derive", tuple(derive))
        object.__setattr__(self, "_by_name", by_name)

    def columns(self) -> set[str]:
        """Every column this variant's own rules name (derivations aside)."""
        named = {rule.column for rule in self.fields if rule.column is not None}
        return named | set(self.sets) | set(self.stamps or ())


@dataclass(frozen=True, slots=True)
class TaggedUnion:
    """The tagged-union ``update_data`` of one table."""

    enum: str
    variants: tuple[Variant, ...]
    #: columns every variant stamps with the apply time, unless it says otherwise
    stamps: tuple[str, ...] = ()
    #: derivations every variant runs after its own (e.g. populate_derived_fields)
    derive_always: tuple[str, ...] = ()
    derivations: Mapping[str, Derivation] = field(default_factory=dict)
    _by_name: dict[str, Variant] = field(init=False, repr=False, compare=False)
    # variant name -> (its derivations in order, the fields they read): built once
    _derived: dict[str, tuple[tuple[Derivation, ...], frozenset[str]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_name = {variant.name: variant for variant in self.variants}
        if len(by_name) != len(self.variants):
            raise ValueError(f"{self.enum}: a variant is listed twice")
        for variant in self.variants:
            for rule_name in (*variant.derive, *self.derive_always):
                if rule_name not in self.derivations:
                    raise ValueError(
                        f"{self.enum}::{variant.name}: unknown derivation {rule_name!r}"
                    )
        object.__setattr__(self, "_by_name", by_name)
        derived = {}
        for variant in self.variants:
            rules = tuple(self.derivations[n] for n in (*variant.derive, *self.derive_always))
            consumed = frozenset(name for rule in rules for name in rule.consumes)
            derived[variant.name] = (rules, consumed)
        object.__setattr__(self, "_derived", derived)

    def variant(self, name: str) -> Variant | None:
        """The variant called ``name``, if the union has one."""
        return self._by_name.get(name)

    def columns(self) -> set[str]:
        """Every column the union can write: checked against the table at start-up."""
        found = set(self.stamps)
        for variant in self.variants:
            found |= variant.columns()
        for derivation in self.derivations.values():
            found |= set(derivation.writes)
        return found

    def is_tagged(self, update_data: Mapping[str, Any] | str) -> bool:
        """True when ``update_data`` has the tagged shape: one key naming a variant
        (serde writes a unit variant as its bare name)."""
        if isinstance(update_data, str):
            return True
        if len(update_data) != 1:
            return False
        ((tag, payload),) = update_data.items()
        return tag in self._by_name or type(payload) is dict

    def changeset(
        self,
        update_data: Mapping[str, Any] | str,
        orig: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """The columns this update sets (None is SQL NULL); raise
        :class:`MalformedOperation` naming the enum, variant and field at fault."""
        payload: Any
        if isinstance(update_data, str):
            tag, payload = update_data, {}
        elif len(update_data) == 1:
            ((tag, payload),) = update_data.items()
        else:
            raise MalformedOperation(
                f"{self.enum}: update_data must be one variant, "
                f'{{"VariantName": {{...}}}}, got keys {sorted(update_data)[:6]}'
            )
        variant = self._by_name.get(tag)
        if variant is None:
            raise MalformedOperation(f"unknown {self.enum} variant {tag!r}")
        if not isinstance(payload, dict):
            kind = _json_kind(payload)
            raise MalformedOperation(
                f"{self.enum}::{tag}: the variant's fields must be an object, got {kind}"
            )
        where = f"{self.enum}::{tag}"
        derivations, consumed = self._derived[tag]
        rules = variant._by_name
        changes: dict[str, Any] = {}
        for name, value in payload.items():
            rule = rules.get(name)
            if rule is None:
                if name in consumed:
                    continue
                raise MalformedOperation(f"{where}: unknown field {name!r}")
            if rule.column is None:
                continue
            if value is None:
                if rule.required:
                    raise MalformedOperation(f"{where}: field {name!r} must not be null")
                if rule.null_sets_null:
                    changes[rule.column] = None
                continue
            changes[rule.column] = value
        for rule in variant.fields:
            if rule.required and rule.name not in payload:
                raise MalformedOperation(f"{where}: missing field {rule.name!r}")
        changes.update(variant.sets)
        for column in self.stamps if variant.stamps is None else variant.stamps:
            changes[column] = now
        for derivation in derivations:
            try:
                derivation.apply(payload, orig, changes)
            except MalformedOperation:
                raise
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                raise MalformedOperation(f"{where}: {derivation.name}: {exc}") from exc
        return changes
