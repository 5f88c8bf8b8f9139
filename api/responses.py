"""The API's JSON responses: they survive any bytes an entry holds.

Entries come from Redis decoded with ``surrogateescape`` (see :mod:`app.escaping`):
a byte that is not UTF-8 is a lone surrogate, which strict encoders refuse (the
pydantic fast path and ``json.dumps(...).encode()`` raised, a 500 for every page
holding such an entry). :class:`SafeJSONResponse` is every route's response
class: it encodes as Starlette does and, only when that fails, encodes
:func:`app.escaping.printable` of the content instead (such a byte becomes ``\\xNN``).
"""

from __future__ import annotations

from typing import Any

# Starlette's own class (FastAPI re-exports it): importing ``fastapi.responses``
# would load all of FastAPI, and ``drainer.worker_api`` needs only this
from starlette.responses import JSONResponse

from drainer.escaping import printable


class SafeJSONResponse(JSONResponse):
    """A JSON response whose strings may hold lone surrogates or non-finite floats."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:  # UnicodeEncodeError (a lone surrogate) or NaN / infinity
            return super().render(printable(content))
