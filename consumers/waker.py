"""Wakes idle partition workers when their stream gets an entry, instead of polling.

An empty partition is polled less and less often (up to ``idle_poll_max_ms``), so
at low traffic an entry could wait most of a second for its partition's next
read. The waker watches the partitions that have stayed empty with one blocking
``XREAD`` (``COUNT 1``, no group: it delivers nothing and changes nothing) from
each stream's last-delivered id, which the read script returns with an empty
read, so an entry appended after that read cannot be missed; the first one
after it ends the read and wakes that partition's worker, which then reads with
its exclusive script as always. The read blocks at most :data:`WAKE_BLOCK_MS`,
so partitions that go idle meanwhile are watched from the next one on.

A worker's poll stays its fallback: a waker that fails (Redis down) releases
every watch and backs off, and the workers' own timers keep the partitions read.
One ``XREAD`` spans keys in many hash slots, so on Redis Cluster there is no
waker (the supervisor makes none) and idle partitions are polled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from drainer.consumers.aio import wait_or_stop
from drainer.consumers.group import RedisClient

log = logging.getLogger("drainer.waker")

#: Longest one watching read blocks; a partition that goes idle meanwhile is
#: watched from the next read (so it is woken at most this much later).
WAKE_BLOCK_MS = 50
#: Pause after a failed watching read (the workers poll meanwhile).
WAKE_RETRY_S = 1.0


class Waker:
    """One blocking read for every watched stream; sets each stream's event on an entry."""

    def __init__(self, redis: RedisClient, *, block_ms: int = WAKE_BLOCK_MS) -> None:
        self.redis = redis
        self.block_ms = block_ms
        # stream -> (id to read after, event of the worker waiting on it)
        self._watches: dict[str, tuple[str, asyncio.Event]] = {}
        self._watched = asyncio.Event()  # set while there is something to watch
        self._closed = False

    def watch(self, stream: str, after_id: str) -> asyncio.Event:
        """An event set when ``stream`` gets an entry after ``after_id`` (or the waker stops)."""
        event = asyncio.Event()
        if self._closed:
            event.set()
            return event
        self._watches[stream] = (after_id, event)
        self._watched.set()
        return event

    def is_watching(self, stream: str) -> bool:
        """True while ``stream``'s worker waits on the waker."""
        return stream in self._watches

    def unwatch(self, stream: str) -> None:
        """Stop watching ``stream`` (its worker read it again)."""
        self._watches.pop(stream, None)

    def release_all(self) -> None:
        """Set every watched event: the workers go back to reading (stop, or a failure)."""
        watches, self._watches = self._watches, {}
        for _, event in watches.values():
            event.set()

    def close(self) -> None:
        """Release every watch and end :meth:`run` (idempotent)."""
        self._closed = True
        self.release_all()
        self._watched.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` or :meth:`close` (held and awaited by the supervisor)."""
        while not (stop.is_set() or self._closed):
            if not self._watches:
                self._watched.clear()
                await self._watched.wait()
                continue
            streams: dict[Any, Any] = {s: after for s, (after, _) in self._watches.items()}
            try:
                reply = await self.redis.xread(streams, count=1, block=self.block_ms)
            except RedisError as exc:
                log.warning("watching idle partitions failed (%s); they are polled", exc)
                self.release_all()
                await wait_or_stop(stop, WAKE_RETRY_S)
                continue
            for stream in _streams_of(reply):
                watch = self._watches.get(stream)
                if watch is not None and watch[0] == streams.get(stream):
                    del self._watches[stream]
                    watch[1].set()
        self.release_all()


def _streams_of(reply: Any) -> list[str]:
    """The stream names of an ``XREAD`` reply (RESP2: pairs; RESP3: a map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [str(key) for key in reply]
    return [str(item[0]) for item in reply]
