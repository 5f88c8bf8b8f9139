"""``drainer demo``: a small payments workload drained live, then checked row by row.

The demo creates a payments schema of its own (payment intents, attempts and
refunds, with enums, json, bytea and timestamps), starts the real drainer
(:func:`drainer.main.open_drainer` and :func:`drainer.main.start_api`, as
``drainer run`` does) in this process, and drives a producer that appends what
a payment service would: inserts, then updates of the same entities, a few
deletes, and a handful of deliberately malformed entries. While it runs,
:mod:`drainer.devtools.demo_view` shows what is pushed, drained and waiting; at the end it
compares every table with what the producer intended and the dead letters
with the malformed entries it wrote.

Everything lives under a schema and a Redis key prefix named for the run, both
removed at the end, so pointing the demo at real servers touches nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from pydantic import SecretStr
from redis.exceptions import RedisError

from drainer.consumers.entry import StreamSource
from drainer.consumers.group import ReadResult
from drainer.consumers.observe import DrainObserver, ErrorClass
from drainer.consumers.producer import Producer, delete_op, dumps, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.db.executor import BatchEntry, BatchResult, Outcome
from drainer.db.operations import Operation, OpKind
from drainer.lifecycle import Drainer, StartupAborted
from drainer.main import open_drainer, serve, start_api
from drainer.settings import (
    DrainerSettings,
    MultitenancySettings,
    RedisSettings,
    ServerSettings,
    Settings,
    TenantSettings,
)
from drainer.store import Store

log = logging.getLogger("drainer.devtools.demo")

TENANT_ID = "demo"
#: Default run: this long at this offered rate.
DEFAULT_DURATION_S = 20.0
DEFAULT_RATE = 1_000.0
DEFAULT_PARTITIONS = 64
#: The producer appends what is due every this many seconds.
TICK_S = 0.05
#: Payments in flight at once, per 1,000 ops/s offered: new ones start as old ones finish.
ACTIVE_PAYMENTS_PER_KOPS = 200
MIN_ACTIVE_PAYMENTS = 20
#: How long the demo waits, after producing, for the drainer to catch up.
DRAIN_WAIT_S = 120.0
#: Interval of the backlog poll (one pipelined XLEN per partition).
BACKLOG_POLL_S = 0.5
#: Delay samples kept for the summary (a uniform sample beyond this many).
MAX_DELAY_SAMPLES = 200_000
#: Delay samples behind the live percentiles.
RECENT_DELAYS = 2_000
#: Seconds of history behind the live drain rate.
RATE_WINDOW_S = 3.0
EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_INTERRUPTED = 130

MERCHANTS = ("merchant_acme", "merchant_globex", "merchant_initech", "merchant_umbrella")
CURRENCIES = ("USD", "EUR", "GBP", "INR")
CONNECTORS = ("stripe", "adyen", "checkout", "paypal")
ERRORS = ("card declined", "insufficient funds", "issuer unavailable")


def schema_sql(schema: str) -> str:
    """The demo's payments schema: three related tables, enums, json, bytea, timestamps."""
    s = f'"{schema}"'
    return f"""
    CREATE SCHEMA {s};
    CREATE TYPE {s}.intent_status AS ENUM (
        'requires_payment_method', 'requires_confirmation', 'processing',
        'succeeded', 'failed', 'cancelled');
    CREATE TYPE {s}.attempt_status AS ENUM ('started', 'authorized', 'charged', 'failure');
    CREATE TYPE {s}.refund_status AS ENUM ('pending', 'success', 'failure');
    CREATE TYPE {s}.currency AS ENUM ('USD', 'EUR', 'GBP', 'INR');
    CREATE TABLE {s}.payment_intent (
        payment_id varchar(64) PRIMARY KEY,
        merchant_id varchar(64) NOT NULL,
        status {s}.intent_status NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        currency {s}.currency NOT NULL,
        amount_captured bigint,
        description text,
        metadata jsonb,
        created_at timestamp NOT NULL,
        modified_at timestamp NOT NULL
    );
    CREATE TABLE {s}.payment_attempt (
        attempt_id varchar(64) PRIMARY KEY,
        payment_id varchar(64) NOT NULL REFERENCES {s}.payment_intent (payment_id),
        status {s}.attempt_status NOT NULL,
        amount bigint NOT NULL,
        connector varchar(32) NOT NULL,
        error_message text,
        card_fingerprint bytea,
        created_at timestamp NOT NULL,
        modified_at timestamp NOT NULL
    );
    CREATE TABLE {s}.refund (
        refund_id varchar(64) PRIMARY KEY,
        payment_id varchar(64) NOT NULL REFERENCES {s}.payment_intent (payment_id),
        attempt_id varchar(64) NOT NULL REFERENCES {s}.payment_attempt (attempt_id),
        status {s}.refund_status NOT NULL,
        refund_amount bigint NOT NULL,
        reason text,
        created_at timestamp NOT NULL,
        modified_at timestamp NOT NULL
    );
    """


#: Primary key column of each demo table.
KEYS = {"payment_intent": "payment_id", "payment_attempt": "attempt_id", "refund": "refund_id"}
#: Columns compared after a type-aware normalisation (everything else compares as is).
TIMESTAMP_COLUMNS = frozenset({"created_at", "modified_at"})
JSON_COLUMNS = frozenset({"metadata"})
BYTEA_COLUMNS = frozenset({"card_fingerprint"})


# --------------------------------------------------------------------------- wire values


def _stamp_text(moment: datetime) -> str:
    """Hyperswitch's PrimitiveDateTime text: ``2026-01-01 10:00:00.123456``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _stamp_iso(moment: datetime) -> str:
    """ISO-8601 with ``T`` and a UTC offset (the drainer converts it to UTC)."""
    return moment.replace(tzinfo=UTC).isoformat()


def _stamp_tuple(moment: datetime) -> list[int]:
    """The ``time`` crate's tuple: ``[year, day_of_year, hour, minute, second, nanosecond]``."""
    day = moment.timetuple().tm_yday
    return [moment.year, day, moment.hour, moment.minute, moment.second, moment.microsecond * 1000]


def timestamp_value(value: Any) -> datetime:
    """The naive UTC timestamp a wire value stands for (the demo's expected values)."""
    if isinstance(value, list):
        year, day, hour, minute, second, nanos = value
        moment = datetime(year, 1, 1) + timedelta(days=day - 1)
        return moment.replace(hour=hour, minute=minute, second=second, microsecond=nanos // 1000)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def normalise(column: str, value: Any) -> Any:
    """A wire value or a database value, in the one form both compare in."""
    if value is None:
        return None
    if column in TIMESTAMP_COLUMNS:
        return value if isinstance(value, datetime) else timestamp_value(value)
    if column in JSON_COLUMNS:
        return orjson.loads(value) if isinstance(value, str | bytes) else value
    if column in BYTEA_COLUMNS:
        return bytes(value)
    return value


# --------------------------------------------------------------------------- the workload


@dataclass(slots=True)
class Payment:
    """One payment's life: where it is and where it will end."""

    payment_id: str
    merchant_id: str
    amount: int
    currency: str
    abandon: bool
    succeed: bool
    refund: str | None  # "success", "cancel" or None
    step: int = 0

    @property
    def global_id(self) -> str:
        """The partition key (Hyperswitch's form): every op of a payment in one stream."""
        return f"mid_{self.merchant_id}_pid_{self.payment_id}"

    @property
    def attempt_id(self) -> str:
        return f"{self.payment_id}_1"

    @property
    def refund_id(self) -> str:
        return f"ref_{self.payment_id}"


@dataclass(frozen=True, slots=True)
class Malformed:
    """An entry written wrong on purpose, and the dead letter it must become."""

    name: str
    error_class: str
    fields: Callable[[str, str], dict[str, str]]  # (global_id, pushed_at) -> entry fields


def _typed(op: Operation) -> str:
    return dumps(op.to_wire())


#: The malformed entries: one of each kind of permanent error the drainer dead-letters.
MALFORMED: tuple[Malformed, ...] = (
    Malformed(
        "truncated JSON",
        "malformed",
        lambda gid, at: {
            "request_id": "bad-json",
            "global_id": gid,
            "typed_sql": '{"db_op": "insert", "data": {"insertable": ',
            "pushed_at": at,
        },
    ),
    Malformed(
        "missing typed_sql",
        "malformed",
        lambda gid, at: {"request_id": "no-typed-sql", "global_id": gid, "pushed_at": at},
    ),
    Malformed(
        "unknown table",
        "unknown_table",
        lambda gid, at: {
            "request_id": "unknown-table",
            "global_id": gid,
            "typed_sql": _typed(insert_op("payment_intnet", {"payment_id": "pay_typo"})),
            "pushed_at": at,
        },
    ),
    Malformed(
        "unknown column",
        "unknown_column",
        lambda gid, at: {
            "request_id": "unknown-column",
            "global_id": gid,
            "typed_sql": _typed(
                insert_op("payment_intent", {"payment_id": "pay_colour", "colour": "blue"})
            ),
            "pushed_at": at,
        },
    ),
    Malformed(
        "enum value that does not exist",
        "coercion",
        lambda gid, at: {
            "request_id": "bad-enum",
            "global_id": gid,
            "typed_sql": _typed(
                update_op("payment_intent", {"payment_id": "pay_x"}, {"status": "teleported"})
            ),
            "pushed_at": at,
        },
    ),
    Malformed(
        "timestamp that is not one",
        "coercion",
        lambda gid, at: {
            "request_id": "bad-timestamp",
            "global_id": gid,
            "typed_sql": _typed(
                insert_op(
                    "refund",
                    {"refund_id": "ref_when", "payment_id": "pay_x", "created_at": "yesterday"},
                )
            ),
            "pushed_at": at,
        },
    ),
    Malformed(
        "attempt of a payment that does not exist",
        "constraint",
        lambda gid, at: {
            "request_id": "orphan-attempt",
            "global_id": gid,
            "typed_sql": _typed(
                insert_op(
                    "payment_attempt",
                    {
                        "attempt_id": "pay_nobody_1",
                        "payment_id": "pay_nobody",
                        "status": "started",
                        "amount": 100,
                        "connector": "stripe",
                        "created_at": "2026-01-01 10:00:00",
                        "modified_at": "2026-01-01 10:00:00",
                    },
                )
            ),
            "pushed_at": at,
        },
    ),
)


class Workload:
    """The producer's side: payments in flight, and what the tables must hold in the end."""

    def __init__(self, rng: random.Random, active_target: int) -> None:
        self.rng = rng
        self.active_target = active_target
        self.active: list[Payment] = []
        self.started = 0
        self.expected: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in KEYS}
        self.kinds: Counter[str] = Counter()
        # ops generated but not sent yet: a payment's step may make two
        self.queue: deque[tuple[Operation, str]] = deque()

    # ---- what the tables must hold

    def _apply(self, op: Operation) -> None:
        table = op.tag.removesuffix("_update")
        rows = self.expected[table]
        if op.kind is OpKind.INSERT:
            rows[op.values[KEYS[table]]] = dict(op.values)
        elif op.kind is OpKind.UPDATE:
            row = rows[op.orig[KEYS[table]]]
            # a null leaves the column unchanged (diesel's AsChangeset rule)
            row.update({k: v for k, v in op.values.items() if v is not None})
        else:
            del rows[op.values[KEYS[table]]]
        self.kinds[op.kind.value] += 1

    # ---- payments

    def _new_payment(self) -> Payment:
        self.started += 1
        rng = self.rng
        abandon = rng.random() < 0.05
        succeed = rng.random() < 0.85
        refund = None
        if succeed and rng.random() < 0.25:
            refund = "cancel" if rng.random() < 0.25 else "success"
        payment = Payment(
            payment_id=f"pay_{self.started:07d}_{rng.randrange(16**4):04x}",
            merchant_id=rng.choice(MERCHANTS),
            amount=rng.randrange(100, 500_000),
            currency=rng.choice(CURRENCIES),
            abandon=abandon,
            succeed=succeed,
            refund=refund,
        )
        return payment

    def take(self, count: int, now: datetime) -> list[tuple[Operation, str]]:
        """Exactly ``count`` next operations, in order; only these count as intended."""
        while len(self.queue) < count:
            self.queue.extend(self.next_ops(now))
        taken = [self.queue.popleft() for _ in range(count)]
        for op, _ in taken:
            self._apply(op)
        return taken

    def next_ops(self, now: datetime) -> list[tuple[Operation, str]]:
        """The next operations of some payment (a new one, or one in flight)."""
        if len(self.active) < self.active_target or self.rng.random() < 0.02:
            payment = self._new_payment()
            self.active.append(payment)
        else:
            index = self.rng.randrange(len(self.active))
            payment = self.active[index]
        ops, done = self._advance(payment, now)
        if done:
            self.active.remove(payment)
        return [(op, payment.global_id) for op in ops]

    def _advance(self, p: Payment, now: datetime) -> tuple[list[Operation], bool]:
        p.step += 1
        rng = self.rng
        text, iso = _stamp_text(now), _stamp_iso(now)
        changes: dict[str, Any]
        if p.step == 1:
            intent: dict[str, Any] = {
                "payment_id": p.payment_id,
                "merchant_id": p.merchant_id,
                "status": "requires_payment_method",
                "amount": p.amount,
                "currency": p.currency,
                "amount_captured": None,
                "description": f"order #{rng.randrange(10**6)}",
                "metadata": {
                    "channel": rng.choice(["web", "app", "pos"]),
                    "items": rng.randrange(1, 6),
                },
                "created_at": text,
                "modified_at": text,
            }
            return [insert_op("payment_intent", intent)], False
        if p.step == 2:
            attempt: dict[str, Any] = {
                "attempt_id": p.attempt_id,
                "payment_id": p.payment_id,
                "status": "started",
                "amount": p.amount,
                "connector": rng.choice(CONNECTORS),
                "error_message": None,
                # bytea as serde writes Vec<u8>: an array of 0-255
                "card_fingerprint": [rng.randrange(256) for _ in range(8)],
                "created_at": iso,
                "modified_at": iso,
            }
            changes = {"status": "requires_confirmation", "modified_at": text, "metadata": None}
            return [
                insert_op("payment_attempt", attempt),
                update_op("payment_intent", {"payment_id": p.payment_id}, changes),
            ], False
        if p.step == 3:
            if p.abandon:
                return [
                    delete_op("payment_attempt", {"attempt_id": p.attempt_id}),
                    delete_op("payment_intent", {"payment_id": p.payment_id}),
                ], True
            changes = {"status": "processing", "modified_at": text, "description": None}
            return [update_op("payment_intent", {"payment_id": p.payment_id}, changes)], False
        if p.step == 4:
            changes = {
                "status": "charged" if p.succeed else "failure",
                "error_message": None if p.succeed else rng.choice(ERRORS),
                "modified_at": iso,
            }
            return [update_op("payment_attempt", {"attempt_id": p.attempt_id}, changes)], False
        if p.step == 5:
            changes = {
                "status": "succeeded" if p.succeed else "failed",
                "amount_captured": p.amount if p.succeed else None,
                "modified_at": text,
            }
            op = update_op("payment_intent", {"payment_id": p.payment_id}, changes)
            return [op], p.refund is None
        if p.step == 6:
            moment = _stamp_tuple(now)
            refund: dict[str, Any] = {
                "refund_id": p.refund_id,
                "payment_id": p.payment_id,
                "attempt_id": p.attempt_id,
                "status": "pending",
                "refund_amount": max(1, p.amount // 2),
                "reason": rng.choice(["requested_by_customer", "duplicate", None]),
                "created_at": moment,
                "modified_at": moment,
            }
            return [insert_op("refund", refund)], False
        if p.refund == "cancel":
            return [delete_op("refund", {"refund_id": p.refund_id})], True
        changes = {"status": "success", "modified_at": _stamp_tuple(now), "reason": None}
        return [update_op("refund", {"refund_id": p.refund_id}, changes)], True


# --------------------------------------------------------------------------- what the drainer did


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of already sorted values (nearest rank); 0 when empty."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass(slots=True)
class DemoStats:
    """Counters the producer, the drainer's observer and the backlog poll keep."""

    started_at: float = field(default_factory=time.monotonic)
    pushed: int = 0
    malformed_pushed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    backlog: list[int] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)
    recent_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_DELAYS))
    seen_delays: int = 0
    history: deque[tuple[float, int]] = field(default_factory=deque)
    peak_rate: float = 0.0
    producing: bool = True
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    @property
    def drained(self) -> int:
        """Entries the drainer is done with (applied, found applied, or dead-lettered)."""
        return sum(self.outcomes.values())

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started_at

    def record(self, result: BatchResult[StreamSource]) -> None:
        """Count a committed batch and the delay of each entry it applied."""
        now_ms = time.time() * 1000
        for handled in result.handled:
            self.outcomes[handled.outcome.value] += 1
            if handled.outcome is Outcome.APPLIED or handled.outcome is Outcome.EXISTED:
                # the entry id's first part is when Redis appended it (ms)
                delay = max(0.0, now_ms - handled.entry.position[0])
                self.recent_ms.append(delay)
                self.seen_delays += 1
                if len(self.delays_ms) < MAX_DELAY_SAMPLES:
                    self.delays_ms.append(delay)
                else:  # reservoir sampling keeps a uniform sample of every delay
                    slot = self.rng.randrange(self.seen_delays)
                    if slot < MAX_DELAY_SAMPLES:
                        self.delays_ms[slot] = delay

    def drain_rate(self) -> float:
        """Entries drained per second over the last few seconds."""
        now, drained = time.monotonic(), self.drained
        self.history.append((now, drained))
        while len(self.history) > 2 and now - self.history[0][0] > RATE_WINDOW_S:
            self.history.popleft()
        then, before = self.history[0]
        rate = (drained - before) / (now - then) if now > then else 0.0
        self.peak_rate = max(self.peak_rate, rate)
        return rate

    def recent_percentiles(self) -> tuple[float, float]:
        """Delay p50 and p99 (ms) of the last entries drained."""
        values = sorted(self.recent_ms)
        return percentile(values, 0.50), percentile(values, 0.99)


class DemoObserver(DrainObserver):
    """Counts what the drainer commits, then passes every hook on to the real observer."""

    def __init__(self, inner: DrainObserver, stats: DemoStats) -> None:
        self.inner = inner
        self.stats = stats

    def entries_read(self, stream: str, read: ReadResult) -> None:
        self.inner.entries_read(stream, read)

    def batch_done(
        self,
        stream: str,
        read: ReadResult,
        batch: Sequence[BatchEntry[StreamSource]],
        result: BatchResult[StreamSource],
        started_ns: int,
    ) -> None:
        self.stats.record(result)
        self.inner.batch_done(stream, read, batch, result, started_ns)

    def batch_failed(self, stream: str, batch: Any, error: BaseException, started_ns: int) -> None:
        self.inner.batch_failed(stream, batch, error, started_ns)

    def error(self, stream: str, error_class: ErrorClass) -> None:
        self.inner.error(stream, error_class)

    def statement(self, kind: OpKind, table: str, duration_s: float, rows: int) -> None:
        self.inner.statement(kind, table, duration_s, rows)


# --------------------------------------------------------------------------- the run


@dataclass(slots=True)
class DemoOptions:
    """What to run and where."""

    redis_url: str
    database_url: str
    duration_s: float = DEFAULT_DURATION_S
    count: int | None = None
    rate: float = DEFAULT_RATE
    partitions: int = DEFAULT_PARTITIONS
    api_port: int | None = None
    keep: bool = False
    seed: int = 1


@dataclass(slots=True)
class TableCheck:
    """One table compared with what the producer intended."""

    table: str
    expected: int
    found: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the table holds exactly the intended rows."""
        return not (self.missing or self.unexpected or self.different)


@dataclass(slots=True)
class DeadLetterView:
    """A dead letter as the summary shows it."""

    source_id: str
    error_class: str
    error: str
    intended: str | None  # the malformed entry it came from, None if unplanned
    expected_class: str | None


@dataclass(slots=True)
class DemoResult:
    """What the run did and whether the database ended as intended."""

    schema: str
    prefix: str
    seconds: float = 0.0
    pushed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    backlog_left: int = 0
    delay_p50_ms: float = 0.0
    delay_p90_ms: float = 0.0
    delay_p99_ms: float = 0.0
    delay_max_ms: float = 0.0
    peak_rate: float = 0.0
    tables: list[TableCheck] = field(default_factory=list)
    dead_letters: list[DeadLetterView] = field(default_factory=list)
    interrupted: bool = False
    drained_in_time: bool = True

    @property
    def drained(self) -> int:
        """Entries the drainer finished with."""
        return sum(self.outcomes.values())

    @property
    def dead_letters_ok(self) -> bool:
        """Exactly the malformed entries were dead-lettered, each for its intended reason."""
        return len(self.dead_letters) == self.malformed and all(
            d.intended is not None and d.error_class == d.expected_class for d in self.dead_letters
        )

    @property
    def passed(self) -> bool:
        """The final check: every table as intended, the dead letters as intended."""
        return (
            not self.interrupted
            and self.drained_in_time
            and self.backlog_left == 0
            and all(t.ok for t in self.tables)
            and self.dead_letters_ok
        )

    @property
    def exit_code(self) -> int:
        """0 when the check passed, 130 when interrupted, 1 otherwise."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.passed else EXIT_MISMATCH

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return {
            "schema": self.schema,
            "prefix": self.prefix,
            "seconds": round(self.seconds, 2),
            "pushed": self.pushed,
            "operations": dict(self.kinds),
            "malformed": self.malformed,
            "drained": self.drained,
            "outcomes": dict(self.outcomes),
            "backlog_left": self.backlog_left,
            "delay_ms": {
                "p50": round(self.delay_p50_ms, 1),
                "p90": round(self.delay_p90_ms, 1),
                "p99": round(self.delay_p99_ms, 1),
                "max": round(self.delay_max_ms, 1),
            },
            "peak_drain_rate": round(self.peak_rate, 1),
            "tables": [
                {
                    "table": t.table,
                    "expected": t.expected,
                    "found": t.found,
                    "ok": t.ok,
                    "missing": t.missing[:10],
                    "unexpected": t.unexpected[:10],
                    "different": t.different[:10],
                }
                for t in self.tables
            ],
            "dead_letters": [
                {
                    "source_id": d.source_id,
                    "error_class": d.error_class,
                    "error": d.error,
                    "intended": d.intended,
                    "expected_class": d.expected_class,
                }
                for d in self.dead_letters
            ],
            "interrupted": self.interrupted,
            "drained_in_time": self.drained_in_time,
            "passed": self.passed,
        }


def demo_settings(base: Settings, options: DemoOptions, schema: str, prefix: str) -> Settings:
    """The user's settings, pointed at the demo's servers, schema and key prefix."""
    tenants = {TENANT_ID: TenantSettings(schema_name=schema, redis_key_prefix=prefix)}
    server = ServerSettings(enabled=False)
    if options.api_port is not None:
        server = base.server.model_copy(update={"enabled": True, "port": options.api_port})
    return base.model_copy(
        update={
            "redis": RedisSettings(
                url=SecretStr(options.redis_url), pool_size=base.redis.pool_size
            ),
            "master_database": base.master_database.model_copy(
                update={"url": SecretStr(options.database_url)}
            ),
            "drainer": DrainerSettings(
                **{**base.drainer.model_dump(), "num_partitions": options.partitions}
            ),
            "multitenancy": MultitenancySettings(enabled=True, tenants=tenants),
            "server": server,
            # the demo's tables borrow Hyperswitch's names, not its wire conventions
            "tables": base.tables.model_copy(update={"dialects": []}),
        }
    )


class Demo:
    """One demo run: producer, in-process drainer, live view, final check."""

    def __init__(self, options: DemoOptions, base: Settings, view: Any) -> None:
        self.options = options
        run_id = uuid.uuid4().hex[:8]
        self.schema = f"drainer_demo_{run_id}"
        self.prefix = f"drainer_demo_{run_id}"
        self.settings = demo_settings(base, options, self.schema, self.prefix)
        self.layout = StreamLayout(
            self.settings.drainer.stream_name, options.partitions, self.prefix
        )
        self.view = view
        self.stats = DemoStats()
        active = max(MIN_ACTIVE_PAYMENTS, int(options.rate * ACTIVE_PAYMENTS_PER_KOPS / 1000))
        self.workload = Workload(random.Random(options.seed), active)
        self.malformed_sent: dict[tuple[str, str], Malformed] = {}
        self.stop = asyncio.Event()
        self.interrupted = False
        self.drainer: Drainer | None = None

    # ---- signals

    def _on_signal(self, name: str) -> None:
        if not self.interrupted:
            log.warning("%s: stopping the producer and the drainer", name)
        self.interrupted = True
        self.stop.set()
        if self.drainer is not None:
            self.drainer.request_stop(name)

    # ---- database

    async def _create_schema(self) -> None:
        conn = await asyncpg.connect(self.options.database_url)
        try:
            await conn.execute(schema_sql(self.schema))
        finally:
            await conn.close()

    async def _drop_schema(self) -> None:
        conn = await asyncpg.connect(self.options.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await conn.close()

    async def _delete_keys(self, store: Store) -> None:
        redis = store.redis
        batch: list[str] = []
        async for key in redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
        for start in range(0, len(batch), 1000):
            await redis.delete(*batch[start : start + 1000])

    # ---- the run

    async def run(self) -> DemoResult:
        """Run the demo; returns what happened (the caller prints it)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        result = DemoResult(self.schema, self.prefix)
        try:
            await self._create_schema()
            try:
                await self._run(result)
            finally:
                if not self.options.keep:
                    await self._drop_schema()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        result.interrupted = self.interrupted
        return result

    async def _run(self, result: DemoResult) -> None:
        try:
            drainer = await open_drainer(
                self.settings,
                stop=self.stop,
                # count what the drainer commits, then pass it on to the telemetry's observer
                wrap_observer=lambda inner: DemoObserver(inner, self.stats),
            )
        except StartupAborted:
            return
        store = drainer.stores[TENANT_ID]
        self.drainer = drainer
        server = start_api(drainer)
        try:
            async with asyncio.TaskGroup() as tasks:
                drain_task = tasks.create_task(serve(drainer, server), name="drainer")
                view_done = asyncio.Event()
                tasks.create_task(self._watch(store, view_done), name="demo-view")
                try:
                    await self._produce(store)
                    self.stats.producing = False
                    if not self.interrupted:
                        result.drained_in_time = await self._wait_drained(store, drain_task)
                finally:
                    drainer.request_stop("demo finished" if not self.interrupted else "interrupted")
                    await asyncio.wait({drain_task})
                    view_done.set()
            await self._finish(store, result)
        finally:
            try:
                if not self.options.keep:
                    await self._delete_keys(store)
            finally:
                await drainer.close()

    async def _produce(self, store: Store) -> None:
        options, stats, workload = self.options, self.stats, self.workload
        producer = Producer(store.redis, self.layout)
        planned = (
            options.count if options.count is not None else int(options.rate * options.duration_s)
        )
        # spread the malformed entries over the run
        marks = [planned * (i + 1) // (len(MALFORMED) + 1) for i in range(len(MALFORMED))]
        started = time.monotonic()
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            if options.count is None and elapsed >= options.duration_s:
                break
            if options.count is not None and stats.pushed >= options.count:
                break
            due = int(options.rate * elapsed) - stats.pushed
            if options.count is not None:
                due = min(due, options.count - stats.pushed)
            while due > 0:
                # the malformed entries take their turn among the operations
                if marks and stats.pushed >= marks[0]:
                    marks.pop(0)
                    await self._push_malformed(store, MALFORMED[len(self.malformed_sent)])
                    due -= 1
                    continue
                size = min(due, marks[0] - stats.pushed) if marks else due
                ops = workload.take(size, datetime.now(UTC).replace(tzinfo=None))
                await producer.append_many(ops)
                stats.pushed += size
                due -= size
            await asyncio.sleep(TICK_S)

    async def _push_malformed(self, store: Store, bad: Malformed) -> None:
        index = len(self.malformed_sent)
        global_id = f"mid_demo_pid_malformed_{index}"
        fields = bad.fields(global_id, str(int(time.time())))
        stream = self.layout.stream_for(global_id)
        entry_id = await store.redis.xadd(stream, fields)  # type: ignore[arg-type]
        # entry ids are per stream: two partitions may hand out the same one
        self.malformed_sent[stream, str(entry_id)] = bad
        self.stats.pushed += 1
        self.stats.malformed_pushed += 1

    async def _backlog(self, store: Store) -> list[int]:
        pipe = store.redis.pipeline(transaction=False)
        for stream in self.layout.all_streams():
            pipe.xlen(stream)
        return [int(n) for n in await pipe.execute()]

    async def _watch(self, store: Store, done: asyncio.Event) -> None:
        """Poll the backlog and refresh the view until ``done``."""
        last_poll = 0.0
        while not done.is_set():
            if time.monotonic() - last_poll >= BACKLOG_POLL_S:
                last_poll = time.monotonic()
                with contextlib.suppress(RedisError, OSError):
                    self.stats.backlog = await self._backlog(store)
            self.view.update(self.stats, self.options)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self.view.interval_s)
        with contextlib.suppress(RedisError, OSError):
            self.stats.backlog = await self._backlog(store)
        self.view.update(self.stats, self.options, final=True)

    async def _wait_drained(self, store: Store, drain_task: asyncio.Task[None]) -> bool:
        deadline = time.monotonic() + DRAIN_WAIT_S
        while not self.stop.is_set() and not drain_task.done():
            if self.stats.drained >= self.stats.pushed and not any(await self._backlog(store)):
                return True
            if time.monotonic() > deadline:
                log.error("the drainer did not catch up within %.0fs", DRAIN_WAIT_S)
                return False
            await asyncio.sleep(0.1)
        return self.stats.drained >= self.stats.pushed

    # ---- the final check

    async def _finish(self, store: Store, result: DemoResult) -> None:
        stats = self.stats
        result.seconds = stats.elapsed_s
        result.pushed = stats.pushed
        result.kinds = Counter(self.workload.kinds)
        result.malformed = stats.malformed_pushed
        result.outcomes = Counter(stats.outcomes)
        result.peak_rate = stats.peak_rate
        delays = sorted(stats.delays_ms)
        result.delay_p50_ms = percentile(delays, 0.50)
        result.delay_p90_ms = percentile(delays, 0.90)
        result.delay_p99_ms = percentile(delays, 0.99)
        result.delay_max_ms = delays[-1] if delays else 0.0
        result.backlog_left = sum(await self._backlog(store))
        for letter in await store.dead_letters.all():
            intended = self.malformed_sent.get((letter.source_stream, letter.source_id))
            result.dead_letters.append(
                DeadLetterView(
                    source_id=letter.source_id,
                    error_class=letter.error_class,
                    error=letter.error,
                    intended=intended.name if intended else None,
                    expected_class=intended.error_class if intended else None,
                )
            )
        if not self.interrupted:
            result.tables = await self._check_tables()

    async def _check_tables(self) -> list[TableCheck]:
        conn = await asyncpg.connect(
            self.options.database_url, server_settings={"search_path": self.schema}
        )
        checks = []
        try:
            for table, key in KEYS.items():
                rows = {r[key]: dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")}
                checks.append(compare(table, self.workload.expected[table], rows))
        finally:
            await conn.close()
        return checks


def compare(
    table: str, expected: Mapping[str, Mapping[str, Any]], found: Mapping[str, Mapping[str, Any]]
) -> TableCheck:
    """Compare a table's rows with the intended ones, column by column."""
    check = TableCheck(table, len(expected), len(found))
    check.missing = sorted(set(expected) - set(found))
    check.unexpected = sorted(set(found) - set(expected))
    for key in sorted(set(expected) & set(found)):
        want, got = expected[key], found[key]
        for column, value in want.items():
            if normalise(column, value) != normalise(column, got.get(column)):
                check.different.append(f"{key}.{column}")
    return check


async def run_demo(options: DemoOptions, base: Settings, view: Any) -> DemoResult:
    """Run the demo against the servers in ``options`` with ``view`` showing progress."""
    return await Demo(options, base, view).run()
