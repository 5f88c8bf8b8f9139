"""The dead-letter stream: entries that can never apply, kept with why, until an operator acts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster

from drainer.consumers.group import RedisClient, parse_entry_id

#: Fields the drainer adds to an entry's own fields when it dead-letters it.
META_FIELDS = (
    "dl_source_stream",
    "dl_source_id",
    "dl_error_class",
    "dl_error",
    "dl_attempts",
    "dl_at",
)
#: Largest attempt count read as written (a delivery counter never gets near it).
MAX_COUNT = 2**63 - 1
#: Latest dead-letter time read as written (9999-12-31T23:59:59Z, what a datetime holds).
MAX_UNIX_S = 253_402_300_799

# KEYS[1] source stream, KEYS[2] dead-letter stream; ARGV dead-letter id, then the
# original fields as name, value pairs. Both keys are written in one step, so a
# requeued entry is never both requeued and still dead, nor neither; a dead letter
# already requeued or discarded is not appended again (returns false).
REQUEUE_SCRIPT = """
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local moved = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return moved
"""

# Releasing a parked entity (db.parking). KEYS[1] source stream, KEYS[2] dead-letter
# stream; ARGV[1] a dead letter to discard ("" for none), then the dead letters to put
# back, in order. One script: every one is requeued in order and removed, or none is
# (a crash cannot split or reorder them). The dl_* fields are left out of the requeued
# entry; a dead letter already gone is skipped (false in the reply).
RELEASE_SCRIPT = """
local meta = {}
for _, name in ipairs(cjson.decode(ARGV[1])) do meta[name] = true end
if ARGV[2] ~= '' then redis.call('XDEL', KEYS[2], ARGV[2]) end
local out = {}
for i = 3, #ARGV do
  local found = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])
  local moved = false
  if #found > 0 then
    local raw, flat = found[1][2], {}
    for j = 1, #raw, 2 do
      if not meta[raw[j]] then
        flat[#flat + 1] = raw[j]
        flat[#flat + 1] = raw[j + 1]
      end
    end
    if #flat > 0 then
      moved = redis.call('XADD', KEYS[1], '*', unpack(flat))
      redis.call('XDEL', KEYS[2], ARGV[i])
    end
  end
  out[#out + 1] = moved
end
return out
"""


#: Entries of a partition stream read per round trip when a release looks ahead.
QUEUED_SCAN_PAGE = 1000


async def queued_of(
    redis: RedisClient, stream: str, global_id: str, *, scan_max: int
) -> int | None:
    """How many entries of ``global_id`` are still queued on ``stream`` (not applied).

    Applied entries are deleted from the partition streams, so what is left is the
    backlog and the batches in flight. None when the stream holds more than
    ``scan_max`` entries (too many to look at for one request).
    """
    if int(await redis.xlen(stream)) > scan_max:
        return None
    found, start = 0, "-"
    while True:
        reply = await redis.xrange(stream, min=start, max="+", count=QUEUED_SCAN_PAGE)
        rows = cast(list[tuple[Any, Any]], reply or [])
        for _id, fields in rows:
            value = (fields or {}).get("global_id") or (fields or {}).get(b"global_id")
            if value in (global_id, global_id.encode()):
                found += 1
        if len(rows) < QUEUED_SCAN_PAGE:
            return found
        ms, seq = parse_entry_id(str(rows[-1][0]))
        start = f"{ms}-{seq + 1}"


@dataclass(slots=True)
class DeadLetter:
    """One dead letter as stored."""

    id: str
    source_stream: str
    source_id: str
    error_class: str
    error: str
    attempts: int
    dead_lettered_at: float
    fields: dict[str, str]

    @classmethod
    def from_stream(cls, entry_id: str, raw: dict[str, str]) -> DeadLetter:
        """Decode a dead-letter stream entry; never raises.

        The drainer writes the ``dl_*`` fields, but anyone with access to Redis can
        append to the stream: a count or time that does not parse reads as 0, so one
        damaged record cannot make every page that holds it fail.
        """
        return cls(
            id=entry_id,
            source_stream=raw.get("dl_source_stream", ""),
            source_id=raw.get("dl_source_id", ""),
            error_class=raw.get("dl_error_class", ""),
            error=raw.get("dl_error", ""),
            attempts=_count(raw.get("dl_attempts")),
            dead_lettered_at=_unix_s(raw.get("dl_at")),
            fields={k: v for k, v in raw.items() if k not in META_FIELDS},
        )


def _count(text: str | None) -> int:
    try:
        value = int(text or 0)
    except ValueError:
        return 0
    return value if 0 <= value <= MAX_COUNT else 0


def _unix_s(text: str | None) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    # a datetime cannot hold NaN, infinity or dates beyond year 9999
    return value if 0 <= value <= MAX_UNIX_S else 0.0


@dataclass(slots=True)
class NewDeadLetter:
    """A dead letter about to be written."""

    source_stream: str
    source_id: str
    fields: dict[str, str]
    error_class: str
    error: str
    attempts: int


class DeadLetterStream:
    """A tenant's dead-letter stream (``<prefix>drainer:dead_letter``)."""

    def __init__(self, redis: RedisClient, key: str) -> None:
        self.redis = redis
        self.key = key
        self._requeue = redis.register_script(REQUEUE_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    async def add(self, letters: Sequence[NewDeadLetter]) -> list[str]:
        """Append dead letters (one round trip); returns their ids."""
        if not letters:
            return []
        now = f"{time.time():.3f}"
        pipe = self.redis.pipeline(transaction=False)
        for letter in letters:
            body: dict[str, Any] = {k: v for k, v in letter.fields.items() if k not in META_FIELDS}
            body.update(
                dl_source_stream=letter.source_stream,
                dl_source_id=letter.source_id,
                dl_error_class=letter.error_class,
                dl_error=letter.error[:4000],
                dl_attempts=str(letter.attempts),
                dl_at=now,
            )
            pipe.xadd(self.key, body)  # type: ignore[arg-type]
        return [str(i) for i in await pipe.execute()]

    async def length(self) -> int:
        """How many dead letters there are."""
        return int(await self.redis.xlen(self.key))

    async def page(self, *, start: str = "-", end: str = "+", count: int = 100) -> list[DeadLetter]:
        """Dead letters in id order from ``start`` (inclusive)."""
        rows = await self._range(start, end, count)
        return [DeadLetter.from_stream(i, f) for i, f in rows]

    async def _range(self, start: str, end: str, count: int) -> list[tuple[str, dict[str, str]]]:
        reply = await self.redis.xrange(self.key, min=start, max=end, count=count)
        return [(str(i), dict(f or {})) for i, f in cast(list[tuple[Any, Any]], reply or [])]

    async def all(self, *, page: int = 500) -> list[DeadLetter]:
        """Every dead letter (operator-sized: the dead-letter stream stays small)."""
        out: list[DeadLetter] = []
        start = "-"
        while True:
            batch = await self.page(start=start, count=page)
            out.extend(batch)
            if len(batch) < page:
                return out
            ms, seq = parse_entry_id(batch[-1].id)
            start = f"{ms}-{seq + 1}"

    async def get(self, dead_letter_id: str) -> DeadLetter | None:
        """One dead letter by id, or None."""
        rows = await self._range(dead_letter_id, dead_letter_id, 1)
        return DeadLetter.from_stream(*rows[0]) if rows else None

    async def requeue(self, letter: DeadLetter) -> str | None:
        """Append the original entry to its partition stream and remove the dead letter.

        Returns the new entry id, or None when the dead letter was already gone
        (requeued or discarded meanwhile). On one Redis both happen in one script.
        On Redis Cluster the two keys live in different slots, so it is XADD then
        XDEL: a crash between them leaves the dead letter in place as well as the
        requeued entry (requeueing it again would apply it twice, which the
        operation's own idempotence must absorb).
        """
        flat: list[str] = []
        for name, value in letter.fields.items():
            flat.extend((name, value))
        if not flat:
            raise ValueError(f"dead letter {letter.id} has no fields to requeue")
        if isinstance(self.redis, RedisCluster):
            if await self.get(letter.id) is None:
                return None
            moved = await self.redis.xadd(letter.source_stream, dict(letter.fields))  # type: ignore[arg-type]
            await self.redis.xdel(self.key, letter.id)
            return str(moved)
        moved = await self._requeue(keys=[letter.source_stream, self.key], args=[letter.id, *flat])
        return str(moved) if moved else None

    async def put_back(
        self, stream: str, requeue_ids: Sequence[str], *, discard_id: str | None = None
    ) -> list[str | None]:
        """Requeue dead letters onto ``stream`` in the order given, in one step.

        ``discard_id``, if given, is deleted in the same step. Returns each one's new
        entry id, None for one already gone. On one Redis all of it is one script;
        on Redis Cluster (two slots) it is one dead letter after another, XADD then
        XDEL, in order: a crash midway leaves the rest as dead letters, in order.
        """
        if isinstance(self.redis, RedisCluster):
            if discard_id:
                await self.redis.xdel(self.key, discard_id)
            out: list[str | None] = []
            for dead_id in requeue_ids:
                letter = await self.get(dead_id)
                out.append(await self.requeue(letter) if letter and letter.fields else None)
            return out
        args = [json.dumps(META_FIELDS), discard_id or "", *requeue_ids]
        reply = await self._release(keys=[stream, self.key], args=args)
        return [str(m) if m else None for m in cast(list[Any], reply or [])]

    async def discard(self, ids: Iterable[str]) -> int:
        """Delete dead letters; returns how many existed."""
        wanted = list(ids)
        return int(await self.redis.xdel(self.key, *wanted)) if wanted else 0
