"""A dialect's rules as Markdown: what ``drainer dialect`` prints and docs/hyperswitch.md holds."""

from __future__ import annotations

from db.dialects.dialect import Dialect
from db.dialects.tagged import FieldRule, TaggedUnion, Variant

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
        shape = f"`{union.enum}` (tagged)" if union else "flat changeset"
        updates = f"`{tag}{UPDATE_TAG_SUFFIX}`" if table in dialect.keys else "—"
        lines.append(f"| `{table}` | `{tag}` | {updates} | {keys} | {null} | {shape} |")
    if dialect.value_shapes:
        lines += ["", "Value shapes: " + ", ".join(
            f"`{shape.name}` (into "
            + (", ".join(f"`{c}`" for c in sorted(shape.columns)) if shape.columns
               else f"every {shape.family} column") + ")"
            for shape in dialect.value_shapes
        ) + "."]  # fmt: skip
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
