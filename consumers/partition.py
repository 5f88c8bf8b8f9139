"""One partition's worker: read exclusively, apply in one fenced transaction, then ack.

Reading adapts to the partition: the read count starts at ``max_read_count``
(a count is only a most: a small backlog still makes small batches), halves after
a slow or failed batch and doubles back while full batches keep coming; an empty
partition is polled less and less often, up to ``idle_poll_max_ms``; a failing one
backs off exponentially with jitter.
A read also stops at ``max_batch_bytes`` of entry data (at least one entry),
checked by the read script before delivering, so big entries make small batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.exceptions import RedisError, ResponseError

from drainer.consumers.aio import cancel_and_wait, finish_shielded, wait_or_stop
from drainer.consumers.dead_letter import DeadLetterStream, NewDeadLetter
from drainer.consumers.entry import Envelope, StreamSource, decode_entry
from drainer.consumers.group import (
    RawEntry,
    ReadMode,
    ReadResult,
    RedisClient,
    StreamGroup,
    parse_entry_id,
)
from drainer.consumers.health import TenantHealth
from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.observe import DrainObserver, ErrorClass
from drainer.consumers.options import ConsumerOptions
from drainer.consumers.streams import StreamLayout
from drainer.consumers.waker import Waker
from drainer.db.errors import (
    InternalError,
    MalformedOperation,
    PartitionBusy,
    PermanentError,
    TransientError,
)
from drainer.db.executor import BatchEntry, BatchResult, EntryResult, Executor, Outcome

log = logging.getLogger("drainer.consumer")


@dataclass(slots=True)
class Pipeline:
    """A tenant's drain pipeline: its streams, executor, dead letters, health and observer."""

    id: str
    layout: StreamLayout
    executor: Executor
    dead_letters: DeadLetterStream
    health: TenantHealth = field(default_factory=TenantHealth)
    observer: DrainObserver = field(default_factory=DrainObserver)


class _Hooks:
    """Callbacks the executor makes inside the batch transaction."""

    def __init__(self, worker: PartitionWorker) -> None:
        self.worker = worker

    async def confirm_went_back(
        self, entries: Sequence[BatchEntry[StreamSource]]
    ) -> Sequence[BatchEntry[StreamSource]]:
        held = await self.worker.group.held([e.entry_id for e in entries])
        return [e for e in entries if e.entry_id in held]

    async def dead_letter(self, results: Sequence[EntryResult[StreamSource]]) -> Sequence[str]:
        w = self.worker
        letters = []
        for r in results:
            raw = r.entry.source.raw
            error = r.error
            letters.append(
                NewDeadLetter(
                    source_stream=w.group.key,
                    source_id=r.entry.entry_id,
                    fields=dict(raw.fields or {}),
                    error_class=error.error_class if error else "unknown",
                    error=str(error) if error else "",
                    attempts=r.entry.attempt,
                )
            )
        return await w.pipeline.dead_letters.add(letters)


class PartitionWorker:
    """Drains one partition stream of one tenant."""

    def __init__(
        self,
        pipeline: Pipeline,
        partition: int,
        redis: RedisClient,
        options: ConsumerOptions,
        limiter: PartitionLimiter,
        stop: asyncio.Event,
        *,
        burst: bool = False,
        waker: Waker | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.waker = waker
        # set by the waker when this idle partition's stream gets an entry
        self._woken: asyncio.Event | None = None
        self.partition = partition
        self.options = options
        self.limiter = limiter
        self.stop = stop
        self.burst = burst
        self.group = StreamGroup(
            redis,
            pipeline.layout.stream_key(partition),
            options.group,
            options.consumer,
            honour_hyperswitch_lock=options.honour_hyperswitch_lock,
        )
        # Starting small cost a backlog's first six rounds per partition (10, 20, ...
        # 320) for nothing: a read returns what is there, up to the count.
        self.read_count = options.max_read_count
        self.idle_ms = options.loop_interval_ms
        self.failures = 0
        self.hooks = _Hooks(self)

    @property
    def stream(self) -> str:
        return self.group.key

    async def run(self) -> None:
        """Work the partition until stopped (or, in burst mode, until it is empty)."""
        while not self.stop.is_set():
            try:
                await self.group.ensure_group()
                break
            except RedisError as exc:
                await wait_or_stop(self.stop, self._failed("redis", exc))
        while not self.stop.is_set():
            delay_s = await self.step()
            if delay_s is None:
                return
            await self._pause(delay_s)

    async def _pause(self, delay_s: float) -> None:
        """Wait ``delay_s``, or less: until stopped, or woken by a new entry if watched."""
        woken, self._woken = self._woken, None
        if woken is None or self.waker is None:
            await wait_or_stop(self.stop, delay_s)
            return
        try:
            # the supervisor's stop closes the waker, which sets every watched event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=delay_s)
        finally:
            self.waker.unwatch(self.stream)

    async def step(self) -> float | None:
        """One read-apply-ack round; returns how long to wait, or None when burst is done."""
        health = self.pipeline.health
        async with self.limiter:
            if self.stop.is_set():
                return 0.0
            health.beat()
            observer = self.pipeline.observer
            timed = observer.times_redis
            begun = time.perf_counter() if timed else 0.0
            try:
                read = await self.group.read(
                    self.read_count, self.options.claim_min_idle_ms, self.options.max_batch_bytes
                )
                if timed:
                    observer.stream_read_time(self.stream, time.perf_counter() - begun)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    return self._failed("redis", exc)
                # the stream was deleted (and maybe recreated): its group went with it
                log.error(
                    "partition %s: stream or group vanished; recreating the group", self.stream
                )
                try:
                    await self.group.ensure_group()
                except RedisError as again:
                    return self._failed("redis", again)
                return 0.0
            except RedisError as exc:
                return self._failed("redis", exc)
            health.redis_ok = True
            if read.mode is ReadMode.BUSY or read.mode is ReadMode.HYPERSWITCH:
                return self._idle()
            if not read.entries:
                observer.stream_empty(self.stream)
                if self.burst and read.mode is ReadMode.NEW:
                    return None
                if (
                    self.waker is not None
                    and read.last_delivered is not None
                    and self.idle_ms > self.options.loop_interval_ms
                ):
                    # empty twice running: woken by its next entry rather than the poll
                    # (the first wait stays whole, so a busy partition still batches)
                    self._woken = self.waker.watch(self.stream, read.last_delivered)
                return self._idle()
            self.pipeline.observer.entries_read(self.stream, read)
            started = time.monotonic()
            try:
                result = await self._process(read)
                self.limiter.done(len(result.handled))
            except TransientError as exc:
                self.read_count = max(1, self.read_count // 2)
                await self._uncount([e.entry_id for e in read.entries])
                return self._failed("db", exc)
            except RedisError as exc:
                return self._failed("redis", exc)
        elapsed_ms = (time.monotonic() - started) * 1000
        health.db_ok = health.redis_ok = True
        self.failures = 0
        self.idle_ms = self.options.loop_interval_ms
        if result.retry is not None:
            self.read_count = max(1, self.read_count // 2)
            after = result.retry.position
            waiting = [e.entry_id for e in read.entries if parse_entry_id(e.entry_id) > after]
            await self._uncount(waiting)
            return self._backoff_s(result.retry.attempt)
        if elapsed_ms > self.options.slow_batch_ms:
            self.read_count = max(1, self.read_count // 2)
        elif len(read.entries) >= self.read_count:
            self.read_count = min(self.options.max_read_count, self.read_count * 2)
        return 0.0

    async def _uncount(self, ids: list[str]) -> None:
        # attempts count tries, not reads: entries that were not tried keep their count
        try:
            await finish_shielded(self.group.uncount(ids))
        except RedisError as exc:
            log.warning("partition %s: could not reset delivery counts: %s", self.stream, exc)

    def _idle(self) -> float:
        delay_ms = self.idle_ms
        self.idle_ms = min(self.idle_ms * 2, self.options.idle_poll_max_ms)
        return delay_ms / 1000

    def _backoff_s(self, attempt: int) -> float:
        base = self.options.retry_backoff_base_ms * (2 ** min(attempt - 1, 20))
        capped = min(base, self.options.retry_backoff_max_ms)
        return random.uniform(capped / 2, capped) / 1000  # jitter keeps replicas apart

    def _failed(self, where: str, exc: BaseException) -> float:
        health = self.pipeline.health
        if where == "redis":
            health.redis_ok = False
        elif not isinstance(exc, PartitionBusy):  # a lock held elsewhere: the database is up
            health.db_ok = False
        health.last_error = f"{where}: {exc}"
        health.counters[f"errors_{where}"] += 1
        self.pipeline.observer.error(
            self.stream, ErrorClass.READ if where == "redis" else ErrorClass.QUERY
        )
        self.failures += 1
        delay_s = self._backoff_s(self.failures)
        log.warning(
            "tenant %s partition %s: %s unavailable (%s); retrying in %.2fs",
            self.pipeline.id,
            self.stream,
            where,
            exc,
            delay_s,
        )
        return delay_s

    async def process(self, read: ReadResult) -> BatchResult[StreamSource]:
        """Apply entries already read or claimed by this worker's consumer, then ack.

        The one path every entry takes: fenced batch, dead letters, ack, counters
        (operator replays use it too).
        """
        return await self._process(read)

    async def _process(self, read: ReadResult) -> BatchResult[StreamSource]:
        started_ns = time.time_ns()
        live = [e for e in read.entries if e.fields is not None]
        gone = [e.entry_id for e in read.entries if e.fields is None]
        attempts: dict[str, int] = {}
        if not read.first_delivery and live:
            attempts = await self.group.delivery_counts([e.entry_id for e in live])
        counters = self.pipeline.health.counters
        if read.mode is ReadMode.CLAIMED:
            counters["claimed"] += len(read.entries)
            log.info("partition %s: took over %d idle entries", self.stream, len(read.entries))
        first = read.first_delivery  # once per batch: a property read per entry showed up
        batch = [self._batch_entry(raw, first, attempts) for raw in live]
        result: BatchResult[StreamSource] = BatchResult()
        if batch:
            # Most batches end long before their entries could go idle: the refresher
            # task is only started (and then held here) once a batch runs that long.
            interval_s = self._keep_fresh_interval_s()
            keepalive: list[asyncio.Task[None]] = []  # the refresher, once started
            timer = asyncio.get_running_loop().call_later(
                interval_s, self._start_keep_fresh, keepalive, [e.entry_id for e in live]
            )
            try:
                result = await self.pipeline.executor.apply(self.stream, batch, self.hooks)
            except TransientError as exc:
                self.pipeline.observer.batch_failed(self.stream, batch, exc, started_ns)
                raise
            finally:
                timer.cancel()
                # it handles Redis errors itself: anything else it ended with surfaces here
                await cancel_and_wait(*keepalive)
        done = gone + [r.entry.entry_id for r in result.handled]
        try:
            timed = self.pipeline.observer.times_redis and bool(done)
            begun = time.perf_counter() if timed else 0.0
            await finish_shielded(self.group.ack(done))
            if timed:
                self.pipeline.observer.stream_ack_time(self.stream, time.perf_counter() - begun)
        except RedisError as exc:
            # already committed: redelivery is skipped by the watermark
            log.warning(
                "partition %s: ack failed (%s); the fence will skip the redelivery",
                self.stream,
                exc,
            )
            counters["errors_ack"] += 1
            self.pipeline.observer.error(self.stream, ErrorClass.ACK)
        self._count(result)
        self.pipeline.observer.batch_done(self.stream, read, batch, result, started_ns)
        return result

    def _batch_entry(
        self, raw: RawEntry, first: bool, attempts: dict[str, int]
    ) -> BatchEntry[StreamSource]:
        assert raw.fields is not None
        envelope: Envelope | None = None
        error: PermanentError | None = None
        try:
            envelope = decode_entry(raw.fields)
        except MalformedOperation as exc:
            error = exc
        except Exception as exc:  # never a crash loop over one entry
            error = InternalError("decoding the entry", exc)
        fields = raw.fields
        return BatchEntry(
            entry_id=raw.entry_id,
            position=parse_entry_id(raw.entry_id),
            operation=envelope.operation if envelope else None,
            error=error,
            first_delivery=first,
            attempt=attempts.get(raw.entry_id, 1),
            source=StreamSource(raw, envelope),
            # a malformed entry still names its entity: it parks it too
            global_id=(envelope.global_id if envelope else fields.get("global_id")) or None,
            # lines logged about this entry carry its keys
            log_fields={
                "global_id": envelope.global_id if envelope else fields.get("global_id"),
                "request_id": envelope.request_id if envelope else fields.get("request_id"),
                "stream": self.stream,
                "entry_id": raw.entry_id,
            },
        )

    def _keep_fresh_interval_s(self) -> float:
        # a third of the idle time after which entries may be claimed
        return max(self.options.claim_min_idle_ms / 3000, 0.05)

    def _start_keep_fresh(self, holder: list[asyncio.Task[None]], ids: list[str]) -> None:
        """The batch timer's callback (the batch ran one interval): start the refresher,
        held in ``holder`` for the batch to cancel and await."""
        holder.append(asyncio.create_task(self._keep_fresh(ids)))

    async def _keep_fresh(self, ids: list[str]) -> None:
        interval_s = self._keep_fresh_interval_s()
        me = asyncio.current_task()
        while True:
            try:
                await self.group.refresh(ids)
            except RedisError as exc:
                log.warning("partition %s: could not keep entries fresh: %s", self.stream, exc)
            # On Python < 3.12 asyncio.wait_for (inside redis-py) returns normally when a
            # cancel races with a finished write, swallowing it: looping on would hold the
            # batch (and its ack) forever.
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(interval_s)

    def _count(self, result: BatchResult[StreamSource]) -> None:
        counters = self.pipeline.health.counters
        counters["batches"] += 1
        for r in result.handled:
            counters[r.outcome.value] += 1
            if r.outcome is Outcome.DEAD:
                envelope, fields = r.entry.source.envelope, r.entry.source.raw.fields or {}
                log.warning(
                    "dead-lettered %s %s: %s (global_id=%s request_id=%s)",
                    self.stream,
                    r.entry.entry_id,
                    r.error,
                    envelope.global_id if envelope else fields.get("global_id"),
                    envelope.request_id if envelope else fields.get("request_id"),
                    extra=r.entry.log_fields,
                )
        if result.retry is not None:
            counters["retries"] += 1
            log.info(
                "partition %s: %s (attempt %d of %d); retrying later",
                self.stream,
                result.retry_error,
                result.retry.attempt,
                self.pipeline.executor.max_attempts,
                extra=result.retry.log_fields,
            )
