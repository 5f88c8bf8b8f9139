"""The API while start-up runs: "starting" answers from a bare ASGI app, with no FastAPI.

``drainer run`` binds and serves the operator API before the first store attempt, so
probes answer while start-up waits for Redis or the database and while it reflects
the tables. Importing FastAPI and building the real app (:func:`drainer.api.app.create_app`)
takes about 0.3 s of CPU, a fifth of start-up, and nothing before the first read needs
it: so the process first serves :class:`StartupDispatcher`, which writes its three
fixed answers with plain ASGI messages (not even Starlette's responses: they pull in
forms, cookies and anyio, ~15 ms), and the composition root (``drainer.main``) sets
``app`` once the partition workers have started, on the same socket.

This module imports only the standard library and :mod:`drainer.escaping`; it must
stay that way (``tests/test_service_imports.py`` checks that ``drainer run`` with the
server disabled imports no ``fastapi`` module, and this module is what it imports
with the server enabled before the first read).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from drainer.escaping import printable

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

#: HTTP status of readiness and of every other endpoint while starting.
UNAVAILABLE = 503
LIVENESS_PATH = "/health"
READINESS_PATH = "/health/ready"


class StartupState(Protocol):
    """What start-up waits for, while the API answers "starting"."""

    @property
    def waiting_for(self) -> str:
        """A short description of what start-up waits for now."""


def starting_answer(path: str, waiting_for: str) -> tuple[int, dict[str, Any]]:
    """The status code and JSON body for ``path`` while start-up waits for ``waiting_for``.

    Liveness is 200 (the process is alive and retrying: a restart would not help),
    readiness 503, every other endpoint 503 with the same reason.
    """
    detail = f"starting: waiting for {waiting_for}"
    route = path.rstrip("/")
    if route == LIVENESS_PATH:
        return 200, {"status": "starting", "detail": detail}
    if route == READINESS_PATH:
        return UNAVAILABLE, {"ready": False, "status": "starting", "detail": detail}
    return UNAVAILABLE, {"detail": detail}


def render_json(content: Any) -> bytes:
    """``content`` as the API's JSON responses encode it (``drainer.api.responses``).

    Compact UTF-8; a string that is not valid Unicode (an error message quoting bytes
    that were not UTF-8) is shown with those bytes as ``\\xNN`` instead of failing.
    """
    try:
        return _dumps(content)
    except ValueError:  # UnicodeEncodeError (a lone surrogate) or NaN / infinity
        return _dumps(printable(content))


def _dumps(content: Any) -> bytes:
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


class StartupDispatcher:
    """The ASGI app served from before the stores open: "starting" until ``app`` is set.

    The composition root (``drainer.main``, and the parent of ``drainer run --workers``)
    serves it before the first store attempt, so probes answer while start-up retries
    (:func:`starting_answer`), then sets ``app`` to the real app, which takes over on
    the same socket for every request that arrives after.
    """

    def __init__(self, status: StartupState) -> None:
        self.status = status
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and lifespan: nothing to offer while starting
        status, content = starting_answer(scope.get("path", ""), self.status.waiting_for)
        body = render_json(content)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body)).encode("latin-1")),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
