"""What every section shares: its base model and the parsing of values written as text.

An environment variable is always a string, so lists, tables and blanks arrive in a
text form the file would have written natively; these helpers accept both.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSTGRES_MAX_IDENTIFIER_LENGTH = 63


class _Section(BaseModel):
    """Base of every section: immutable, unknown keys ignored (they are reported on load)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _split_list(value: Any) -> Any:
    """Accept a list, a JSON array string, or a comma-separated string (environment form)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not a valid JSON array ({exc.msg})") from None
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_mapping(value: Any) -> Any:
    """Accept a table, or a JSON object string (environment form)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not a valid JSON object ({exc.msg})") from None
    if not isinstance(decoded, dict):
        raise ValueError("must be a JSON object")
    return decoded


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, SecretStr) and not value.get_secret_value().strip():
        return None
    return value


def _check_identifier(value: str) -> str | None:
    """Why ``value`` is not a usable identifier, or None when it is."""
    if not _IDENTIFIER.fullmatch(value):
        return "must contain only letters, digits and underscores and not start with a digit"
    if len(value) > _POSTGRES_MAX_IDENTIFIER_LENGTH:
        return f"must be at most {_POSTGRES_MAX_IDENTIFIER_LENGTH} characters long"
    return None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
