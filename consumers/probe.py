"""Redis checks for the health endpoints, and the deadline every check runs under.

The quick check (readiness) pings. The deep check (like Hyperswitch's drainer
health check) writes, reads back and deletes a stream entry on a tenant's own
probe key. The database's checks are :mod:`drainer.db.probe`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from drainer.consumers.group import RedisClient
from drainer.consumers.streams import prefixed
from drainer.db.probe import ProbeFailed

#: Seconds a check may take before it counts as failed (probes must answer quickly).
CHECK_TIMEOUT_S = 2.0
#: Key under a tenant's prefix that the deep Redis check writes to and deletes.
PROBE_STREAM_KEY = "drainer:health_probe"
MAX_DETAIL_CHARS = 300


@dataclass(slots=True)
class CheckResult:
    """The outcome of one check."""

    ok: bool
    detail: str | None
    duration_ms: float


async def timed_check(
    check: Callable[[], Awaitable[None]], timeout_s: float = CHECK_TIMEOUT_S
) -> CheckResult:
    """Run ``check`` with a deadline; any failure becomes ``ok=False`` with the reason."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return _result(False, f"no answer within {timeout_s:.1f}s", started)
    except (RedisError, SQLAlchemyError, OSError, ProbeFailed) as exc:
        return _result(False, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL_CHARS], started)
    return _result(True, None, started)


def _result(ok: bool, detail: str | None, started: float) -> CheckResult:
    return CheckResult(ok, detail, round((time.perf_counter() - started) * 1000, 3))


async def ping_redis(redis: RedisClient) -> None:
    """Redis answers a PING."""
    await redis.ping()


async def probe_redis(redis: RedisClient, prefix: str, consumer: str) -> None:
    """Append a probe entry to the tenant's probe stream, read it back, delete the key."""
    # unique per probe: two checks at once must not see each other's entry
    key = prefixed(prefix, f"{PROBE_STREAM_KEY}:{consumer}:{uuid.uuid4().hex[:12]}")
    try:
        entry_id = await redis.xadd(key, {"probe": consumer})
        found = await redis.xrange(key, min=entry_id, max=entry_id, count=1)
        if not found:
            raise ProbeFailed(f"probe entry {entry_id!r} not read back from {key}")
    finally:
        await redis.delete(key)
