"""``[tables]``: how the ``table`` tags of operations map to tables, keys and dialects."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from drainer.db.dialects import BUILT_IN as BUILT_IN_DIALECTS
from drainer.db.dialects import dialect_from_config
from drainer.db.models import DEFAULT_DIALECTS
from drainer.settings.errors import _raise_if
from drainer.settings.values import _empty_to_none, _parse_mapping, _Section, _split_list

_DOTTED_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_DIALECT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class TablesSettings(_Section):
    """``[tables]``: how the ``table`` tags of operations map to ORM models."""

    aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="Tag -> table name, e.g. customer = 'customers'."
    )
    keys: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, description="Table -> key columns used to find rows."
    )
    reflect: bool = Field(True, description="Reflect the tables from the database.")
    models_module: str | None = Field(
        None, description="Dotted path of a module of SQLAlchemy declarative models."
    )
    null_sets_null: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Tables whose update null means SQL NULL."
    )
    dialects: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_DIALECTS),
        description="Producer dialects: built-in names or 'package.module:NAME'.",
    )
    tagged_updates: dict[str, Any] = Field(
        default_factory=dict,
        description="Table -> its tagged-union update_data (enum, stamps, variants).",
    )

    @field_validator("aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: Any) -> Any:
        return _parse_mapping(value)

    @field_validator("keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        value = _parse_mapping(value)
        if isinstance(value, dict):
            return {table: _split_list(columns) for table, columns in value.items()}
        return value

    @field_validator("null_sets_null", "dialects", mode="before")
    @classmethod
    def _parse_table_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("dialects")
    @classmethod
    def _check_dialects(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in BUILT_IN_DIALECTS and not _DIALECT_PATH.fullmatch(name):
                known = ", ".join(sorted(BUILT_IN_DIALECTS))
                raise ValueError(
                    f"{name!r} is neither a built-in dialect ({known}) nor 'package.module:NAME'"
                )
        return value

    @field_validator("tagged_updates")
    @classmethod
    def _check_tagged_updates(cls, value: dict[str, Any]) -> dict[str, Any]:
        dialect_from_config(value)  # raises ValueError naming the bad key
        return value

    @field_validator("models_module", mode="before")
    @classmethod
    def _blank_module_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("models_module")
    @classmethod
    def _check_module(cls, value: str | None) -> str | None:
        if value is not None and not _DOTTED_MODULE.fullmatch(value):
            raise ValueError("must be a dotted module path such as 'myapp.models'")
        return value

    @model_validator(mode="after")
    def _check_tables(self) -> TablesSettings:
        problems: list[tuple[str, str]] = []
        for tag, table in self.aliases.items():
            if not table.strip():
                problems.append((f"aliases.{tag}", "must name a table (got '')"))
        for table, columns in self.keys.items():
            if not columns:
                problems.append((f"keys.{table}", "must list at least one key column"))
            elif len(set(columns)) != len(columns):
                problems.append((f"keys.{table}", f"lists a column twice (got {columns})"))
        if not self.reflect and self.models_module is None:
            problems.append(
                (
                    "models_module",
                    "is required when tables.reflect is false: set tables.models_module to "
                    "the dotted path of your declarative models, or set tables.reflect = true",
                )
            )
        _raise_if(problems)
        return self
