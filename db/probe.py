"""Database checks for the health endpoints: does the database answer, can it be written.

The quick check (readiness) runs ``SELECT 1``. The deep check (like Hyperswitch's
drainer health check) writes, reads back and deletes a row of the drainer-owned
watermark table, in a transaction that is rolled back, so nothing stays even if the
delete is skipped.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from drainer.db.fence import WATERMARK_TABLE

#: Watermark-table row the deep database check writes; never a real stream key.
PROBE_ROW_PREFIX = "drainer:health_probe:"

_INSERT = text(f"INSERT INTO {WATERMARK_TABLE} (stream) VALUES (:stream)")
_SELECT = text(f"SELECT count(*) FROM {WATERMARK_TABLE} WHERE stream = :stream")
_DELETE = text(f"DELETE FROM {WATERMARK_TABLE} WHERE stream = :stream")


class ProbeFailed(Exception):
    """A probe ran but did not read back what it wrote."""


async def ping_database(engine: AsyncEngine) -> None:
    """The database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


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
