"""The bound on partitions worked at once, sized by the throughput it measures.

Each partition worker holds a slot of the limiter for one read-apply-ack round. The
limit starts at ``max_concurrent_partitions`` and, with ``adaptive_concurrency``,
climbs the throughput curve one step at a time: every ``window_s`` during which a
worker had to wait for a slot, or that ends with every slot taken (otherwise the
limit is not what bounds the drain, and nothing is learned), the entries applied
per second are compared with the window before, at the limit before:

* better by more than ``ADAPT_TOLERANCE``: the next step goes the same way;
* otherwise (worse, or no better) it goes back the way it came.

So the limit walks to the top of the curve and then probes its neighbours, one
window each, and on a flat stretch it swings between two neighbours instead of
drifting to either end.

The limit stays between ``min_limit`` and ``max_concurrent_partitions``. On two
cores, where one process's Python is the bottleneck, the curve is nearly flat from
4 to 32 (docs/performance.md); a slow database or a remote Redis, where rounds
spend most of their time waiting, makes it rise, and the limit follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

log = logging.getLogger("drainer.limiter")

#: Seconds of draining compared at a time (throughput is noisy over shorter spans).
DEFAULT_ADAPT_WINDOW_S = 2.0
#: A change of throughput smaller than this fraction counts as none.
ADAPT_TOLERANCE = 0.10
#: The fewest partitions worked at once when adapting: one round's waits for the
#: database and Redis then still overlap another's work.
DEFAULT_MIN_LIMIT = 2


class PartitionLimiter:
    """A semaphore of partition rounds whose size follows the measured throughput."""

    def __init__(
        self,
        max_limit: int,
        *,
        adaptive: bool = True,
        min_limit: int = DEFAULT_MIN_LIMIT,
        window_s: float = DEFAULT_ADAPT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_limit < 1:
            raise ValueError(f"max_limit must be at least 1, got {max_limit}")
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self.adaptive = adaptive
        self.window_s = window_s
        self._clock = clock
        #: Rounds allowed at once now.
        self.limit = max_limit
        #: Rounds holding a slot now.
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # the current window: its start, entries applied, whether anyone waited
        self._window_start = clock()
        self._entries = 0
        self._contended = False
        # throughput of the last contended window (at the limit before the step)
        self._last_rate: float | None = None
        self._direction = -1
        self._held = False

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served)."""
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        self._contended = True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as it was cancelled: the slot goes back
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back."""
        if self.in_use <= 0:
            raise RuntimeError("PartitionLimiter released more often than acquired")
        self.in_use -= 1
        self._grant()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def _grant(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    def done(self, entries: int) -> None:
        """A round ended having handled ``entries``; may move the limit (once per window)."""
        self._entries += entries
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < self.window_s:
            return
        rate = self._entries / elapsed
        # someone waited for a slot in this window, or every slot is taken now (the
        # round reporting holds one)
        contended = self._contended or self.in_use >= self.limit
        self._window_start, self._entries, self._contended = now, 0, False
        if not self.adaptive or self._held:
            return
        if not contended:
            self._last_rate = None  # the next contended window starts afresh
            return
        last = self._last_rate
        if last is not None and rate <= last * (1 + ADAPT_TOLERANCE):
            self._direction = -self._direction  # no better (or worse): the next step goes back
        self._last_rate = rate
        self._set_limit(self.limit + self._direction)

    def _set_limit(self, limit: int) -> None:
        new = max(self.min_limit, min(self.max_limit, limit))
        if new == self.limit:
            self._direction = -self._direction  # at a bound: the next probe turns back
            return
        log.debug("partitions worked at once: %d -> %d", self.limit, new)
        self.limit = new
        self._grant()

    @contextlib.asynccontextmanager
    async def hold_all(self) -> AsyncIterator[None]:
        """Hold every slot (waiting for the rounds in flight): no round runs inside."""
        self._held = True
        taken = 0
        try:
            while taken < self.limit:  # the limit stays put while held
                await self.acquire()
                taken += 1
            yield
        finally:
            for _ in range(taken):
                self.release()
            self._held = False
