"""Parked entities (``on_dead_letter = "park_entity"``): an entity waits behind its dead letter.

Once an entry of a ``global_id`` is dead-lettered in a partition, the partition
parks that entity: its later entries there are dead-lettered as ``parked``,
naming the dead letter they wait for, while other entities flow on. The park
is a row of the drainer-owned table ``drainer_parked`` in the tenant's schema,
written in the batch's own transaction (under the watermark row's lock), so a
later batch, another replica or a restart keeps parking.

A row holds the head (the first dead letter: its partition stream entry id and
its dead-letter id) and the dead-letter ids of the parked entries, in stream
order. Releasing it (:func:`release`) takes the watermark row's lock, so no
batch of the partition commits while the released entries are put back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from drainer.db.errors import PermanentError
from drainer.db.fence import LOCK_NOT_AVAILABLE, WATERMARK_TABLE

PARKED_TABLE = "drainer_parked"
#: Milliseconds a release waits for the partition's watermark row (a batch in flight).
RELEASE_LOCK_TIMEOUT_MS = 5_000

T = TypeVar("T")

_CREATE = text(
    f"""
    CREATE TABLE IF NOT EXISTS {PARKED_TABLE} (
        stream text NOT NULL,
        global_id text NOT NULL,
        head_id text NOT NULL,
        head_dead_letter_id text NOT NULL DEFAULT '',
        parked text[] NOT NULL DEFAULT '{{}}',
        parked_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stream, global_id)
    )
    """
)
_SERIALIZE_CREATE = text("SELECT pg_advisory_xact_lock(hashtext('drainer_parked'))")

#: The batch's lookup (asyncpg, positional): parks of this batch's entities only.
LOOKUP_SQL = (
    f"SELECT global_id, head_id FROM {PARKED_TABLE} WHERE stream = $1 AND global_id = ANY($2)"
)
#: A new park (its head dead-lettered in this batch) with what it parked already.
INSERT_SQL = (
    f"INSERT INTO {PARKED_TABLE} (stream, global_id, head_id, head_dead_letter_id, parked) "
    "VALUES ($1, $2, $3, $4, $5)"
)
#: Entries parked behind an existing park, appended in stream order.
APPEND_SQL = (
    f"UPDATE {PARKED_TABLE} SET parked = parked || $3::text[] WHERE stream = $1 AND global_id = $2"
)

_LOCK_TIMEOUT = text(f"SET LOCAL lock_timeout = {RELEASE_LOCK_TIMEOUT_MS}")
_LOCK_WATERMARK = text(f"SELECT 1 FROM {WATERMARK_TABLE} WHERE stream = :stream FOR UPDATE")
_SELECT_PARK = text(
    f"SELECT head_id, head_dead_letter_id, parked FROM {PARKED_TABLE} "
    "WHERE stream = :stream AND global_id = :gid FOR UPDATE"
)
_DELETE_PARK = text(f"DELETE FROM {PARKED_TABLE} WHERE stream = :stream AND global_id = :gid")
_ANY_PARKS = text(f"SELECT stream, global_id, head_id, parked FROM {PARKED_TABLE}")


class EntryParked(PermanentError):
    """An entry of an entity parked behind an earlier dead letter of it."""

    error_class = "parked"

    def __init__(self, stream: str, head_id: str, global_id: str) -> None:
        self.stream = stream
        self.head_id = head_id
        super().__init__(
            f"parked behind the dead letter of {stream} {head_id} (global_id {global_id!r}): "
            "requeue or discard that one to release this"
        )


class PartitionLocked(Exception):
    """The partition's watermark row stayed locked (a batch in flight): try again."""


@dataclass(frozen=True, slots=True)
class Park:
    """One parked entity of a partition."""

    stream: str
    global_id: str
    head_id: str
    head_dead_letter_id: str
    parked: list[str]


async def create_parked_table(conn: AsyncConnection) -> None:
    """Create the drainer-owned park table in the connection's schema if missing."""
    # replicas starting together race on CREATE TABLE IF NOT EXISTS (as db.fence)
    await conn.execute(_SERIALIZE_CREATE)
    await conn.execute(_CREATE)


async def lookup(driver: Any, stream: str, global_ids: Iterable[str]) -> dict[str, str]:
    """The parked entities among ``global_ids`` and their heads' entry ids (one query)."""
    wanted = sorted(set(global_ids))
    if not wanted:
        return {}
    rows = await driver.fetch(LOOKUP_SQL, stream, wanted)
    return {str(r[0]): str(r[1]) for r in rows}


async def record(
    driver: Any,
    stream: str,
    new: Sequence[tuple[str, str, str, list[str]]],
    appended: dict[str, list[str]],
) -> None:
    """Write this batch's parks, inside its transaction.

    ``new``: (global_id, head entry id, head dead-letter id, parked dead-letter ids);
    ``appended``: global_id to the dead-letter ids parked behind an existing park.
    """
    if new:
        await driver.executemany(INSERT_SQL, [(stream, *row) for row in new])
    if appended:
        await driver.executemany(APPEND_SQL, [(stream, gid, ids) for gid, ids in appended.items()])


async def release(
    engine: AsyncEngine,
    stream: str,
    global_id: str,
    put_back: Callable[[Park | None], Awaitable[tuple[T, bool]]],
) -> T:
    """Run ``put_back`` with the entity's park (or None); remove the park if it says so.

    ``put_back`` returns its result and whether the park is released (to be deleted).

    The watermark row of ``stream`` is locked for the whole step (waiting at most
    :data:`RELEASE_LOCK_TIMEOUT_MS`, else :class:`PartitionLocked`): no batch of
    the partition commits meanwhile, so the park cannot grow and the entries
    ``put_back`` requeues are not read against a park about to go. If the process
    dies after ``put_back`` and before the commit, the park stays: the requeued
    entries are parked again behind it (nothing lost, order kept) and releasing
    any of its dead letters again finishes the job (see docs/operations.md).
    """
    async with engine.connect() as conn, conn.begin():
        try:
            await conn.execute(_LOCK_TIMEOUT)
            await conn.execute(_LOCK_WATERMARK, {"stream": stream})
            row = (await conn.execute(_SELECT_PARK, {"stream": stream, "gid": global_id})).first()
        except DBAPIError as exc:
            if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
                raise PartitionLocked(stream) from exc
            raise
        park = (
            Park(stream, global_id, str(row[0]), str(row[1]), [str(i) for i in row[2] or []])
            if row is not None
            else None
        )
        done, released = await put_back(park)
        if park is not None and released:
            await conn.execute(_DELETE_PARK, {"stream": stream, "gid": global_id})
    return done


async def read_parks(conn: AsyncConnection) -> list[Park]:
    """Every park of the schema (for inspection and tests)."""
    rows = (await conn.execute(_ANY_PARKS)).all()
    return [Park(str(r[0]), str(r[1]), str(r[2]), "", [str(i) for i in r[3] or []]) for r in rows]


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None
