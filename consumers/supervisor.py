"""Runs every partition worker of every tenant, bounded, supervised and stoppable.

It also keeps the groups' consumer lists short: a worker that stops cleanly
removes its own consumer from its partition's group when it holds nothing, and
a sweeper removes other consumers idle past ``consumer_sweep_idle_ms`` that hold
nothing, one partition at a time, each about once per
``consumer_sweep_interval_ms``. Both check and remove in one Redis script, so a
consumer holding pending entries is never removed (those entries get claimed).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from drainer.consumers.aio import cancel_and_wait, wait_or_stop
from drainer.consumers.group import RedisClient
from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.options import ConsumerOptions
from drainer.consumers.partition import PartitionWorker, Pipeline
from drainer.consumers.waker import Waker

log = logging.getLogger("drainer.supervisor")

RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
# most consumers one sweep of one partition removes: bounded work per Redis call
SWEEP_MAX_CONSUMERS = 100


class Supervisor:
    """Holds one task per partition; a worker that crashes is logged and restarted."""

    def __init__(
        self,
        pipelines: Sequence[Pipeline],
        redis: RedisClient,
        options: ConsumerOptions,
        *,
        burst: bool = False,
    ) -> None:
        self.pipelines = list(pipelines)
        self.redis = redis
        self.options = options
        self.burst = burst
        self.stop_event = asyncio.Event()
        #: Set once every partition worker's task exists: start-up is over (the
        #: composition root builds the operator API only then, off the first read's path).
        self.started = asyncio.Event()
        self.limiter = PartitionLimiter(
            options.max_concurrent_partitions, adaptive=options.adaptive_concurrency
        )
        # one XREAD spans many hash slots: none on a cluster; none needed in burst mode
        # (a worker there ends at its first empty read)
        self.waker = (
            Waker(redis)
            if options.wake_idle_partitions and not burst and not isinstance(redis, RedisCluster)
            else None
        )
        self.workers = [
            PartitionWorker(
                pipeline,
                partition,
                redis,
                options,
                self.limiter,
                self.stop_event,
                burst=burst,
                waker=self.waker,
            )
            for pipeline in self.pipelines
            for partition in range(pipeline.layout.num_partitions)
        ]

    def stop(self) -> None:
        """Ask every worker to finish its batch in flight and return (idempotent)."""
        self.stop_event.set()
        if self.waker is not None:
            self.waker.close()  # wakes the idle workers waiting on it

    async def run(self) -> None:
        """Run until stopped, or in burst mode until every partition is drained."""
        log.info(
            "draining %d partitions of %d tenant(s) as consumer %r in group %r%s",
            len(self.workers),
            len(self.pipelines),
            self.options.consumer,
            self.options.group,
            " (burst)" if self.burst else "",
        )
        # held and awaited below: they only end when cancelled (or stopped)
        helpers = [asyncio.create_task(self._sweep(), name="consumer-sweeper")]
        if self.waker is not None:
            helpers.append(asyncio.create_task(self._wake(self.waker), name="partition-waker"))
        try:
            async with asyncio.TaskGroup() as tasks:
                for worker in self.workers:
                    tasks.create_task(self._supervise(worker), name=f"partition:{worker.stream}")
                self.started.set()
        finally:
            if self.waker is not None:
                self.waker.close()
            await cancel_and_wait(*helpers)
        log.info("all partition workers stopped")

    async def _sweep(self) -> None:
        """Remove long-idle consumers holding nothing, one partition per step."""
        if not self.workers:
            return
        step_s = self.options.consumer_sweep_interval_ms / 1000 / len(self.workers)
        # replicas start at different partitions, so they do not sweep the same one
        index = random.randrange(len(self.workers))
        while not self.stop_event.is_set():
            await wait_or_stop(self.stop_event, step_s)
            if self.stop_event.is_set():
                return
            group = self.workers[index].group
            index = (index + 1) % len(self.workers)
            try:
                removed = await group.sweep(
                    self.options.consumer_sweep_idle_ms, SWEEP_MAX_CONSUMERS
                )
            except RedisError as exc:
                log.debug("consumer sweep of %s failed: %s", group.key, exc)
                continue
            if removed:
                log.info("removed %d idle empty consumer(s) from %s", removed, group.key)

    async def _wake(self, waker: Waker) -> None:
        """Run the waker; a bug in it costs the low-traffic wake-ups, never the drain."""
        delay_s = RESTART_DELAY_S
        while not self.stop_event.is_set():
            try:
                await waker.run(self.stop_event)
                return
            except Exception:
                waker.release_all()  # the workers poll meanwhile
                log.exception("the partition waker crashed; restarting in %.1fs", delay_s)
                await wait_or_stop(self.stop_event, delay_s)
                delay_s = min(delay_s * 2, RESTART_DELAY_MAX_S)

    async def _retire(self, worker: PartitionWorker) -> None:
        """Remove this process's consumer from the worker's group if it holds nothing."""
        try:
            if not await worker.group.retire():
                log.info(
                    "consumer %r keeps entries pending on %s; they will be claimed",
                    self.options.consumer,
                    worker.stream,
                )
        except RedisError as exc:
            log.warning("could not remove consumer from %s: %s", worker.stream, exc)

    async def _supervise(self, worker: PartitionWorker) -> None:
        delay_s = RESTART_DELAY_S
        while not self.stop_event.is_set():
            try:
                await worker.run()
                break
            except Exception:
                worker.pipeline.health.counters["worker_crashes"] += 1
                log.exception("worker of %s crashed; restarting in %.1fs", worker.stream, delay_s)
                await wait_or_stop(self.stop_event, delay_s)
                delay_s = min(delay_s * 2, RESTART_DELAY_MAX_S)
        # a clean stop (or burst done): leave no consumer behind that holds nothing
        await self._retire(worker)
