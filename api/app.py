"""The operator API (FastAPI), served inside ``drainer run`` on the drainer's event loop.

Routes by noun: :mod:`api.health`, :mod:`api.pending` and :mod:`api.replay`,
:mod:`api.dead_letters`, :mod:`api.telemetry`. Handlers call ``consumers`` and
``db``; none sends Redis commands itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from api import dead_letters, health, pending, replay, telemetry
from api.errors import install_error_handlers

if TYPE_CHECKING:
    from app.lifecycle import Drainer
    from consumers.replay import Replayer

API_VERSION = "1.0.0"
DESCRIPTION = """\
Operate a running drainer: health and readiness, the backlog and pending entries
of every partition, replay of a pending entry, dead letters (list, requeue,
discard), Prometheus metrics and the trace id of an entity.

Reading endpoints are open. Endpoints that change state need
`Authorization: Bearer <server.admin_token>`; without a configured token they
are allowed only when the server listens on loopback.
"""


def create_app(drainer: Drainer) -> FastAPI:
    """The FastAPI app bound to a running drainer."""
    api = FastAPI(title="drainer operator API", version=API_VERSION, description=DESCRIPTION)
    api.state.drainer = drainer
    replayers: dict[str, Replayer] = {}
    api.state.replayers = replayers
    install_error_handlers(api)
    for module in (health, pending, replay, dead_letters, telemetry):
        api.include_router(module.router)
    return api
