"""Health: liveness (``/health``), readiness (``/health/ready``), deep check (``/health/deep``).

Liveness asks only whether the consumer loop goes round: when PostgreSQL or
Redis is down the drainer keeps running, backs off and reports *not ready*; a
liveness failure would restart it for nothing. Readiness asks each tenant's
Redis and database now (with a short deadline), so it flips back by itself.
Both are open (kubelets call them); the deep check writes probes and needs a token.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter

from drainer.api.auth import Reader
from drainer.api.deps import Drainer, DrainerDep
from drainer.api.errors import ERROR_RESPONSES
from drainer.api.responses import SafeJSONResponse
from drainer.api.schemas import (
    Check,
    DeepHealth,
    Liveness,
    Readiness,
    TenantDeepHealth,
    TenantReadiness,
)
from drainer.consumers.probe import CheckResult, ping_redis, probe_redis, timed_check
from drainer.db.probe import ping_database, probe_database
from drainer.store import Store
from drainer.telemetry import liveness_window_s

router = APIRouter(tags=["health"])

UNAVAILABLE = 503


def _check(result: CheckResult) -> Check:
    return Check(ok=result.ok, detail=result.detail, duration_ms=result.duration_ms)


def _loop_age_s(drainer: Drainer) -> float:
    return min(store.pipeline.health.loop_age_s() for store in drainer.stores.values())


@router.get(
    "/health",
    response_model=Liveness,
    summary="Liveness: the consumer loop goes round",
    responses={UNAVAILABLE: {"model": Liveness, "description": "The consumer loop is stuck."}},
)
async def liveness(drainer: DrainerDep) -> SafeJSONResponse:
    """200 while some partition worker went round recently (``loop_age_s`` < ``stale_after_s``)."""
    window_s = liveness_window_s(drainer.settings)
    age_s = _loop_age_s(drainer)
    body = Liveness(
        status="ok" if age_s < window_s else "stale",
        consumer=drainer.options.consumer,
        uptime_s=round(time.time() - drainer.started_at, 3),
        loop_age_s=round(age_s, 3),
        stale_after_s=window_s,
        stopping=drainer.stopping,
    )
    return SafeJSONResponse(
        body.model_dump(), status_code=200 if body.status == "ok" else UNAVAILABLE
    )


async def _tenant_readiness(drainer: Drainer, store: Store, window_s: float) -> TenantReadiness:
    redis, database = await asyncio.gather(
        timed_check(lambda: ping_redis(store.redis)),
        timed_check(lambda: ping_database(store.engine)),
    )
    health = store.pipeline.health
    age_s = health.loop_age_s()
    loop_ok = age_s < window_s and not drainer.stopping
    loop = Check(
        ok=loop_ok,
        detail=None if loop_ok else ("stopping" if drainer.stopping else f"idle {age_s:.1f}s"),
        duration_ms=None,
    )
    return TenantReadiness(
        tenant=store.id,
        ready=redis.ok and database.ok and loop_ok,
        redis=_check(redis),
        database=_check(database),
        loop=loop,
        last_error=health.last_error,
    )


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: Redis and the database answer, the loop is reading",
    responses={UNAVAILABLE: {"model": Readiness, "description": "Some tenant is not ready."}},
)
async def readiness(drainer: DrainerDep) -> SafeJSONResponse:
    """200 when, for every tenant, Redis and the database answer now and the loop runs."""
    window_s = liveness_window_s(drainer.settings)
    tenants = await asyncio.gather(
        *(_tenant_readiness(drainer, store, window_s) for store in drainer.stores.values())
    )
    ready = all(t.ready for t in tenants) and not drainer.stopping
    body = Readiness(ready=ready, stopping=drainer.stopping, tenants=list(tenants))
    return SafeJSONResponse(body.model_dump(), status_code=200 if ready else UNAVAILABLE)


async def _tenant_deep(drainer: Drainer, store: Store) -> TenantDeepHealth:
    consumer = drainer.options.consumer
    redis, database = await asyncio.gather(
        timed_check(lambda: probe_redis(store.redis, store.layout.prefix, consumer)),
        timed_check(lambda: probe_database(store.engine, consumer)),
    )
    return TenantDeepHealth(
        tenant=store.id,
        healthy=redis.ok and database.ok,
        redis=_check(redis),
        database=_check(database),
    )


@router.get(
    "/health/deep",
    response_model=DeepHealth,
    summary="Deep check: write, read and delete a probe in Redis and the database",
    responses={
        UNAVAILABLE: {"model": DeepHealth, "description": "Some probe failed."},
        **ERROR_RESPONSES,
    },
)
async def deep_health(drainer: DrainerDep, _reader: Reader) -> SafeJSONResponse:
    """Per tenant: a probe stream entry and a probe watermark row, written and read back.

    It writes, so unlike the probes it needs the operator (or admin) token.
    """
    tenants = await asyncio.gather(
        *(_tenant_deep(drainer, store) for store in drainer.stores.values())
    )
    healthy = all(t.healthy for t in tenants)
    body = DeepHealth(healthy=healthy, tenants=list(tenants))
    return SafeJSONResponse(body.model_dump(), status_code=200 if healthy else UNAVAILABLE)
