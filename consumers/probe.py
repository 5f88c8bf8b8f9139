"""Dependency checks for the health endpoints: does Redis answer, does the database answer.

The quick checks (readiness) ping. The deep checks (like Hyperswitch's
drainer health check) write, read back and delete a probe: a stream entry on
a tenant's own probe key in Redis, and a row of the drainer-owned watermark
table in the database (in a transaction that is rolled back, so nothing stays
even if the delete is skipped).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drainer.consumers.group import RedisClient
from drainer.consumers.streams import prefixed
from drainer.db.fence import WATERMARK_TABLE

#: Seconds a check may take before it counts as failed (probes must answer quickly).
CHECK_TIMEOUT_S = 2.0
#: Key under a tenant's prefix that the deep Redis check writes to and deletes.
PROBE_STREAM_KEY = "drainer:health_probe"
#: Watermark-table row the deep database check writes; never a real stream key.
PROBE_ROW_PREFIX = "drainer:health_probe:"
MAX_DETAIL_CHARS = 300

_INSERT = text(f"INSERT INTO {WATERMARK_TABLE} (stream) VALUES (:stream)")
_SELECT = text(f"SELECT count(*) FROM {WATERMARK_TABLE} WHERE stream = :stream")
_DELETE = text(f"DELETE FROM {WATERMARK_TABLE} WHERE stream = :stream")


class ProbeFailed(Exception):
    """A probe ran but did not read back what it wrote."""


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


async def ping_database(engine: AsyncEngine) -> None:
    """The database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


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


async def probe_database(engine: AsyncEngine, consumer: str) -> None:
    """Insert, read back and delete a probe row of the watermark table (rolled back)."""
    row = f"{PROBE_ROW_PREFIX}{consumer}:{uuid.uuid4().hex[:12]}"
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(_INSERT, {"stream": row})
            found = await conn.scalar(_SELECT, {"stream": row})
            if found != 1:
                raise ProbeFailed(f"probe row {row!r} not read back ({found} found)")
            await conn.execute(_DELETE, {"stream": row})
        finally:
            await transaction.rollback()
