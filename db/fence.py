"""The watermark fence: per partition, the last applied entry, moved in the batch's commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

WATERMARK_TABLE = "drainer_watermark"

Position = tuple[int, int]

_CREATE = text(
    f"""
    CREATE TABLE IF NOT EXISTS {WATERMARK_TABLE} (
        stream text PRIMARY KEY,
        last_ms bigint NOT NULL DEFAULT 0,
        last_seq bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """
)
_ENSURE_ROW_SQL = (
    f"INSERT INTO {WATERMARK_TABLE} (stream) VALUES ($1) ON CONFLICT (stream) DO NOTHING"
)
# NOWAIT: a row held by another transaction fails at once (LOCK_NOT_AVAILABLE) instead
# of holding a worker slot while a frozen replica keeps its transaction (docs/design.md).
_LOCK_SQL = f"SELECT last_ms, last_seq FROM {WATERMARK_TABLE} WHERE stream = $1 FOR UPDATE NOWAIT"
#: SQLSTATE of a NOWAIT lock refused, or of a wait longer than ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"
# A partition's first row, inserted by another transaction not yet committed, makes the
# INSERT wait for that transaction (NOWAIT does not exist for it): 1 ms of lock_timeout
# (0 would mean no limit) for that statement only, then the session's own value again.
_NO_WAIT_SQL = "SET LOCAL lock_timeout = 1"
_SESSION_WAIT_SQL = "SET LOCAL lock_timeout TO DEFAULT"
_READ_ALL = text(f"SELECT stream, last_ms, last_seq FROM {WATERMARK_TABLE}")
#: Moves a partition's watermark; run on the asyncpg connection itself (positional parameters).
ADVANCE_SQL = (
    f"UPDATE {WATERMARK_TABLE} SET last_ms = $2, last_seq = $3, updated_at = now() "
    "WHERE stream = $1"
)


_SERIALIZE_CREATE = text("SELECT pg_advisory_xact_lock(hashtext('drainer_watermark'))")


async def create_watermark_table(conn: AsyncConnection) -> None:
    """Create the drainer-owned watermark table in the connection's schema if missing."""
    # CREATE TABLE IF NOT EXISTS races when replicas start together (both pass the
    # check, one fails on the catalog's unique index): take turns for the transaction
    await conn.execute(_SERIALIZE_CREATE)
    await conn.execute(_CREATE)


async def lock_watermark_on(driver: Any, stream: str) -> Position:
    """Lock the partition's watermark row for this transaction and return it.

    Runs on the session's asyncpg connection, in its transaction (as
    :func:`advance_watermark_on`): once per batch, SQLAlchemy's statement execution
    cost more than the round trip. Never waits for a row another transaction holds
    or is creating: the statement fails with SQLSTATE :data:`LOCK_NOT_AVAILABLE`
    (the caller backs off the partition). Raises asyncpg's errors.
    """
    row = await driver.fetchrow(_LOCK_SQL, stream)
    if row is None:
        # once per partition, ever: the extra round trips do not matter
        await driver.execute(_NO_WAIT_SQL)
        await driver.execute(_ENSURE_ROW_SQL, stream)
        await driver.execute(_SESSION_WAIT_SQL)
        row = await driver.fetchrow(_LOCK_SQL, stream)
    assert row is not None  # the row was just ensured inside this transaction
    return int(row[0]), int(row[1])


async def advance_watermark_on(driver: Any, stream: str, position: Position) -> None:
    """Move the partition's watermark on the session's asyncpg connection, in its transaction.

    The batch's hot path: it skips SQLAlchemy's per-statement work (db.driver).
    """
    await driver.execute(ADVANCE_SQL, stream, position[0], position[1])


async def read_watermarks(conn: AsyncConnection) -> dict[str, Position]:
    """Every partition's watermark (for inspection)."""
    rows = (await conn.execute(_READ_ALL)).all()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
