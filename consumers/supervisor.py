"""Runs every partition worker of every tenant, bounded, supervised and stoppable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from consumers.group import RedisClient
from consumers.partition import ConsumerOptions, PartitionWorker, Tenant, wait_or_stop

log = logging.getLogger("drainer.supervisor")

RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0


class Supervisor:
    """Holds one task per partition; a worker that crashes is logged and restarted."""

    def __init__(
        self,
        tenants: Sequence[Tenant],
        redis: RedisClient,
        options: ConsumerOptions,
        *,
        burst: bool = False,
    ) -> None:
        self.tenants = list(tenants)
        self.redis = redis
        self.options = options
        self.burst = burst
        self.stop_event = asyncio.Event()
        self.limiter = asyncio.Semaphore(options.max_concurrent_partitions)
        self.workers = [
            PartitionWorker(
                tenant, partition, redis, options, self.limiter, self.stop_event, burst=burst
            )
            for tenant in self.tenants
            for partition in range(tenant.layout.num_partitions)
        ]
        self.crashes = 0

    def stop(self) -> None:
        """Ask every worker to finish its batch in flight and return (idempotent)."""
        self.stop_event.set()

    async def run(self) -> None:
        """Run until stopped, or in burst mode until every partition is drained."""
        log.info(
            "draining %d partitions of %d tenant(s) as consumer %r in group %r%s",
            len(self.workers),
            len(self.tenants),
            self.options.consumer,
            self.options.group,
            " (burst)" if self.burst else "",
        )
        async with asyncio.TaskGroup() as tasks:
            for worker in self.workers:
                tasks.create_task(self._supervise(worker), name=f"partition:{worker.stream}")
        log.info("all partition workers stopped")

    async def _supervise(self, worker: PartitionWorker) -> None:
        delay_s = RESTART_DELAY_S
        while not self.stop_event.is_set():
            try:
                await worker.run()
                return
            except Exception:
                self.crashes += 1
                worker.tenant.health.counters["worker_crashes"] += 1
                log.exception("worker of %s crashed; restarting in %.1fs", worker.stream, delay_s)
                await wait_or_stop(self.stop_event, delay_s)
                delay_s = min(delay_s * 2, RESTART_DELAY_MAX_S)
