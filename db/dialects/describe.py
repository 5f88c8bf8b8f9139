"""A dialect's rules as Markdown: what ``drainer dialect`` prints and docs/hyperswitch.md holds."""

from __future__ import annotations

from drainer.db.dialects.dialect import Dialect
from drainer.db.dialects.flat import FlatStruct
from drainer.db.dialects.tagged import FieldRule, TaggedUnion, Variant

#: Update tags end in this suffix (Hyperswitch writes ``address_update``).
UPDATE_TAG_SUFFIX = "_update"


def _field(rule: FieldRule) -> str:
    if rule.column is None:
        return f"~~{rule.name}~~"
    text = rule.name
    if rule.required:
        text += "!"
    if rule.null_sets_null:
        text += "?"
    if rule.column != rule.name:
        text += f" → {rule.column}"
    return f"`{text}`"


def _value(value: object) -> str:
    return "NULL" if value is None else repr(value).replace("'", '"')


def _variant_row(union: TaggedUnion, variant: Variant) -> str:
    fields = ", ".join(_field(rule) for rule in variant.fields) or "—"
    extra: list[str] = [f"`{column}` = {_value(v)}" for column, v in variant.sets.items()]
    stamps = union.stamps if variant.stamps is None else variant.stamps
    extra += [f"`{column}` = apply time" for column in stamps]
    derived = [*variant.derive, *union.derive_always]
    extra += [f"derived: {name}" for name in derived]
    return f"| `{variant.name}` | {fields} | {'; '.join(extra) or '—'} |"


def _struct_row(table: str, kind: str, struct: FlatStruct) -> str:
    required = ", ".join(f"`{name}`" for name in sorted(struct.required)) or "—"
    checks = ", ".join(
        f"`{name}` ({getattr(check, '__name__', 'check')})"
        for name, check in sorted(struct.checks.items())
    )
    return (
        f"| `{table}` | {kind} | `{struct.name}` | {len(struct.fields)} | {required} "
        f"| {checks or '—'} |"
    )


def _flat_structs(dialect: Dialect) -> list[str]:
    if not dialect.flat_inserts and not dialect.flat_updates:
        return []
    lines = [
        "",
        "### Flat structs",
        "",
        "Inserts and flat `update_data` of these tables are checked against the struct: "
        "a field it lacks, or a required field missing or null, is malformed; "
        "checked fields are validated (and trimmed) as the struct's deserializer does.",
        "",
        "| table | entry | struct | fields | required | checked |",
        "|---|---|---|---|---|---|",
    ]
    for table in sorted({*dialect.flat_inserts, *dialect.flat_updates}):
        for kind, structs in (("insert", dialect.flat_inserts), ("update", dialect.flat_updates)):
            struct = structs.get(table)
            if struct is not None:
                lines.append(_struct_row(table, kind, struct))
    return lines


def describe(dialect: Dialect) -> str:
    """Every tag, key, insert rule and update variant of ``dialect``, as Markdown."""
    lines = [
        f"### Tables of the `{dialect.name}` dialect",
        "",
        "| table | insert tag | update tag | row found by | insert `null` | update_data |",
        "|---|---|---|---|---|---|",
    ]
    tags_of: dict[str, list[str]] = {}
    for tag, table in dialect.aliases.items():
        tags_of.setdefault(table, []).append(tag)
    for table in sorted(dialect.tables()):
        tag = (tags_of.get(table) or [table])[0]
        keys = ", ".join(f"`{k}`" for k in dialect.keys.get(table, ())) or "primary key"
        null = "DEFAULT" if table in dialect.insert_null_is_default else "NULL"
        union = dialect.updates.get(table)
        flat = dialect.flat_updates.get(table)
        if union is not None:
            shape = f"`{union.enum}` (tagged)"
        else:
            shape = f"`{flat.name}` (flat)" if flat is not None else "flat changeset"
        updates = f"`{tag}{UPDATE_TAG_SUFFIX}`" if table in dialect.keys else "—"
        lines.append(f"| `{table}` | `{tag}` | {updates} | {keys} | {null} | {shape} |")
    if dialect.value_shapes:
        lines += ["", "Value shapes: " + ", ".join(
            f"`{shape.name}` (into "
            + (", ".join(f"`{c}`" for c in sorted(shape.columns)) if shape.columns
               else f"every {shape.family} column") + ")"
            for shape in dialect.value_shapes
        ) + "."]  # fmt: skip
    lines += _flat_structs(dialect)
    for table, union in sorted(dialect.updates.items()):
        lines += [
            "",
            f"### `{union.enum}` → `{table}` ({len(union.variants)} variants)",
            "",
            "| variant | fields → columns | also set |",
            "|---|---|---|",
        ]
        lines += [_variant_row(union, variant) for variant in union.variants]
        for name, derivation in sorted(union.derivations.items()):
            doc = " ".join((derivation.apply.__doc__ or "").split())
            lines.append(f"\nDerivation `{name}`: {doc}")
    lines += [
        "",
        "Marks: `name!` required (null is malformed); `name?` null sets SQL NULL; "
        "plain `name`: null leaves the column unchanged; `a → b` renamed; "
        "~~name~~ accepted and ignored.",
    ]
    return "\n".join(lines) + "\n"
