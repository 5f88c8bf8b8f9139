"""What the drainer does not read, reported on load: Hyperswitch's keys, unknown keys.

A Hyperswitch config file loads unchanged, so three kinds of configuration the drainer
has no use for are told apart: Hyperswitch keys inside the drainer's own sections (in
:data:`_HYPERSWITCH_IGNORED_KEYS`: accepted, logged at debug level), every other
section, top-level key or ``DRAINER__`` variable outside those sections (one warning
that lists them all), and an unknown key inside one of the drainer's own sections (an
error, with a "did you mean").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from drainer.settings.connections import DatabaseSettings, RedisSettings
from drainer.settings.defaults import ENV_NESTED_DELIMITER, ENV_PREFIX
from drainer.settings.errors import SettingsError, _did_you_mean
from drainer.settings.sections import ServerSettings, Settings
from drainer.settings.tenants import MultitenancySettings, TenantSettings

# The package's name, not this module's: operators filter on the documented logger
# (docs/configuration.md).
logger = logging.getLogger("drainer.settings")

# Hyperswitch keys inside our sections that the drainer has no use for: accepted silently.
_HYPERSWITCH_IGNORED_KEYS: dict[type[BaseModel], frozenset[str]] = {
    DatabaseSettings: frozenset({"queue_strategy", "min_idle", "max_lifetime"}),
    RedisSettings: frozenset(
        {
            "use_legacy_version",
            "reconnect_max_attempts",
            "reconnect_delay",
            "default_ttl",
            "default_hash_ttl",
            "stream_read_count",
            "auto_pipeline",
            "disable_auto_backpressure",
            "max_in_flight_commands",
            "default_command_timeout",
            "max_feed_count",
            "unresponsive_timeout",
            "unresponsive_check_interval",
            "broadcast_channel_capacity",
            "max_failure_threshold_seconds",
        }
    ),
    ServerSettings: frozenset({"workers", "request_body_limit", "shutdown_timeout", "base_url"}),
    MultitenancySettings: frozenset({"global_tenant"}),
    TenantSettings: frozenset(
        {"tenant_id", "name", "base_url", "accounts_schema", "clickhouse_database", "user"}
    ),
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _dict_value_type(annotation: Any) -> tuple[bool, Any]:
    if get_origin(annotation) is dict:
        args = get_args(annotation)
        return True, args[1] if len(args) == 2 else Any
    return False, None


def _lookup(model: type[BaseModel], key: str, *, fold_case: bool) -> FieldInfo | None:
    wanted = key.lower() if fold_case else key
    for name, field in model.model_fields.items():
        names = {name, field.alias} if field.alias else {name}
        if wanted in {n.lower() if fold_case else n for n in names}:
            return field
    return None


def _is_hyperswitch_key(model: type[BaseModel], key: str) -> bool:
    return key.lower() in _HYPERSWITCH_IGNORED_KEYS.get(model, frozenset())


def _walk_file(
    model: type[BaseModel], data: Mapping[str, Any], path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], bool, type[BaseModel]]]:
    """Yield (path, is_hyperswitch, model looked in) for every key the model does not read."""
    for key, value in data.items():
        here = (*path, key)
        field = _lookup(model, key, fold_case=False)
        if field is None:
            yield here, _is_hyperswitch_key(model, key), model
            continue
        sub = _model_of(field.annotation)
        is_dict, value_type = _dict_value_type(field.annotation)
        if sub is not None and isinstance(value, dict):
            yield from _walk_file(sub, value, here)
        elif is_dict and (item_model := _model_of(value_type)) and isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, dict):
                    yield from _walk_file(item_model, item, (*here, item_key))


def _classify_env(model: type[BaseModel], parts: Sequence[str]) -> str:
    """'ok', 'hyperswitch' or 'unknown' for the key path of one environment variable."""
    if not parts or not parts[0]:
        return "unknown"
    key, rest = parts[0], parts[1:]
    field = _lookup(model, key, fold_case=True)
    if field is None:
        return "hyperswitch" if _is_hyperswitch_key(model, key) else "unknown"
    if not rest:
        return "ok"
    sub = _model_of(field.annotation)
    if sub is not None:
        return _classify_env(sub, rest)
    is_dict, value_type = _dict_value_type(field.annotation)
    if is_dict and rest[0]:
        if len(rest) == 1:
            return "ok"
        item_model = _model_of(value_type)
        if item_model is not None:
            return _classify_env(item_model, rest[1:])
    return "unknown"


def _env_section_model(parts: Sequence[str]) -> tuple[type[BaseModel], int] | None:
    """The model (and depth) where an unknown variable's last key was looked up, when the
    variable names one of the drainer's own sections; None for other sections."""
    model: type[BaseModel] = Settings
    depth = 0
    while depth < len(parts) - 1:
        field = _lookup(model, parts[depth], fold_case=True)
        if field is None:
            break
        sub = _model_of(field.annotation)
        is_dict, value_type = _dict_value_type(field.annotation)
        if sub is not None:
            model, depth = sub, depth + 1
        elif is_dict and (item := _model_of(value_type)) is not None and depth + 2 < len(parts):
            model, depth = item, depth + 2
        else:
            break
    return (model, depth) if depth >= 1 else None


def _report_ignored(
    file_data: Mapping[str, Any], env: Mapping[str, str], path: Path | None
) -> None:
    """Refuse unknown keys in the drainer's own sections (with a suggestion); log ONE
    warning naming every other section, key and variable the drainer does not read."""
    sections: list[str] = []
    keys: list[str] = []
    variables: list[str] = []
    hyperswitch: list[str] = []
    problems: list[str] = []
    origin_of = f" in {path}" if path is not None else ""
    for key_path, is_hyperswitch, model in _walk_file(Settings, file_data, ()):
        dotted = ".".join(key_path)
        if is_hyperswitch:
            hyperswitch.append(dotted)
        elif len(key_path) >= 2 and model is not Settings:
            hint = _did_you_mean(key_path[-1], model)
            problems.append(f"{dotted}: unknown key{hint}{origin_of}")
        elif len(key_path) == 1 and isinstance(file_data[key_path[0]], dict):
            sections.append(dotted)
        else:
            keys.append(dotted)
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER)
            verdict = _classify_env(Settings, parts)
            if verdict == "unknown":
                own = _env_section_model(parts)
                if own is None:
                    variables.append(name)
                    continue
                model, depth = own
                hint = ""
                if len(parts) == depth + 1:
                    suggestion = _did_you_mean(parts[-1], model, upper=True)
                    if suggestion:
                        prefix = ENV_NESTED_DELIMITER.join(parts[:-1]).upper()
                        hint = suggestion.replace("mean ", f"mean {ENV_PREFIX}{prefix}__")
                problems.append(f"{name}: unknown setting{hint}")
            elif verdict == "hyperswitch":
                hyperswitch.append(name)
    if problems:
        raise SettingsError(problems)

    if hyperswitch:
        logger.debug(
            "ignoring Hyperswitch settings the drainer does not use: %s", ", ".join(hyperswitch)
        )
    found: list[str] = []
    if sections:
        found.append("sections " + ", ".join(f"[{name}]" for name in sorted(sections)))
    if keys:
        found.append("keys " + ", ".join(sorted(keys)))
    if variables:
        found.append("environment variables " + ", ".join(variables))
    if found:
        origin = f" in {path}" if path is not None and (sections or keys) else ""
        logger.warning(
            "ignoring configuration the drainer does not use%s: %s", origin, "; ".join(found)
        )
