"""What is wrong with a configuration, in words: :class:`SettingsError` and its lines.

Every problem is one line that names the key in dotted form (``drainer.num_partitions``),
says what is wrong, and, where it can tell, where the value came from (`` in <file>`` or
`` from <VARIABLE>``). Secrets are never shown.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drainer.settings.defaults import ENV_NESTED_DELIMITER, ENV_PREFIX

#: How close a misspelt key must be to a real one to be suggested (difflib ratio).
SUGGEST_CUTOFF = 0.75

#: Keys whose values an error message never repeats.
_SECRET_KEYS = frozenset({"password", "admin_token", "operator_token", "url"})
_MAX_SHOWN_INPUT_CHARS = 80


class SettingsError(Exception):
    """The configuration cannot be used.

    ``str(error)`` has one line per problem, each naming the key in dotted form and what
    is wrong with it; :attr:`problems` holds the same lines as a tuple.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__("\n".join(self.problems))


class _Problems(ValueError):
    """Raised by cross-field validators: each problem names a key relative to the model."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.problems))


def _raise_if(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise _Problems(problems)


# ---- did you mean


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _did_you_mean(key: str, model: type[BaseModel], *, upper: bool = False) -> str:
    names = _field_names(model)
    found = difflib.get_close_matches(key.lower(), names, n=1, cutoff=SUGGEST_CUTOFF)
    if not found:
        return ""
    return f" (did you mean {found[0].upper() if upper else found[0]}?)"


# ---- describing validation errors


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _humanise(message: str) -> str:
    message = message.removeprefix("Value error, ")
    message = re.sub(r"^(Input|String|List|Dictionary|Value|Tuple|Set) should ", "must ", message)
    if message == "Field required":
        return "is required"
    return message[:1].lower() + message[1:]


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN_INPUT_CHARS:
        text = text[: _MAX_SHOWN_INPUT_CHARS - 3] + "..."
    return text


def _env_source(loc: Sequence[int | str], env: Mapping[str, str]) -> str | None:
    """The environment variable that supplied the value at ``loc`` (or a container of it)."""
    names = {name.upper(): name for name in env}
    parts = [str(part) for part in loc if isinstance(part, str)]
    for end in range(len(parts), 0, -1):
        candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts[:end]).upper()
        if candidate in names:
            return names[candidate]
    return None


def _in_file(loc: Sequence[int | str], data: Any) -> bool:
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str):
            found = part in data
        else:
            found = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not found:
            return False
        data = data[part]
    return True


def _source_suffix(
    loc: Sequence[int | str],
    env: Mapping[str, str],
    file_data: Mapping[str, Any],
    config_path: Path | None,
) -> str:
    variable = _env_source(loc, env)
    if variable is not None:
        return f" from {variable}"
    if config_path is not None and _in_file(loc, file_data):
        return f" in {config_path}"
    return ""


def _describe_errors(
    exc: ValidationError,
    env: Mapping[str, str],
    file_data: Mapping[str, Any],
    config_path: Path | None,
) -> Iterator[str]:
    """One line per problem of ``exc``, naming where each bad value came from."""
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            for relative, message in cause.problems:
                full = (*loc, *relative.split("."))
                suffix = _source_suffix(full, env, file_data, config_path)
                yield f"{_dotted(full)}: {message}{suffix}"
            continue
        message = _humanise(error["msg"])
        secret = any(part in _SECRET_KEYS for part in loc if isinstance(part, str))
        shown = ""
        if error["type"] != "missing" and not secret:
            shown = f" (got {_shown(error['input'])})"
        suffix = _source_suffix(loc, env, file_data, config_path)
        yield f"{_dotted(loc)}: {message}{shown}{suffix}"
