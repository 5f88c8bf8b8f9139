"""One partition stream seen through its consumer group: exclusive reads, claims, acks.

The group's pending-entries list (PEL) is the only record of who works a
partition. :data:`READ_SCRIPT` checks it (and Hyperswitch's lock key of the
stream, same hash tag) and reads in one server-side step in one cluster slot.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

RedisClient = Redis | RedisCluster

HYPERSWITCH_LOCK_SUFFIX = "_in_use"


def hyperswitch_lock_key(stream_key: str) -> str:
    """The key Hyperswitch's Rust drainer sets (``SET NX EX``) while it works a partition.

    ``[<redis_key_prefix>:]{shard_N}_<stream_name>_in_use``: the stream key with
    ``_in_use`` appended, under the same prefix and ``{shard_N}`` hash tag.
    """
    return stream_key + HYPERSWITCH_LOCK_SUFFIX


# KEYS[1] stream, optional KEYS[2] Hyperswitch's lock key of the stream (same
# {shard_N} hash tag, so same cluster slot); ARGV group, consumer, count,
# claim_min_idle_ms, max_bytes.
# Returns {mode, entries, owner[, last]}: "new" entries never delivered before, "own"
# entries this consumer already holds, "claimed" entries just taken over from
# consumers idle past claim_min_idle_ms, "busy" when a live consumer holds
# entries of this partition, or "hyperswitch" while KEYS[2] exists (Hyperswitch's
# Rust drainer works the partition); on both nothing is read or claimed.
# KEYS[2] is only read (EXISTS), never set. A "new" read that found nothing also
# returns the group's last-delivered id: what a wait for the next entry starts from.
# With max_bytes > 0 the count is first cut to the entries whose fields fit in
# max_bytes (at least one, so an entry larger than the budget is read alone):
# XRANGE peeks in chunks of 1, 2, 4, ... so big entries are never all loaded
# at once, and only what fits is then delivered (a delivery cannot be undone).
READ_SCRIPT = """
local key, group, me = KEYS[1], ARGV[1], ARGV[2]
local count, min_idle = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[5] or '0')
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return {'hyperswitch', {}, false} end
local function fitting(cursor, last, mine)
  local n, bytes, chunk = 0, 0, 1
  while n < count do
    local batch = redis.call('XRANGE', key, cursor, last, 'COUNT', math.min(chunk, count - n))
    if #batch == 0 then return n end
    for _, e in ipairs(batch) do
      if mine == nil or mine[e[1]] then
        local size = #e[1]
        for _, v in ipairs(e[2]) do size = size + #v end
        if n > 0 and bytes + size > max_bytes then return n end
        n, bytes = n + 1, bytes + size
        if n >= count then return n end
      end
    end
    cursor = '(' .. batch[#batch][1]
    chunk = chunk * 2
  end
  return n
end
local function last_delivered()
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local name, at = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then at = g[i + 1] end
    end
    if name == group then return at end
  end
  return '0-0'
end
local summary = redis.call('XPENDING', key, group)
local total = tonumber(summary[1])
if total == 0 then
  local last = nil
  if max_bytes > 0 and count > 1 then
    last = last_delivered()
    count = fitting('(' .. last, '+', nil)
    if count == 0 then return {'new', {}, false, last} end
  end
  local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count, 'STREAMS', key, '>')
  if not r then return {'new', {}, false, last or last_delivered()} end
  return {'new', r[1][2], false}
end
local mine, owner = 0, false
for _, c in ipairs(summary[4]) do
  if c[1] == me then mine = tonumber(c[2]) else owner = c[1] end
end
local mode = 'own'
if mine < total then
  local stale = redis.call('XPENDING', key, group, 'IDLE', min_idle, '-', '+', total)
  local stale_others = 0
  for _, e in ipairs(stale) do
    if e[2] ~= me then stale_others = stale_others + 1 end
  end
  if stale_others < total - mine then return {'busy', {}, owner} end
  -- JUSTID: the history read below counts the delivery, once
  redis.call('XAUTOCLAIM', key, group, me, min_idle, '0-0', 'COUNT', total, 'JUSTID')
  mode = 'claimed'
end
if max_bytes > 0 and count > 1 then
  local held = redis.call('XPENDING', key, group, '-', '+', count, me)
  if #held > 0 then
    local ids = {}
    for _, p in ipairs(held) do ids[p[1]] = true end
    -- entries deleted while pending take no bytes: when none is left, read them all
    local n = fitting(held[1][1], held[#held][1], ids)
    if n > 0 then count = n end
  end
end
local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', count, 'STREAMS', key, '0')
if not r then return {mode, {}, false} end
return {mode, r[1][2], false}
"""

# KEYS[1] stream; ARGV group, consumer, ids...: reset the idle time of the ids
# this consumer still holds, leaving alone any another consumer took over.
REFRESH_SCRIPT = """
local key, group, me = KEYS[1], ARGV[1], ARGV[2]
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == me then table.insert(kept, ARGV[i]) end
end
local n = #kept
if n > 0 then
  -- unpack() spreads only as the last argument (elsewhere Lua keeps its first value)
  table.insert(kept, 'JUSTID')
  redis.call('XCLAIM', key, group, me, 0, unpack(kept))
end
return n
"""

# KEYS[1] stream; ARGV group, consumer, ids...: take back the delivery that
# the ids' last read counted, for entries that were delivered but not tried
# (behind an entry waiting to retry, or in a batch the database refused whole).
UNCOUNT_SCRIPT = """
local key, group, me = KEYS[1], ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', key, group, ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == me and tonumber(p[1][4]) > 0 then
    redis.call('XCLAIM', key, group, me, 0, ARGV[i], 'RETRYCOUNT', tonumber(p[1][4]) - 1, 'JUSTID')
    n = n + 1
  end
end
return n
"""

# KEYS[1] stream; ARGV group, consumer: remove this consumer from the group if
# it holds no pending entries (XGROUP DELCONSUMER would drop them), in one step.
# Returns 1 when it holds nothing (and is gone), 0 when it still holds entries.
RETIRE_SCRIPT = """
local key, group, me = KEYS[1], ARGV[1], ARGV[2]
local held = redis.pcall('XPENDING', key, group, '-', '+', 1, me)
if held.err then return 1 end
if #held > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', key, group, me)
return 1
"""

# KEYS[1] stream; ARGV group, consumer, min_idle_ms, limit: remove up to limit
# other consumers idle at least min_idle_ms that hold no pending entries.
# Checked and removed in one step, so an entry read in between cannot be dropped.
SWEEP_SCRIPT = """
local key, group, me = KEYS[1], ARGV[1], ARGV[2]
local min_idle, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local info = redis.pcall('XINFO', 'CONSUMERS', key, group)
if info.err then return 0 end
local removed = 0
for _, c in ipairs(info) do
  if removed >= limit then break end
  local name, pending, idle = nil, nil, nil
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = tonumber(c[i + 1])
    elseif c[i] == 'idle' then idle = tonumber(c[i + 1]) end
  end
  if name and name ~= me and pending == 0 and idle and idle >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', key, group, name)
    removed = removed + 1
  end
end
return removed
"""

# KEYS[1] stream; ARGV group, ids...: acknowledge and delete together, so the
# stream length stays the partition's backlog.
ACK_SCRIPT = """
local key, group = KEYS[1], ARGV[1]
local acked = redis.call('XACK', key, group, unpack(ARGV, 2))
redis.call('XDEL', key, unpack(ARGV, 2))
return acked
"""


class ReadMode(enum.StrEnum):
    """How a read found the partition."""

    NEW = "new"
    OWN = "own"
    CLAIMED = "claimed"
    BUSY = "busy"
    HYPERSWITCH = "hyperswitch"
    """Hyperswitch's Rust drainer holds the partition's lock key: nothing read."""


@dataclass(slots=True)
class RawEntry:
    """A stream entry as read; ``fields`` is None when it was deleted while pending."""

    entry_id: str
    fields: dict[str, str] | None


@dataclass(slots=True)
class ReadResult:
    """What one exclusive read returned."""

    mode: ReadMode
    entries: list[RawEntry]
    owner: str | None = None
    #: An empty "new" read: the group's last-delivered id (the next entry comes after it).
    last_delivered: str | None = None

    @property
    def first_delivery(self) -> bool:
        """True when the entries were never delivered to any consumer before."""
        return self.mode is ReadMode.NEW


def _fields(raw: Any) -> dict[str, str] | None:
    if not raw:
        return None
    if isinstance(raw, dict):
        return raw
    it = iter(raw)
    # Redis replies name/value pairs; strict=True would cost a check per entry
    return dict(zip(it, it, strict=False))


class StreamGroup:
    """Consumer-group operations on one partition stream for one consumer."""

    def __init__(
        self,
        redis: RedisClient,
        key: str,
        group: str,
        consumer: str,
        *,
        honour_hyperswitch_lock: bool = True,
    ) -> None:
        self.redis = redis
        self.key = key
        # read keys: the stream, then (when honoured) Hyperswitch's lock key
        self._read_keys = [key, hyperswitch_lock_key(key)] if honour_hyperswitch_lock else [key]
        self.group = group
        self.consumer = consumer
        self._read = redis.register_script(READ_SCRIPT)
        self._refresh = redis.register_script(REFRESH_SCRIPT)
        self._ack = redis.register_script(ACK_SCRIPT)
        self._uncount = redis.register_script(UNCOUNT_SCRIPT)
        self._retire = redis.register_script(RETIRE_SCRIPT)
        self._sweep = redis.register_script(SWEEP_SCRIPT)

    async def ensure_group(self) -> None:
        """Create the group from id 0 (a backlog written before first start drains)."""
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, claim_min_idle_ms: int, max_bytes: int = 0) -> ReadResult:
        """Read up to ``count`` entries if this consumer may work the partition now.

        With ``max_bytes`` > 0, only as many entries as fit in that many bytes of
        ids, field names and values (always at least one). While Hyperswitch's
        Rust drainer holds the partition's lock key (when honoured), mode
        ``hyperswitch`` and nothing read.
        """
        reply = await self._read(
            keys=self._read_keys,
            args=[self.group, self.consumer, count, claim_min_idle_ms, max_bytes],
        )
        mode = ReadMode(reply[0])
        entries = [RawEntry(item[0], _fields(item[1])) for item in (reply[1] or [])]
        owner = reply[2] if len(reply) > 2 and reply[2] else None
        last = reply[3] if len(reply) > 3 and reply[3] else None
        return ReadResult(mode, entries, owner, last)

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]:
        """How often each of ``ids`` still held here was delivered (its attempt number)."""
        return {row["message_id"]: int(row["times_delivered"]) for row in await self._held(ids)}

    async def held(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are still pending on this consumer."""
        return {row["message_id"] for row in await self._held(ids)}

    async def _held(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        rows = await self.redis.xpending_range(
            self.key,
            self.group,
            min=min(ids, key=parse_entry_id),
            max=max(ids, key=parse_entry_id),
            count=len(ids) * 2 + 10,
            consumername=self.consumer,
        )
        wanted = set(ids)
        return [row for row in rows if row["message_id"] in wanted]

    async def refresh(self, ids: Sequence[str]) -> int:
        """Keep this consumer's entries fresh so a long batch is not claimed away."""
        if not ids:
            return 0
        return int(await self._refresh(keys=[self.key], args=[self.group, self.consumer, *ids]))

    async def uncount(self, ids: Sequence[str]) -> int:
        """Undo the delivery count of held entries that were read but not tried."""
        if not ids:
            return 0
        return int(await self._uncount(keys=[self.key], args=[self.group, self.consumer, *ids]))

    async def ack(self, ids: Sequence[str]) -> int:
        """XACK and XDEL ``ids`` in one step."""
        if not ids:
            return 0
        return int(await self._ack(keys=[self.key], args=[self.group, *ids]))

    async def claim(self, ids: Sequence[str]) -> list[RawEntry]:
        """Take ``ids`` over for this consumer now, whoever holds them (operator replay).

        Counts a delivery, as a read does. Ids no longer pending are not returned;
        an entry deleted while pending is dropped from the list (Redis 7) or comes
        back without fields (Redis 6.2).
        """
        if not ids:
            return []
        reply = await self.redis.xclaim(self.key, self.group, self.consumer, 0, list(ids))
        out = []
        for item in reply or []:
            if isinstance(item, list | tuple) and item:
                out.append(RawEntry(str(item[0]), _fields(item[1] if len(item) > 1 else None)))
        return out

    async def retire(self) -> bool:
        """Remove this consumer from the group if it holds nothing; False if it still does."""
        return bool(await self._retire(keys=[self.key], args=[self.group, self.consumer]))

    async def sweep(self, min_idle_ms: int, limit: int) -> int:
        """Remove up to ``limit`` other consumers idle ``min_idle_ms`` and holding nothing."""
        return int(
            await self._sweep(keys=[self.key], args=[self.group, self.consumer, min_idle_ms, limit])
        )

    async def length(self) -> int:
        """Entries in the stream: the backlog, since applied entries are deleted."""
        return int(await self.redis.xlen(self.key))


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
