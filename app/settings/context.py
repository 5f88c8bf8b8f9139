"""What one :func:`~drainer.settings.load_settings` call reads, and the sources reading it.

``load_settings`` parses the file and copies the environment, then builds
:class:`~drainer.settings.Settings` with both set in a context variable; the two
pydantic-settings sources below read them from there, so a build never sees another
call's file or environment (or, when the variable is unset, only ``os.environ``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource

from drainer.settings.defaults import ENV_NESTED_DELIMITER, ENV_PREFIX, POD_NAME_ENV
from drainer.settings.errors import SettingsError


@dataclass(frozen=True)
class _LoadContext:
    """What :func:`load_settings` hands to the settings sources for one build."""

    env: Mapping[str, str]
    file_data: Mapping[str, Any]
    config_path: Path | None


_LOAD_CONTEXT: ContextVar[_LoadContext | None] = ContextVar("drainer_settings_load", default=None)


def _environ() -> Mapping[str, str]:
    context = _LOAD_CONTEXT.get()
    return os.environ if context is None else context.env


def default_consumer_name() -> str:
    """The default consumer name: ``<POD_NAME or host name>-<pid>``, unique per process."""
    host = _environ().get(POD_NAME_ENV) or socket.gethostname()
    return f"{host}-{os.getpid()}"


class _EnvironmentSource(EnvSettingsSource):
    """``DRAINER__…`` variables from the mapping given to :func:`load_settings`."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _environ()
        if self.case_sensitive:
            return dict(env)
        return {name.lower(): value for name, value in env.items()}

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as exc:
            name = f"{ENV_PREFIX}{field_name.upper()}"
            raise SettingsError(
                f"{field_name}: {name} is not a valid JSON object ({exc}); "
                f"set single keys with {name}{ENV_NESTED_DELIMITER}<KEY> instead"
            ) from None


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The TOML config file, parsed by :func:`load_settings` (which reports its errors).

    Not pydantic-settings' ``TomlConfigSettingsSource``: that one reads a missing file or
    a directory as an empty table (here they are errors), parses inside the build (the
    unknown-key check and the `` in <file>`` of each message need the table before and
    after it), lets ``tomllib``'s errors through unworded, and, being an init source
    under ``case_sensitive=False`` (which the environment needs), would read a
    ``[Drainer]`` table as ``[drainer]`` while the report calls it ignored.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        context = _LOAD_CONTEXT.get()
        value = None if context is None else context.file_data.get(field_name)
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        context = _LOAD_CONTEXT.get()
        if context is None:
            return {}
        return {
            name: context.file_data[name]
            for name in self.settings_cls.model_fields
            if name in context.file_data
        }
