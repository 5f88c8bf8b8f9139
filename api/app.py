"""The operator API (FastAPI), served inside ``drainer run`` on the drainer's event loop.

Routes by noun: :mod:`drainer.api.health`, :mod:`drainer.api.pending`,
:mod:`drainer.api.replay`, :mod:`drainer.api.dead_letters` and
:mod:`drainer.api.telemetry`. Handlers call ``consumers`` and ``db``; none sends
Redis commands itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from drainer.api import dead_letters, health, pending, replay, telemetry
from drainer.api.errors import install_error_handlers
from drainer.api.responses import SafeJSONResponse

if TYPE_CHECKING:
    from drainer.api.deps import Drainer, StartupState
    from drainer.consumers.replay import Replayer

#: 2: entry contents need a token and listings are redacted by default.
API_VERSION = "2.0.0"
DESCRIPTION = """\
Operate a running drainer: health and readiness, the backlog and pending entries
of every partition, replay of a pending entry, dead letters (list, requeue,
discard), Prometheus metrics and the trace id of an entity.

Probes (`/health`, `/health/ready`), `/pending` counts, `/metrics` and
`/trace-id` are open. Endpoints that show entry contents (dead letters, pending
entries) and `/health/deep` need `Authorization: Bearer <token>` with
`server.operator_token` (read-only) or `server.admin_token`; listings are
redacted unless `contents=full`. Endpoints that change state need
`server.admin_token`. With no token configured for a level, it is allowed only
when the server listens on loopback. Bytes that are not UTF-8 are shown as `\\xNN`.
"""


def create_app(drainer: Drainer) -> FastAPI:
    """The FastAPI app bound to a running drainer."""
    api = FastAPI(
        title="drainer operator API",
        version=API_VERSION,
        description=DESCRIPTION,
        # every route: a response survives any bytes an entry holds (api.responses)
        default_response_class=SafeJSONResponse,
    )
    api.state.drainer = drainer
    replayers: dict[str, Replayer] = {}
    api.state.replayers = replayers
    install_error_handlers(api)
    for module in (health, pending, replay, dead_letters, telemetry):
        api.include_router(module.router)
    return api


class StartupDispatcher:
    """The ASGI app uvicorn serves from before the stores open: "starting" until ``app`` is set.

    The composition root (``drainer.main``) serves it before the first store attempt,
    so probes answer while start-up retries (:func:`drainer.api.health.starting_response`),
    then sets ``app`` to the real app, which takes over on the same socket.
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
        response = health.starting_response(scope.get("path", ""), self.status.waiting_for)
        await response(scope, receive, send)
