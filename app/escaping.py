"""Text that every encoder accepts: bytes that were not UTF-8, escaped.

The drainer's Redis clients decode replies with ``surrogateescape``, so a byte
that is not valid UTF-8 (a producer's bug, or a hostile entry) reaches Python
as a lone surrogate (``b"\\xff"`` becomes ``"\\udcff"``). That keeps every entry
byte-exact on its way to a dead letter and back to its stream on requeue, but
strict encoders refuse such text: ``json.dumps(...).encode()``, pydantic and
orjson raise, which answered 500 and dropped log lines; pydantic's JSON mode
even turns such a dict key into U+FFFD, silently. Every API body passes its
strings through :func:`escape_strings` (``api.schemas``), and the JSON logs their
values through :func:`printable` when orjson refuses them, so such a byte is
shown as the four characters ``\\xff``.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Lone surrogates: what ``surrogateescape`` makes of undecodable bytes (U+DC80..U+DCFF),
#: and any other one a lenient JSON decoder let through.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: ``surrogateescape`` decodes an undecodable byte ``b`` (0x80..0xFF) as U+DC00 + ``b``.
_ESCAPED_BYTE_BASE = 0xDC00
#: How deep :func:`printable` walks nested values before it shows the rest as text.
MAX_DEPTH = 100


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if _ESCAPED_BYTE_BASE + 0x80 <= code <= _ESCAPED_BYTE_BASE + 0xFF:
        return f"\\x{code - _ESCAPED_BYTE_BASE:02x}"  # the byte that was not UTF-8
    return f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with each lone surrogate written as ``\\xNN`` (the byte) or ``\\uNNNN``."""
    if text.isascii():
        return text
    return _SURROGATE.sub(_escaped, text)


def _shown(value: Any) -> str:
    try:
        return escape_text(str(value))
    except Exception:  # a __str__ that fails must not take the response or log line along
        return f"<unprintable {type(value).__name__}>"


def escape_strings(value: Any, *, depth: int = 0) -> Any:
    """``value`` with the strings in it (and in its dicts' keys and lists) escaped.

    Anything else (a model, a datetime, a number) is returned as it is. Below
    :data:`MAX_DEPTH` levels the rest is shown as its escaped ``str()``: a value
    nested a thousand levels deep must not overflow the stack of a response.
    """
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return _shown(value)
    if isinstance(value, dict):
        return {escape_strings(k): escape_strings(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_strings(v, depth=depth + 1) for v in value]
    return value


def printable(value: Any, *, depth: int = 0) -> Any:
    """``value`` with every string (and mapping key) escaped, for a strict JSON encoder.

    Mappings become dicts with string keys, other collections lists; non-finite
    floats (JSON has none) become None; numbers, booleans and None stay as they are.
    Anything else is shown as its escaped ``str()``.
    """
    if isinstance(value, str):
        return escape_text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return _shown(value)
    if isinstance(value, dict):
        return {_shown(k): printable(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [printable(v, depth=depth + 1) for v in value]
    return _shown(value)
