"""``drainer config show``: the effective settings, each with where its value came from."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from drainer.settings import (
    _SECRET_KEYS,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
    _read_config_file,
)

#: What a set secret is shown as.
MASK = "********"
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]*@")


@dataclass(frozen=True)
class Entry:
    """One effective setting."""

    key: str
    value: str
    origin: str


def _masked(value: Any) -> Any:
    """``value`` with URL credentials replaced, in strings, lists and mappings."""
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(rf"\1{MASK}@", value)
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def _shown(key: str, value: Any) -> str:
    if isinstance(value, SecretStr) or key in _SECRET_KEYS:
        if value is None:
            return "(unset)"
        return MASK
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, dict):
        value = {
            name: item.model_dump(mode="json", by_alias=True)
            if isinstance(item, BaseModel)
            else item
            for name, item in value.items()
        }
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return str(_masked(value))
    return json.dumps(_masked(value), default=str, separators=(", ", ": "))


def _origin(
    section: str,
    names: set[str],
    env: Mapping[str, str],
    file_data: Mapping[str, Any],
) -> str:
    upper = {name.upper(): name for name in env}
    for name in sorted(names):
        exact = f"{ENV_PREFIX}{section}{ENV_NESTED_DELIMITER}{name}".upper()
        if exact in upper:
            return f"env {upper[exact]}"
        nested = [found for key, found in upper.items() if key.startswith(exact + "__")]
        if nested:
            return f"env {ENV_PREFIX}{section.upper()}{ENV_NESTED_DELIMITER}{name.upper()}__…"
    whole = f"{ENV_PREFIX}{section}".upper()
    if whole in upper:
        return f"env {upper[whole]}"
    in_file = file_data.get(section)
    if isinstance(in_file, Mapping) and any(name in in_file for name in names):
        return "file"
    return "default"


def entries(settings: Settings, config_path: Path | None, env: Mapping[str, str]) -> list[Entry]:
    """Every ``section.key`` of ``settings``, its shown value and its origin."""
    file_data = _read_config_file(config_path) if config_path is not None else {}
    found = []
    for section, section_field in Settings.model_fields.items():
        model = getattr(settings, section)
        for key, key_field in type(model).model_fields.items():
            names = {key, key_field.alias} if key_field.alias else {key}
            found.append(
                Entry(
                    f"{section}.{key_field.alias or key}",
                    _shown(key, getattr(model, key)),
                    _origin(section_field.alias or section, names, env, file_data),
                )
            )
    return found


def render_text(found: list[Entry]) -> str:
    """Aligned ``key  value  origin`` lines."""
    key_width = max(len(entry.key) for entry in found)
    value_width = min(max(len(entry.value) for entry in found), 60)
    return "".join(
        f"{entry.key:<{key_width}}  {entry.value:<{value_width}}  {entry.origin}\n"
        for entry in found
    )


def render_json(found: list[Entry]) -> str:
    """``{"section.key": {"value": …, "origin": …}}``."""
    return (
        json.dumps(
            {entry.key: {"value": entry.value, "origin": entry.origin} for entry in found},
            indent=2,
        )
        + "\n"
    )
