"""Where settings come from: which file, its TOML, the environment, and :func:`load_settings`.

Precedence, highest first: environment variables, the config file, the defaults. The
file is named by ``--config``/``-f`` or, failing that, found as Hyperswitch's binary
finds its own (:func:`hyperswitch_config_path`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError as _PydanticSettingsError

from drainer.settings.context import _LOAD_CONTEXT, _LoadContext
from drainer.settings.errors import SettingsError, _describe_errors
from drainer.settings.hyperswitch_keys import _report_ignored
from drainer.settings.sections import Settings

#: Variable naming Hyperswitch's environment (``crates/router_env/src/env.rs``).
RUN_ENV_VAR = "RUN_ENV"
#: Variable naming the directory of Hyperswitch's config files.
CONFIG_DIR_VAR = "CONFIG_DIR"
#: Hyperswitch's config directory when ``CONFIG_DIR`` is unset.
DEFAULT_CONFIG_DIR = "config"
#: The environment of a release build of Hyperswitch when ``RUN_ENV`` is unset or unknown.
DEFAULT_RUN_ENV = "production"
#: ``RUN_ENV`` values Hyperswitch parses (exact, lower case), and the file each one reads.
RUN_ENV_FILES: dict[str, str] = {
    "development": "development.toml",
    "integ": "development.toml",
    "sandbox": "sandbox.toml",
    "production": "production.toml",
}


def hyperswitch_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file Hyperswitch's binary reads when given no ``-f``, if set up and present.

    Hyperswitch's rule (``router_env::Config::config_path``): ``<CONFIG_DIR>/<file>``, where
    ``CONFIG_DIR`` defaults to ``config`` (relative to the working directory, or to
    ``$CARGO_MANIFEST_DIR/../..`` when that is set) and the file is ``production.toml``,
    ``sandbox.toml`` or, for any other environment, ``development.toml``; ``RUN_ENV``
    unset or not one of its environments means ``production`` (a release build).

    None unless ``RUN_ENV`` or ``CONFIG_DIR`` is set and that file exists: without either
    variable the drainer reads no file, as before.
    """
    environ = os.environ if env is None else env
    if RUN_ENV_VAR not in environ and CONFIG_DIR_VAR not in environ:
        return None
    run_env = environ.get(RUN_ENV_VAR, DEFAULT_RUN_ENV)
    name = RUN_ENV_FILES.get(run_env, RUN_ENV_FILES[DEFAULT_RUN_ENV])
    manifest = environ.get("CARGO_MANIFEST_DIR")
    base = Path(manifest).parent.parent if manifest else Path(".")
    path = base / environ.get(CONFIG_DIR_VAR, DEFAULT_CONFIG_DIR) / name
    return path if path.is_file() else None


def load_settings(
    config_path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read ``config_path`` (TOML), apply ``DRAINER__…`` overrides from ``env``, validate.

    Args:
        config_path: The config file; None for defaults and environment only.
        env: The environment to read overrides (and ``POD_NAME``) from; ``os.environ``
            when None.

    Raises:
        SettingsError: The file is missing or not valid TOML, or some values are invalid;
            the message has one line per problem.
    """
    environ: Mapping[str, str] = dict(os.environ if env is None else env)
    path = Path(config_path).expanduser() if config_path is not None else None
    file_data = _read_config_file(path) if path is not None else {}
    _report_ignored(file_data, environ, path)

    context = _LoadContext(env=environ, file_data=file_data, config_path=path)
    token = _LOAD_CONTEXT.set(context)
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(list(_describe_errors(exc, environ, file_data, path))) from None
    except _PydanticSettingsError as exc:
        raise SettingsError(str(exc)) from None
    finally:
        _LOAD_CONTEXT.reset(token)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read configuration file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where:
            message = message[: where.start()]
            raise SettingsError(
                f"{path}:{where.group(1)}:{where.group(2)}: invalid TOML: {message}"
            ) from None
        raise SettingsError(f"{path}: invalid TOML: {message}") from None
