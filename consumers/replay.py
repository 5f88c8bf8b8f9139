"""Operator actions that move entries: replay a pending entry now, requeue a dead letter.

Replay keeps partition order. Replaying entry E of a partition applies every
entry of that partition still pending at or before E, in stream order, E
last: they are claimed (``XCLAIM``, counts a delivery) to this process's replay
consumer ``<consumer>:replay`` and run through the partition worker's own path
(:meth:`PartitionWorker.process`: one fenced transaction, dead letters, ack).
While the replay holds them, the READ script sees the partition as busy, so
no worker reads past them. If a worker already had some of them in a
transaction, the watermark fence decides: whichever commits second skips what
the first applied, and the replay reports those entries as ``skipped``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.exceptions import ResponseError

from drainer.consumers.dead_letter import DeadLetter
from drainer.consumers.entry import StreamSource
from drainer.consumers.group import RawEntry, ReadMode, ReadResult, RedisClient, parse_entry_id
from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.options import ConsumerOptions
from drainer.consumers.partition import PartitionWorker, Pipeline
from drainer.db.errors import DrainerDbError
from drainer.db.executor import BatchEntry

log = logging.getLogger("drainer.replay")

REPLAY_CONSUMER_SUFFIX = ":replay"
#: Most pending entries one replay looks at (a partition's list is normally one batch).
REPLAY_MAX_ENTRIES = 10_000


class ReplayRefused(Exception):
    """The entry cannot be replayed or the dead letter requeued; the message says why."""


class NotPending(ReplayRefused):
    """There is nothing to replay: not a partition stream, or the entry is not pending."""


class ReplayConflict(ReplayRefused):
    """The state of the stream or of the dead letter forbids it now."""


@dataclass(slots=True)
class EntryOutcome:
    """What a replay did with one entry."""

    entry_id: str
    outcome: str  # applied, existed, skipped, dead, retry, not_tried, gone, acknowledged
    previous_consumer: str | None = None
    attempt: int | None = None
    error: str | None = None
    error_class: str | None = None
    global_id: str | None = None
    request_id: str | None = None


@dataclass(slots=True)
class ReplayReport:
    """The outcome of a replay: the target's, and every entry's it had to apply first."""

    stream: str
    entry_id: str
    outcome: str
    consumer: str
    entries: list[EntryOutcome] = field(default_factory=list)
    watermark: str | None = None
    message: str = ""


class Replayer:
    """Replays pending entries of one tenant's partitions through the normal path."""

    def __init__(self, pipeline: Pipeline, redis: RedisClient, options: ConsumerOptions) -> None:
        self.pipeline = pipeline
        self.redis = redis
        self.options = dataclasses.replace(
            options, consumer=options.consumer + REPLAY_CONSUMER_SUFFIX
        )
        # one replay per partition at a time in this process: they share the consumer
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def consumer(self) -> str:
        """The consumer name replays claim entries to."""
        return self.options.consumer

    async def replay(self, stream: str, entry_id: str) -> ReplayReport:
        """Apply ``entry_id`` and the entries pending before it in ``stream``, in order.

        Raises :class:`NotPending` when the entry is not pending, and lets
        :class:`db.errors.TransientError` / ``RedisError`` through when the database or
        Redis cannot be used (the entries then stay pending on the replay consumer and
        a worker claims them after ``claim_min_idle_ms``).
        """
        partition = self.pipeline.layout.partition_of_stream(stream)
        if partition is None:
            raise NotPending(f"{stream!r} is not a partition stream of {self.pipeline.id}")
        lock = self._locks.setdefault(stream, asyncio.Lock())
        async with lock:
            return await self._replay(stream, partition, entry_id)

    async def _replay(self, stream: str, partition: int, entry_id: str) -> ReplayReport:
        group = self.options.group
        try:
            rows = await self.redis.xpending_range(
                stream, group, min="-", max=entry_id, count=REPLAY_MAX_ENTRIES + 1
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            rows = []
        if not rows or str(rows[-1]["message_id"]) != entry_id:
            raise NotPending(await self._why_not_pending(stream, entry_id))
        if len(rows) > REPLAY_MAX_ENTRIES:
            raise ReplayConflict(
                f"more than {REPLAY_MAX_ENTRIES} entries are pending before {entry_id}; "
                "let the drainer claim them instead",
            )
        previous = {str(r["message_id"]): str(r["consumer"]) for r in rows}
        worker = PartitionWorker(
            self.pipeline,
            partition,
            self.redis,
            self.options,
            PartitionLimiter(1, adaptive=False),
            asyncio.Event(),
        )
        claimed = await worker.group.claim(list(previous))
        claimed_ids = {e.entry_id for e in claimed}
        outcomes = {
            i: EntryOutcome(i, "acknowledged", previous[i])  # acked by its worker meanwhile
            for i in previous
            if i not in claimed_ids
        }
        report = ReplayReport(stream, entry_id, "", self.consumer)
        size = max(1, self.options.max_read_count)
        for start in range(0, len(claimed), size):
            chunk = claimed[start : start + size]
            done = await self._apply(worker, chunk, previous, outcomes, report)
            if not done:
                # stopped at an entry waiting to retry: the rest keep their delivery count
                rest = [e.entry_id for e in claimed[start + size :]]
                await worker.group.uncount(rest)
                for i in rest:
                    outcomes[i] = EntryOutcome(i, "not_tried", previous[i])
                break
        await self._forget_consumer_if_idle(stream)
        report.entries = [outcomes[i] for i in sorted(outcomes, key=parse_entry_id)]
        target = outcomes.get(entry_id)
        report.outcome = target.outcome if target else "gone"
        report.message = _message(report, target)
        return report

    async def _apply(
        self,
        worker: PartitionWorker,
        chunk: Sequence[RawEntry],
        previous: dict[str, str],
        outcomes: dict[str, EntryOutcome],
        report: ReplayReport,
    ) -> bool:
        me = self.consumer
        taken = any(previous[e.entry_id] != me for e in chunk)
        read = ReadResult(ReadMode.CLAIMED if taken else ReadMode.OWN, list(chunk))
        self.pipeline.observer.entries_read(worker.stream, read)
        result = await worker.process(read)
        ms, seq = result.watermark
        report.watermark = f"{ms}-{seq}"
        for e in chunk:
            if e.fields is None:
                outcomes[e.entry_id] = EntryOutcome(e.entry_id, "gone", previous[e.entry_id])
        for r in result.handled:
            outcomes[r.entry.entry_id] = _entry_outcome(r.entry, r.outcome.value, previous, r.error)
        if result.retry is None:
            return True
        retry = result.retry
        outcomes[retry.entry_id] = _entry_outcome(retry, "retry", previous, result.retry_error)
        waiting = [e.entry_id for e in chunk if parse_entry_id(e.entry_id) > retry.position]
        await worker.group.uncount(waiting)
        for i in waiting:
            outcomes[i] = EntryOutcome(i, "not_tried", previous[i])
        return False

    async def _why_not_pending(self, stream: str, entry_id: str) -> str:
        found = await self.redis.xrange(stream, min=entry_id, max=entry_id, count=1)
        if found:
            return (
                f"entry {entry_id} of {stream} is not pending: it was never delivered "
                "(the drainer reads it in order) — only pending entries can be replayed"
            )
        return f"no pending entry {entry_id} in {stream} (applied, or never existed)"

    async def _forget_consumer_if_idle(self, stream: str) -> None:
        # Called under the partition's lock: nothing else claims to this consumer name
        # here, so "holds nothing" stays true until the delete (which would otherwise
        # drop what it held from the group's pending list).
        group, me = self.options.group, self.consumer
        held = await self.redis.xpending_range(stream, group, "-", "+", 1, consumername=me)
        if not held:
            await self.redis.xgroup_delconsumer(stream, group, me)


def _entry_outcome(
    entry: BatchEntry[StreamSource],
    outcome: str,
    previous: dict[str, str],
    error: BaseException | None,
) -> EntryOutcome:
    keys = entry.log_fields or {}
    return EntryOutcome(
        entry.entry_id,
        outcome,
        previous.get(entry.entry_id),
        entry.attempt,
        str(error) if error is not None else None,
        error.error_class if isinstance(error, DrainerDbError) else None,
        keys.get("global_id"),
        keys.get("request_id"),
    )


def _message(report: ReplayReport, target: EntryOutcome | None) -> str:
    before = len(report.entries) - 1
    noun = "entry" if before == 1 else "entries"
    prefix = f"replayed {before} earlier pending {noun} first; " if before > 0 else ""
    if target is None:
        return prefix + "the entry was deleted while pending; it was acknowledged"
    texts = {
        "applied": "applied",
        "existed": "applied (its row already existed)",
        "skipped": "already applied (at or below the partition's watermark); acknowledged",
        "dead": f"could not apply: dead-lettered ({target.error})",
        "retry": f"not applied: {target.error}; it stays pending and is retried",
        "not_tried": "not tried: an earlier entry is waiting to be retried",
        "acknowledged": "no longer pending when claimed: acknowledged by its consumer "
        "(applied) or deleted meanwhile",
        "gone": "the entry was deleted while pending; it was acknowledged",
    }
    return prefix + texts.get(target.outcome, target.outcome)


@dataclass(slots=True)
class RequeueResult:
    """Where a dead letter went back to (``new_entry_id`` None: it was already gone)."""

    dead_letter_id: str
    stream: str
    new_entry_id: str | None


async def requeue(pipeline: Pipeline, letter: DeadLetter) -> RequeueResult:
    """Put a dead letter back on the partition stream it came from, and remove it.

    Raises :class:`ReplayConflict` when its source is not one of the tenant's
    partition streams (the layout changed, or the record is damaged).
    """
    if pipeline.layout.partition_of_stream(letter.source_stream) is None:
        raise ReplayConflict(
            f"dead letter {letter.id} came from {letter.source_stream!r}, which is not a "
            f"partition stream of tenant {pipeline.id} under the current layout",
        )
    if not letter.fields:
        raise ReplayConflict(f"dead letter {letter.id} has no original fields to requeue")
    new_id = await pipeline.dead_letters.requeue(letter)
    return RequeueResult(letter.id, letter.source_stream, new_id)
