"""The operator API (FastAPI), served inside ``drainer run`` on the drainer's event loop.

Routes by noun: :mod:`drainer.api.health`, :mod:`drainer.api.pending`,
:mod:`drainer.api.replay`, :mod:`drainer.api.dead_letters` and
:mod:`drainer.api.telemetry`. Handlers call ``consumers`` and ``db``; none sends
Redis commands itself.

Importing this module loads FastAPI (about 0.3 s): ``drainer run`` does it only once
its partition workers read, and answers "starting" until then with
:class:`drainer.api.startup.StartupDispatcher`, which needs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from drainer.api import dead_letters, health, pending, replay, telemetry
from drainer.api.errors import install_error_handlers
from drainer.api.responses import SafeJSONResponse

if TYPE_CHECKING:
    from drainer.api.deps import Drainer
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
