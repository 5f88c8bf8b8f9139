"""Errors of the operator API: every 4xx/5xx is JSON ``{"detail": "<what is wrong>"}``.

Bad input is refused with a 4xx that says what is wrong (never a 500); Redis or
the database being unreachable is a 503 with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from drainer.api.responses import SafeJSONResponse
from drainer.api.schemas import ErrorResponse
from drainer.consumers.replay import NotPending, ReplayConflict, ReplayRefused
from drainer.db.errors import TransientError

log = logging.getLogger("drainer.api")

MAX_SHOWN_INPUT_CHARS = 60


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: Documented on every route (status codes a route never returns do no harm).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Bad request: a filter, cursor or id is not usable."),
    401: _error("Missing or wrong bearer token."),
    403: _error("Refused: the token this needs is not configured and the API is not on loopback."),
    404: _error("No such stream, entry, tenant or dead letter."),
    409: _error("The request conflicts with the current state."),
    422: _error("A parameter or body field is invalid."),
    503: _error("Redis or the database cannot be used right now."),
}


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("query", "path", "body", "header"):
        return f"{parts[0]} {'.'.join(parts[1:])}"
    return ".".join(parts) or "request"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT_CHARS else text[: MAX_SHOWN_INPUT_CHARS - 3] + "..."


async def _validation_error(_request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        shown = f" (got {_shown(error['input'])})" if "input" in error else ""
        problems.append(f"{_where(loc)}: {message}{shown}")
        errors.append({"loc": [str(p) for p in loc], "msg": message, "type": error.get("type")})
    body = ErrorResponse(detail="; ".join(problems) or "invalid request", errors=errors)
    return SafeJSONResponse(body.model_dump(exclude_none=True), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> SafeJSONResponse:
    # FastAPI's own handler, with a response that survives any bytes in the detail
    assert isinstance(exc, HTTPException)
    headers = getattr(exc, "headers", None)
    return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


#: The HTTP status of each refusal the consumers raise (the most specific class wins).
REFUSAL_STATUS: tuple[tuple[type[ReplayRefused], int], ...] = (
    (NotPending, 404),
    (ReplayConflict, 409),
)


def refusal_status(exc: ReplayRefused) -> int:
    """The HTTP status that says why the consumers refused."""
    return next((code for cls, code in REFUSAL_STATUS if isinstance(exc, cls)), 409)


async def _replay_refused(_request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, ReplayRefused)
    return SafeJSONResponse({"detail": str(exc)}, status_code=refusal_status(exc))


async def _redis_error(_request: Request, exc: Exception) -> SafeJSONResponse:
    if isinstance(exc, ResponseError):
        # Redis refused a command built from the request: bad input that got past checks
        return SafeJSONResponse({"detail": f"Redis refused the request: {exc}"}, status_code=400)
    log.warning("operator API: Redis unavailable: %s", exc)
    return SafeJSONResponse({"detail": f"Redis unavailable: {exc}"}, status_code=503)


async def _database_error(_request: Request, exc: Exception) -> SafeJSONResponse:
    log.warning("operator API: dependency unavailable: %s", exc)
    return SafeJSONResponse({"detail": f"unavailable: {exc}"}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    """Turn refusals, validation errors and unreachable dependencies into JSON 4xx/503."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ReplayRefused, _replay_refused)
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(TransientError, _database_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _database_error)
