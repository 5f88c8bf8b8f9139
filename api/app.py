"""The operator API (FastAPI), served inside ``drainer run`` on the drainer's event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    from app.lifecycle import Drainer


def create_app(drainer: Drainer) -> FastAPI:
    """The FastAPI app bound to a running drainer."""
    api = FastAPI(title="drainer", version="0.1.0")

    @api.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    return api
