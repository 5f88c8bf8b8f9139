"""``drainer bench``: the drainer against the per-entry baseline and COPY, in one run.

Every contender works on the same servers and the same generated data:

* **drainer** runs as a user runs it, ``python -m drainer run --burst --config
  <generated>`` in a child process, on a backlog pre-filled over the
  partitions. Its rate counts from the moment the child starts draining
  (its "draining N partitions" log line, after start-up and reflection)
  until it exits; its peak RSS comes from ``wait4``.
* **baseline** is :mod:`app.baseline` (Hyperswitch's Rust drainer's loop on plain asyncpg), run
  in this process on the same backlog.
* **limit** loads the same rows with asyncpg ``COPY``: what the database takes
  at most on this machine.

Then the drainer's delay (append to applied) is measured at a fixed offered
rate of about half its measured insert rate, from a timestamp column the
producer sets and a ``clock_timestamp()`` default the database sets, and its
peak RSS is compared between a small and a large backlog.

**startup** times ``python -m drainer run --burst`` from the spawn to its
"draining N partitions" line (the first read) against a schema of many tables,
Hyperswitch's 51 by default (:func:`default_startup_schema`): see
:meth:`Bench.run_startup`.

The tables live in a schema of their own and the streams under a key prefix of
their own, both removed at the end, so pointing the benchmark at real servers
touches nothing else; the start-up run's schema is loaded into a database of its
own (a dump names its schema and sets its own ``search_path``), dropped after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from redis.asyncio import Redis

from drainer.consumers.producer import Producer, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.db.operations import Operation
from drainer.devtools.baseline import POOL_SIZE, PerEntryDrainer
from drainer.settings import MAX_WORKERS

#: The measurements ``--only`` can pick.
PHASES = ("inserts", "mix", "tagged", "delay", "rss", "startup")
#: Backlog each throughput contender drains (entries).
DEFAULT_ENTRIES = 500_000
DEFAULT_PARTITIONS = 64
#: Backlogs whose peak RSS is compared (entries): memory must not grow with the backlog.
DEFAULT_RSS_ENTRIES = (100_000, 1_000_000)
#: How long the fixed-rate delay run offers load (seconds).
DEFAULT_DELAY_S = 20.0
#: The delay run offers this fraction of the measured maximum insert rate.
DELAY_LOAD_FRACTION = 0.5
#: Delay samples from the first seconds of the fixed-rate run are left out (warm-up).
DELAY_WARMUP_S = 2.0
#: ``--quick``: tiny sizes for a smoke run (tests, CI).
QUICK_ENTRIES = 2_000
QUICK_RSS_ENTRIES = (2_000, 6_000)
QUICK_DELAY_S = 3.0
#: Entries per pipelined XADD round trip while filling a backlog.
FILL_CHUNK = 5_000
#: Keys per wave of the mix: the wave's inserts, then three rounds of updates.
MIX_WAVE_KEYS = 500
MIX_UPDATES_PER_KEY = 3
#: The producer of the delay run appends what is due every this many seconds.
DELAY_TICK_S = 0.01
#: Slowest offered rate of the delay run (ops/s), whatever the measured maximum.
MIN_OFFERED_RATE = 100.0
#: Longest wait for a contender to finish, or for the delay run's backlog to drain.
DRAIN_TIMEOUT_S = 1_800.0
#: How long a drainer child may take to stop after SIGTERM before it is killed.
CHILD_STOP_TIMEOUT_S = 60.0
#: How long a drainer child may take to start draining.
CHILD_START_TIMEOUT_S = 120.0
#: Interval of the peak-RSS reading of a drainer child (VmHWM only grows).
RSS_POLL_S = 0.05
#: Lines of a child's log kept to explain a failure.
CHILD_LOG_LINES = 60
#: What the drainer child logs when its consumer loop starts (see consumers.supervisor).
DRAINING_MARKER = "draining "
#: Timed start-ups of the startup run, after one warm-up; the median is reported.
STARTUP_RUNS = 3
#: The start-up run's schema in a source checkout: Hyperswitch's 51 tables.
CHECKOUT_STARTUP_SCHEMA = Path("tests") / "fixtures" / "hyperswitch_schema.sql"

# Targets of the speed issue (same run, this machine, local servers).
TARGET_INSERTS_VS_BASELINE = 6.0
TARGET_INSERTS_VS_LIMIT = 0.25
#: Inserts with ``run --workers 2`` against COPY.
TARGET_TWO_WORKERS_VS_LIMIT = 0.35
#: The Hyperswitch-shaped mix (tagged variants, Encryption values) against inserts.
TARGET_TAGGED_VS_INSERTS = 0.80
TARGET_P99_DELAY_MS = 100.0
TARGET_RSS_GROWTH = 0.20
#: Start-up until the first read, reflecting Hyperswitch's 51 tables.
TARGET_STARTUP_S = 1.5
# Targets of earlier issues that still stand.
TARGET_MIX_VS_BASELINE = 3.0
#: Hyperswitch-shaped updates against flat ones.
TARGET_TAGGED_VS_FLAT = 0.85
#: The tagged-union form of the mix's updates, declared as a user would
#: (``[tables.tagged_updates]``): the same columns as the flat changeset, stamped.
TAGGED_ENUM = "PaymentUpdate"
TAGGED_VARIANT = "StatusUpdate"
TAGGED_FIELDS = ("status!", "amount_captured", "description", "metadata", "customer_details")

TABLE = "payment"
STREAM_NAME = "DRAINER_STREAM"
TENANT_ID = "bench"
BASE_TIME = datetime(2026, 1, 1, 10, 0, 0)
CURRENCIES = ("USD", "EUR", "INR", "GBP")
MERCHANTS = 50
UPDATE_STATUSES = ("requires_capture", "processing", "succeeded")
COPY_COLUMNS = (
    "payment_id",
    "merchant_id",
    "status",
    "amount",
    "amount_captured",
    "currency",
    "description",
    "metadata",
    "customer_details",
    "created_at",
    "modified_at",
)


def schema_sql(schema: str) -> str:
    """The benchmark's table: a payment intent with an enum, json and timestamps."""
    return f"""
    CREATE SCHEMA "{schema}";
    CREATE TYPE "{schema}".payment_status AS ENUM (
        'requires_payment_method', 'requires_capture', 'processing', 'succeeded', 'failed'
    );
    CREATE TABLE "{schema}".{TABLE} (
        payment_id text PRIMARY KEY,
        merchant_id text NOT NULL,
        status "{schema}".payment_status NOT NULL,
        amount bigint NOT NULL,
        amount_captured bigint,
        currency text NOT NULL,
        description text,
        metadata jsonb,
        customer_details bytea,
        created_at timestamp NOT NULL,
        modified_at timestamp NOT NULL,
        -- set by the database when the row is written: the delay run's clock
        drained_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    """


# --------------------------------------------------------------------------- workload


def _stamp(moment: datetime) -> str:
    """Hyperswitch's PrimitiveDateTime text form (UTC, microseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _payment_id(i: int) -> str:
    return f"pay_{i:09d}"


def _partition_key(i: int) -> str:
    return f"mid_merchant_{i % MERCHANTS}_pid_{_payment_id(i)}"


def _encrypted(i: int) -> list[int]:
    """An encrypted column's bytes as serde writes ``Vec<u8>``."""
    return list(f"enc:{i:09d}:customer-details".encode())


def insert_row(i: int, created: datetime) -> dict[str, Any]:
    """The wire row of payment ``i`` as first written."""
    stamp = _stamp(created)
    return {
        "payment_id": _payment_id(i),
        "merchant_id": f"merchant_{i % MERCHANTS}",
        "status": "requires_payment_method",
        "amount": 1_000 + i % 9_000,
        "amount_captured": None,
        "currency": CURRENCIES[i % len(CURRENCIES)],
        "description": f"order {i}",
        "metadata": {"order_id": i, "channel": "web", "tags": ["bench"]},
        "customer_details": _encrypted(i),
        "created_at": stamp,
        "modified_at": stamp,
    }


def update_changes(i: int, step: int, moment: datetime) -> dict[str, Any]:
    """The ``update_data`` of update ``step`` (0-2) of payment ``i``.

    Like Hyperswitch's ``*UpdateInternal`` structs, most fields are null (left unchanged).
    """
    return {
        "status": UPDATE_STATUSES[step],
        "amount_captured": 1_000 + i % 9_000 if step == 2 else None,
        "description": None,
        "metadata": None,
        "customer_details": _encrypted(i + step) if step == 0 else None,
        "modified_at": _stamp(moment + timedelta(seconds=step + 1)),
    }


def tagged_update(i: int, step: int) -> dict[str, Any]:
    """The same update as Hyperswitch writes its own: one variant of an externally
    tagged enum, the encrypted column as ``Encryption`` (``{"inner": [...]}``), and
    ``modified_at`` left to the apply-time stamp."""
    fields = update_changes(i, step, BASE_TIME)
    del fields["modified_at"]
    if fields["customer_details"] is not None:
        fields["customer_details"] = {"inner": fields["customer_details"]}
    return {TAGGED_VARIANT: fields}


def insert_ops(count: int, start: int = 0) -> Iterator[tuple[Operation, str]]:
    """``count`` inserts of new payments."""
    for i in range(start, start + count):
        created = BASE_TIME + timedelta(milliseconds=i)
        yield insert_op(TABLE, insert_row(i, created)), _partition_key(i)


def mix_ops(count: int, *, tagged: bool = False) -> Iterator[tuple[Operation, str]]:
    """``count`` operations: per payment one insert then three updates, in waves of keys
    (``tagged``: the updates in Hyperswitch's tagged-union shape)."""
    keys = count // (1 + MIX_UPDATES_PER_KEY)
    for wave in range(0, keys, MIX_WAVE_KEYS):
        ids = range(wave, min(wave + MIX_WAVE_KEYS, keys))
        for i in ids:
            created = BASE_TIME + timedelta(milliseconds=i)
            yield insert_op(TABLE, insert_row(i, created)), _partition_key(i)
        for step in range(MIX_UPDATES_PER_KEY):
            for i in ids:
                created = BASE_TIME + timedelta(milliseconds=i)
                changes = tagged_update(i, step) if tagged else update_changes(i, step, created)
                yield update_op(TABLE, {"payment_id": _payment_id(i)}, changes), _partition_key(i)


def mix_size(count: int) -> int:
    """How many operations :func:`mix_ops` yields for ``count``."""
    return count // (1 + MIX_UPDATES_PER_KEY) * (1 + MIX_UPDATES_PER_KEY)


def copy_records(count: int) -> list[tuple[Any, ...]]:
    """The rows of :func:`insert_ops` as COPY records (already typed)."""
    records = []
    for i in range(count):
        row = insert_row(i, BASE_TIME + timedelta(milliseconds=i))
        stamp = datetime.fromisoformat(row["created_at"])
        records.append(
            (
                row["payment_id"],
                row["merchant_id"],
                row["status"],
                row["amount"],
                row["amount_captured"],
                row["currency"],
                row["description"],
                orjson.dumps(row["metadata"]).decode(),
                bytes(row["customer_details"]),
                stamp,
                stamp,
            )
        )
    return records


def _batched(items: Iterable[tuple[Operation, str]], size: int) -> Iterator[list[Any]]:
    batch: list[tuple[Operation, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- results


def drainer_key(workers: int) -> str:
    """The report key of a drainer run: ``drainer`` for one process, ``drainer_N_workers``."""
    return "drainer" if workers == 1 else f"drainer_{workers}_workers"


@dataclass(slots=True)
class DrainRun:
    """One drain of a pre-filled backlog."""

    entries: int
    seconds: float
    peak_rss_kb: int = 0
    cpu_seconds: float = 0.0  # the drainer process's CPU time, start-up included

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class DelayRun:
    """The drainer at a fixed offered rate."""

    offered_rate: float
    seconds: float
    entries: int
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(slots=True)
class StartupRun:
    """``drainer run`` timed from its spawn to its first read, a few times."""

    tables: int
    #: seconds from the spawn to the "draining" line, one per timed run
    seconds: list[float]

    @property
    def median_s(self) -> float:
        """The median of the timed runs."""
        return statistics.median(self.seconds) if self.seconds else 0.0


@dataclass(slots=True)
class Target:
    """One of the issue's targets, as measured."""

    name: str
    measured: float
    required: float
    unit: str
    higher_is_better: bool = True

    @property
    def holds(self) -> bool:
        """Whether the measurement meets the target."""
        if self.higher_is_better:
            return self.measured >= self.required
        return self.measured <= self.required


@dataclass(slots=True)
class BenchReport:
    """Everything one ``drainer bench`` run measured."""

    machine: dict[str, Any]
    config: dict[str, Any]
    inserts: dict[str, DrainRun] = field(default_factory=dict)
    mix: dict[str, DrainRun] = field(default_factory=dict)
    #: the mix with Hyperswitch-shaped updates, drainer only
    tagged: DrainRun | None = None
    delay: DelayRun | None = None
    rss: list[DrainRun] = field(default_factory=list)
    startup: StartupRun | None = None
    seconds: float = 0.0

    @staticmethod
    def ratio(runs: Mapping[str, DrainRun], a: str, b: str) -> float:
        """Run ``a``'s rate over run ``b``'s (0 when either is missing)."""
        if a not in runs or b not in runs or runs[b].rate <= 0:
            return 0.0
        return runs[a].rate / runs[b].rate

    @property
    def inserts_vs_baseline(self) -> float:
        """Drainer inserts/s over the baseline's."""
        return self.ratio(self.inserts, "drainer", "baseline")

    @property
    def mix_vs_baseline(self) -> float:
        """Drainer mix ops/s over the baseline's."""
        return self.ratio(self.mix, "drainer", "baseline")

    @property
    def inserts_vs_limit(self) -> float:
        """Drainer inserts/s over COPY rows/s."""
        return self.ratio(self.inserts, "drainer", "limit")

    def _tagged_over(self, run: DrainRun | None) -> float:
        if self.tagged is None or run is None or run.rate <= 0:
            return 0.0
        return self.tagged.rate / run.rate

    @property
    def tagged_vs_flat(self) -> float:
        """Drainer ops/s on the Hyperswitch-shaped mix over the flat mix's."""
        return self._tagged_over(self.mix.get("drainer"))

    @property
    def tagged_vs_inserts(self) -> float:
        """Drainer ops/s on the Hyperswitch-shaped mix over its inserts/s."""
        return self._tagged_over(self.inserts.get("drainer"))

    @property
    def two_workers_vs_limit(self) -> float:
        """Drainer inserts/s with ``--workers 2`` over COPY rows/s (0 when not measured)."""
        return self.ratio(self.inserts, drainer_key(2), "limit")

    @property
    def rss_growth(self) -> float:
        """Relative growth of peak RSS from the smallest to the largest backlog."""
        if len(self.rss) < 2 or self.rss[0].peak_rss_kb <= 0:
            return 0.0
        return self.rss[-1].peak_rss_kb / self.rss[0].peak_rss_kb - 1.0

    def targets(self) -> list[Target]:
        """The issue's targets with this run's numbers."""
        found = []
        if "drainer" in self.inserts:
            found += [
                Target("inserts: drainer / baseline", self.inserts_vs_baseline,
                       TARGET_INSERTS_VS_BASELINE, "x"),
                Target("inserts: drainer / COPY limit", self.inserts_vs_limit,
                       TARGET_INSERTS_VS_LIMIT, "%"),
            ]  # fmt: skip
        if drainer_key(2) in self.inserts:
            found.append(
                Target("inserts, --workers 2: drainer / COPY limit", self.two_workers_vs_limit,
                       TARGET_TWO_WORKERS_VS_LIMIT, "%")
            )  # fmt: skip
        if self.tagged is not None and "drainer" in self.inserts:
            found.append(
                Target("tagged-union mix / inserts", self.tagged_vs_inserts,
                       TARGET_TAGGED_VS_INSERTS, "%")
            )  # fmt: skip
        if "drainer" in self.mix:
            found.append(
                Target("mix: drainer / baseline", self.mix_vs_baseline,
                       TARGET_MIX_VS_BASELINE, "x")
            )  # fmt: skip
        if self.tagged is not None and self.mix:
            found.append(
                Target("mix: tagged-union updates / flat", self.tagged_vs_flat,
                       TARGET_TAGGED_VS_FLAT, "%")
            )  # fmt: skip
        if self.delay is not None:
            found.append(
                Target("delay p99 at fixed rate", self.delay.p99_ms, TARGET_P99_DELAY_MS, "ms",
                       higher_is_better=False)
            )  # fmt: skip
        if len(self.rss) >= 2:
            found.append(
                Target("peak RSS growth, small to large backlog", self.rss_growth,
                       TARGET_RSS_GROWTH, "%", higher_is_better=False)
            )  # fmt: skip
        if self.startup is not None:
            found.append(
                Target(f"start-up until the first read ({self.startup.tables} tables)",
                       self.startup.median_s, TARGET_STARTUP_S, "s", higher_is_better=False)
            )  # fmt: skip
        return found

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""

        def run(r: DrainRun) -> dict[str, Any]:
            return {
                "entries": r.entries,
                "seconds": round(r.seconds, 3),
                "ops_per_s": round(r.rate, 1),
                "peak_rss_kb": r.peak_rss_kb or None,
                "cpu_seconds": round(r.cpu_seconds, 2) or None,
            }

        return {
            "machine": self.machine,
            "config": self.config,
            "inserts": {name: run(r) for name, r in self.inserts.items()},
            "mix": {name: run(r) for name, r in self.mix.items()},
            "tagged": run(self.tagged) if self.tagged is not None else None,
            "ratios": {
                "tagged_vs_flat_mix": round(self.tagged_vs_flat, 3),
                "tagged_mix_vs_inserts": round(self.tagged_vs_inserts, 3),
                "inserts_2_workers_vs_limit": round(self.two_workers_vs_limit, 4),
                "inserts_drainer_vs_baseline": round(self.inserts_vs_baseline, 3),
                "mix_drainer_vs_baseline": round(self.mix_vs_baseline, 3),
                "inserts_drainer_vs_limit": round(self.inserts_vs_limit, 4),
            },
            "delay": None
            if self.delay is None
            else {
                "offered_ops_per_s": round(self.delay.offered_rate, 1),
                "seconds": self.delay.seconds,
                "entries": self.delay.entries,
                "samples": self.delay.samples,
                "p50_ms": round(self.delay.p50_ms, 2),
                "p99_ms": round(self.delay.p99_ms, 2),
                "max_ms": round(self.delay.max_ms, 2),
            },
            "rss": [run(r) for r in self.rss],
            "rss_growth": round(self.rss_growth, 4),
            "startup": None
            if self.startup is None
            else {
                "tables": self.startup.tables,
                "runs_s": [round(t, 3) for t in self.startup.seconds],
                "median_s": round(self.startup.median_s, 3),
            },
            "targets": [
                {
                    "name": t.name,
                    "measured": round(t.measured, 4),
                    "required": t.required,
                    "unit": t.unit,
                    "holds": t.holds,
                }
                for t in self.targets()
            ],
            "total_seconds": round(self.seconds, 1),
        }


# --------------------------------------------------------------------------- the drainer child


class DrainerChild:
    """``python -m drainer run`` in a child process, timed and measured.

    The child runs in a session of its own (Ctrl-C on the benchmark does not
    reach it; the benchmark stops it) and is reaped with ``wait4`` for its own
    CPU time. Its peak RSS is the high-water mark the kernel keeps for its
    address space (``VmHWM``), read while it runs: ``ru_maxrss`` would not do,
    as Linux carries into it the RSS of the forked copy of this process.
    """

    def __init__(
        self,
        config: Path,
        *,
        burst: bool,
        wrapper: list[str] | None = None,
        workers: int = 1,
        write_bytecode: bool = False,
    ) -> None:
        """``write_bytecode``: let the child write the ``.pyc`` it lacks, whatever
        ``PYTHONDONTWRITEBYTECODE`` says (a warm-up before timing its start-up)."""
        args = [sys.executable, "-m", "drainer", "run", "--config", str(config)]
        if burst:
            args.append("--burst")
        if workers > 1:
            args += ["--workers", str(workers)]
        self.args = (wrapper or []) + args
        self.write_bytecode = write_bytecode
        self.proc: subprocess.Popen[bytes] | None = None
        self.draining_at: float | None = None
        self.started_at = 0.0
        self.exited_at = 0.0
        self.exit_code: int | None = None
        self.peak_rss_kb = 0
        self.cpu_seconds = 0.0
        self.lines: deque[str] = deque(maxlen=CHILD_LOG_LINES)
        self._draining = threading.Event()
        self._reader: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._waiter: asyncio.Future[int] | None = None

    def start(self) -> None:
        """Start the child and the thread that reads its log."""
        # the run's own settings file decides, not the caller's DRAINER__ variables
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRAINER__")}
        if self.write_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_log, name="drainer-child-log")
        self._reader.start()
        self._watcher = threading.Thread(target=self._watch_memory, name="drainer-child-rss")
        self._watcher.start()

    def _watch_memory(self) -> None:
        assert self.proc is not None
        pid = self.proc.pid
        # with --workers the child is a parent: its workers' peaks count too (the
        # last reading of each before it exits, summed: to RSS_POLL_S, and a worker
        # restarted in between would count once)
        peaks: dict[int, int] = {}
        while self.exit_code is None:
            own = _peak_rss_kb(pid)
            if own is None:  # gone, or not Linux
                return
            peaks[pid] = own
            for child in _child_pids(pid):
                if (peak := _peak_rss_kb(child)) is not None:
                    peaks[child] = peak
            self.peak_rss_kb = max(self.peak_rss_kb, sum(peaks.values()))
            time.sleep(RSS_POLL_S)

    def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.draining_at is None and DRAINING_MARKER in line and "partitions" in line:
                self.draining_at = time.monotonic()
                self._draining.set()
        self._draining.set()  # the log ended: nobody waits for a line that cannot come

    async def wait_draining(self, timeout_s: float = CHILD_START_TIMEOUT_S) -> None:
        """Wait until the child's consumer loop started; raise if it did not."""
        if not await asyncio.to_thread(self._draining.wait, timeout_s):
            raise RuntimeError(f"the drainer did not start within {timeout_s:.0f}s:\n{self.log}")
        if self.draining_at is None:
            raise RuntimeError(f"the drainer exited before draining:\n{self.log}")

    def _reap(self) -> int:
        assert self.proc is not None
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.exited_at = time.monotonic()
        self.exit_code = os.waitstatus_to_exitcode(status)
        # reaped here, so Popen must not wait for it again
        self.proc.returncode = self.exit_code
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        for thread in (self._reader, self._watcher):
            if thread is not None:
                thread.join()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return self.exit_code

    async def finish(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the child to exit, then kill it; returns its exit code."""
        if self.proc is None:
            return 0
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(asyncio.to_thread(self._reap))
        done, _ = await asyncio.wait({self._waiter}, timeout=timeout_s)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        return await self._waiter

    async def run_burst(self, timeout_s: float) -> None:
        """Start the (burst) child and wait up to ``timeout_s`` for it to drain and exit;
        raise with its log if it did not start, or exited with an error."""
        self.start()
        code = -1
        try:
            await self.wait_draining()
            code = await self.finish(timeout_s)
        finally:
            if self.running:
                code = await self.finish(0)
        if code != 0:
            raise RuntimeError(f"drainer exited with {code}:\n{self.log}")

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM: graceful shutdown)."""
        if self.proc is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    @property
    def running(self) -> bool:
        """True until the child has exited."""
        return self.proc is not None and self.exit_code is None and self.proc.poll() is None

    @property
    def startup_seconds(self) -> float:
        """From the spawn to the start of draining (0 before it started draining)."""
        return self.draining_at - self.started_at if self.draining_at is not None else 0.0

    @property
    def drain_seconds(self) -> float:
        """From the start of draining to exit."""
        start = self.draining_at if self.draining_at is not None else self.started_at
        return self.exited_at - start

    @property
    def log(self) -> str:
        """The last lines the child logged."""
        return "\n".join(self.lines)


def _peak_rss_kb(pid: int) -> int | None:
    """A process's peak RSS (``VmHWM``, monotonic), None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _child_pids(pid: int) -> list[int]:
    """A process's children (Linux), none when it is gone."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


# --------------------------------------------------------------------------- the benchmark


@dataclass(slots=True)
class BenchOptions:
    """What to measure and where."""

    redis_url: str
    database_url: str
    entries: int = DEFAULT_ENTRIES
    partitions: int = DEFAULT_PARTITIONS
    rss_entries: tuple[int, ...] = DEFAULT_RSS_ENTRIES
    delay_s: float = DEFAULT_DELAY_S
    drainer_settings: Mapping[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    profile_dir: Path | None = None
    #: Which measurements to take (all by default); see :data:`PHASES`.
    phases: frozenset[str] = frozenset({"inserts", "mix", "delay", "rss"})
    #: Offered rate of the delay run; None: half the measured insert rate.
    delay_rate: float | None = None
    #: Worker processes of the drainer's inserts and mix runs (``run --workers``), each
    #: count measured in turn; the ratios and targets are those of one process.
    workers: tuple[int, ...] = (1,)
    #: The SQL the startup run loads and the drainer reflects (:func:`default_startup_schema`).
    startup_schema: Path | None = None


def default_startup_schema() -> Path | None:
    """Hyperswitch's schema (51 tables) in the source checkout this module runs from.

    None where there is no checkout (an installed wheel): then the startup run needs
    ``--startup-schema``.
    """
    path = Path(__file__).resolve().parents[2] / CHECKOUT_STARTUP_SCHEMA
    return path if path.is_file() else None


def database_url_for(url: str, database: str) -> str:
    """``url`` (``postgresql://``) naming ``database`` instead of its own."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def drainer_config(
    path: Path,
    *,
    redis_url: str,
    database_url: str,
    schema: str,
    prefix: str,
    partitions: int,
    drainer: Mapping[str, Any],
    api: bool = False,
    tagged_updates: bool = True,
) -> Path:
    """Write the settings file the drainer child runs with.

    ``drainer`` holds overrides: ``key`` for ``[drainer]``, ``section.key`` for another section.
    ``api``: serve the operator API (on a free loopback port). ``tagged_updates``:
    declare the tagged-union updates of the benchmark's table.
    """
    plain = {k: v for k, v in drainer.items() if "." not in k}
    server: dict[str, Any] = (
        {"enabled": True, "host": "127.0.0.1", "port": 0} if api else {"enabled": False}
    )
    sections: dict[str, dict[str, Any]] = {
        "drainer": {"num_partitions": partitions, "stream_name": STREAM_NAME, **plain},
        "master_database": {"url": database_url},
        "redis": {"url": redis_url},
        "server": server,
        "multitenancy": {"enabled": True},
        f"multitenancy.tenants.{TENANT_ID}": {"schema": schema, "redis_key_prefix": prefix},
        "telemetry": {"log_level": "INFO"},
    }
    for dotted, value in drainer.items():
        if "." in dotted:
            section, _, key = dotted.rpartition(".")
            sections.setdefault(section, {})[key] = value
    lines = []
    for name, body in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in body.items())
        lines.append("")
    if tagged_updates:
        fields = ", ".join(_toml_value(f) for f in TAGGED_FIELDS)
        lines += [
            f"[tables.tagged_updates.{TABLE}]",
            f"enum = {_toml_value(TAGGED_ENUM)}",
            'stamps = ["modified_at"]',
            f"[tables.tagged_updates.{TABLE}.variants]",
            f"{TAGGED_VARIANT} = {{ fields = [{fields}] }}",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


class Bench:
    """One benchmark run: its schema, its key prefix, its clients."""

    def __init__(self, options: BenchOptions, workdir: Path, progress: Any = None) -> None:
        self.options = options
        self.workdir = workdir
        self.progress = progress or (lambda message: None)
        run_id = uuid.uuid4().hex[:8]
        self.schema = f"drainer_bench_{run_id}"
        self.prefix = f"drainer_bench_{run_id}"
        self.layout = StreamLayout(STREAM_NAME, options.partitions, self.prefix)
        self.redis = Redis.from_url(options.redis_url, decode_responses=True)
        self.raw_redis = Redis.from_url(options.redis_url)  # bytes, as the baseline reads
        self.producer = Producer(self.redis, self.layout)
        self.pool: asyncpg.Pool | None = None
        self.config = drainer_config(
            workdir / "drainer.toml",
            redis_url=options.redis_url,
            database_url=options.database_url,
            schema=self.schema,
            prefix=self.prefix,
            partitions=options.partitions,
            drainer=options.drainer_settings,
        )

    async def __aenter__(self) -> Bench:
        self.pool = await asyncpg.create_pool(
            self.options.database_url,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"search_path": self.schema, "application_name": "drainer-bench"},
        )
        await self.pool.execute(schema_sql(self.schema))
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.pool is not None:
                await self.pool.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                await self.pool.close()
            await self._delete_keys()
        finally:
            await self.redis.aclose()
            await self.raw_redis.aclose()

    # ---- helpers

    async def _delete_keys(self) -> None:
        batch: list[str] = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.redis.delete(*batch)
                batch = []
        if batch:
            await self.redis.delete(*batch)

    async def reset(self) -> None:
        """Empty the table, the watermarks and every stream of the run."""
        assert self.pool is not None
        await self._delete_keys()
        await self.pool.execute(f"TRUNCATE {TABLE}")
        # the drainer creates its watermark table on first start
        await self.pool.execute("DROP TABLE IF EXISTS drainer_watermark")

    async def fill(self, ops: Iterable[tuple[Operation, str]]) -> int:
        """Append ``ops`` to the partition streams, pipelined; returns how many."""
        count = 0
        for chunk in _batched(ops, FILL_CHUNK):
            await self.producer.append_many(chunk)
            count += len(chunk)
        return count

    async def backlog(self) -> int:
        """Entries left in the run's partition streams."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.layout.all_streams():
            pipe.xlen(stream)
        return int(sum(await pipe.execute()))

    async def rows(self) -> int:
        """Rows in the benchmark table."""
        assert self.pool is not None
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {TABLE}"))

    async def _check_drained(self, who: str, rows: int, *, succeeded: bool = False) -> None:
        backlog = await self.backlog()
        found = await self.rows()
        if backlog or found != rows:
            raise RuntimeError(f"{who}: {found} rows of {rows} and {backlog} entries left")
        if succeeded:
            assert self.pool is not None
            done = await self.pool.fetchval(
                f"SELECT count(*) FROM {TABLE} WHERE status = 'succeeded'"
            )
            if done != rows:
                raise RuntimeError(f"{who}: only {done} of {rows} payments got every update")

    # ---- contenders

    async def run_drainer(self, name: str, *, workers: int = 1) -> DrainRun:
        """The drainer in burst mode, as a child process (with ``workers`` processes)."""
        backlog = await self.backlog()
        wrapper = None
        if self.options.profile_dir is not None:
            self.options.profile_dir.mkdir(parents=True, exist_ok=True)
            out = self.options.profile_dir / f"{name}.svg"
            wrapper = [str(_py_spy()), "record", "--subprocesses", "-o", str(out), "--"]
        child = DrainerChild(self.config, burst=True, wrapper=wrapper, workers=workers)
        await child.run_burst(DRAIN_TIMEOUT_S)
        return DrainRun(backlog, child.drain_seconds, child.peak_rss_kb, child.cpu_seconds)

    async def run_baseline(self) -> DrainRun:
        """Hyperswitch's Rust drainer's algorithm on plain asyncpg, in this process."""
        backlog = await self.backlog()
        pool = await asyncpg.create_pool(
            self.options.database_url,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"search_path": self.schema, "application_name": "drainer-baseline"},
        )
        try:
            types, keys = await PerEntryDrainer.describe(pool, self.schema)
            baseline = PerEntryDrainer(
                self.raw_redis,
                pool,
                self.layout,
                types,
                keys,
                max_read_count=int(self.options.drainer_settings.get("max_read_count", 100)),
            )
            started = time.monotonic()
            stats = await asyncio.wait_for(baseline.drain(), DRAIN_TIMEOUT_S)
            seconds = time.monotonic() - started
        finally:
            await pool.close()
        if stats.failed:
            raise RuntimeError(f"baseline: {stats.failed} entries failed: {stats.errors}")
        return DrainRun(backlog, seconds)

    async def run_copy(self, count: int) -> DrainRun:
        """The same rows with COPY: the database's ceiling."""
        assert self.pool is not None
        records = copy_records(count)
        async with self.pool.acquire() as conn:
            started = time.monotonic()
            await conn.copy_records_to_table(
                TABLE, records=records, columns=COPY_COLUMNS, schema_name=self.schema
            )
            seconds = time.monotonic() - started
        return DrainRun(count, seconds)

    async def run_delay(self, rate: float, seconds: float) -> DelayRun:
        """The drainer running normally while a producer offers ``rate`` inserts/s."""
        assert self.pool is not None
        child = DrainerChild(self.config, burst=False)
        child.start()
        sent = 0
        code = -1
        try:
            await child.wait_draining()
            started_wall = datetime.now(UTC).replace(tzinfo=None)
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                due = int(rate * elapsed) - sent
                if due > 0:
                    now = datetime.now(UTC).replace(tzinfo=None)
                    ops = [
                        (insert_op(TABLE, insert_row(i, now)), _partition_key(i))
                        for i in range(sent, sent + due)
                    ]
                    await self.producer.append_many(ops)
                    sent += due
                await asyncio.sleep(DELAY_TICK_S)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while await self.rows() < sent:
                if time.monotonic() > deadline or not child.running:
                    raise RuntimeError(f"the drainer fell behind or stopped:\n{child.log}")
                await asyncio.sleep(0.1)
            child.stop()
            code = await child.finish(CHILD_STOP_TIMEOUT_S)
        finally:
            if child.running:
                child.stop()
                code = await child.finish(CHILD_STOP_TIMEOUT_S)
        if code != 0:
            raise RuntimeError(f"drainer exited with {code}:\n{child.log}")
        row = await self.pool.fetchrow(
            f"""
            SELECT count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99,
                   max(d) AS worst
            FROM (
                SELECT extract(epoch FROM (drained_at AT TIME ZONE 'UTC') - created_at) * 1000 AS d
                FROM {TABLE} WHERE created_at >= $1
            ) AS delays
            """,
            started_wall + timedelta(seconds=DELAY_WARMUP_S),
        )
        assert row is not None
        return DelayRun(
            rate,
            seconds,
            sent,
            int(row["n"]),
            float(row["p50"] or 0),
            float(row["p99"] or 0),
            float(row["worst"] or 0),
        )

    async def run_startup(self, schema_sql_text: str) -> StartupRun:
        """``drainer run --burst`` from its spawn to its first read, on ``schema_sql_text``.

        The SQL (a ``pg_dump --schema-only``, Hyperswitch's by default) is loaded into a
        database of its own, created and dropped here: a dump names its schema and
        sets its own ``search_path``, so it cannot share the run's. The drainer drains
        the schema holding most of its tables, with the operator API on (a free
        loopback port), as ``drainer run`` runs by default, over empty streams under
        the run's key prefix. One warm-up run first, not timed: it creates the
        watermark table and the groups (the timed runs are restarts, as in production),
        fills the page cache, and writes the bytecode a checkout may lack
        (``PYTHONDONTWRITEBYTECODE`` or not: an installed package has it). Then
        :data:`STARTUP_RUNS` timed runs, one after the other.
        """
        database = f"{self.schema}_startup"
        admin = await asyncpg.connect(self.options.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
            try:
                url = database_url_for(self.options.database_url, database)
                schema, tables = await _load_startup_schema(url, schema_sql_text)
                config = drainer_config(
                    self.workdir / "startup.toml",
                    redis_url=self.options.redis_url,
                    database_url=url,
                    schema=schema,
                    prefix=self.prefix,
                    partitions=self.options.partitions,
                    drainer=self.options.drainer_settings,
                    api=True,
                    tagged_updates=False,
                )
                await self._time_startup(config, warm_up=True)
                seconds = [await self._time_startup(config) for _ in range(STARTUP_RUNS)]
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()
        return StartupRun(tables, seconds)

    async def _time_startup(self, config: Path, *, warm_up: bool = False) -> float:
        """One burst run over empty streams: seconds from its spawn to its first read."""
        child = DrainerChild(config, burst=True, write_bytecode=warm_up)
        await child.run_burst(CHILD_STOP_TIMEOUT_S)
        return child.startup_seconds

    # ---- the whole run

    async def run(self) -> BenchReport:
        """Every measurement, in order; returns the report."""
        options = self.options
        began = time.monotonic()
        report = BenchReport(machine=await self.machine(), config=self.describe())
        if "startup" in options.phases:
            await self._startup(report)  # first: before the drains heat the machine
        if "inserts" in options.phases:
            await self._inserts(report)
        if "mix" in options.phases:
            await self._mix(report)
        if "tagged" in options.phases:
            await self._tagged(report)
        if "delay" in options.phases and options.delay_s > 0:
            await self._delay(report)
        if "rss" in options.phases:
            await self._rss(report)
        report.seconds = time.monotonic() - began
        return report

    def _contenders(self) -> list[tuple[str, int]]:
        """(report key, worker processes) of each drainer run, then the baseline's (0)."""
        runs = [(drainer_key(n), n) for n in dict.fromkeys(self.options.workers)]
        return [*runs, ("baseline", 0)]

    async def _inserts(self, report: BenchReport) -> None:
        n = self.options.entries
        self.progress(f"inserts: filling {n:,} entries over {self.options.partitions} partitions")
        for name, workers in self._contenders():
            await self.reset()
            await self.fill(insert_ops(n))
            self.progress(f"inserts: {name} draining")
            run = await (
                self.run_drainer(_profile_name("inserts", workers), workers=workers)
                if workers
                else self.run_baseline()
            )
            await self._check_drained(name, n)
            report.inserts[name] = run
            self.progress(f"inserts: {name} {run.rate:,.0f} ops/s")
        await self.reset()
        report.inserts["limit"] = await self.run_copy(n)
        self.progress(f"inserts: COPY {report.inserts['limit'].rate:,.0f} rows/s")

    async def _mix(self, report: BenchReport) -> None:
        n = self.options.entries
        m = mix_size(n)
        for name, workers in self._contenders():
            await self.reset()
            await self.fill(mix_ops(n))
            self.progress(f"mix: {name} draining {m:,} entries")
            run = await (
                self.run_drainer(_profile_name("mix", workers), workers=workers)
                if workers
                else self.run_baseline()
            )
            await self._check_drained(name, m // (1 + MIX_UPDATES_PER_KEY), succeeded=True)
            report.mix[name] = run
            self.progress(f"mix: {name} {run.rate:,.0f} ops/s")

    async def _tagged(self, report: BenchReport) -> None:
        n = self.options.entries
        m = mix_size(n)
        await self.reset()
        await self.fill(mix_ops(n, tagged=True))
        self.progress(f"tagged mix: drainer draining {m:,} entries")
        run = await self.run_drainer("tagged")
        await self._check_drained("drainer", m // (1 + MIX_UPDATES_PER_KEY), succeeded=True)
        report.tagged = run
        self.progress(f"tagged mix: drainer {run.rate:,.0f} ops/s")

    async def _delay(self, report: BenchReport) -> None:
        options = self.options
        if options.delay_rate is not None:
            rate = options.delay_rate
        elif "drainer" in report.inserts:
            rate = max(MIN_OFFERED_RATE, report.inserts["drainer"].rate * DELAY_LOAD_FRACTION)
        else:
            raise ValueError("the delay run needs the inserts run or an offered rate")
        await self.reset()
        self.progress(f"delay: offering {rate:,.0f} inserts/s for {options.delay_s:.0f}s")
        report.delay = await self.run_delay(rate, options.delay_s)
        self.progress(f"delay: p50 {report.delay.p50_ms:.1f} ms, p99 {report.delay.p99_ms:.1f} ms")

    async def _startup(self, report: BenchReport) -> None:
        path = self.options.startup_schema
        if path is None:
            raise ValueError("the startup run needs a schema (--startup-schema)")
        self.progress(f"startup: loading {path.name}, then {STARTUP_RUNS} start-ups")
        report.startup = await self.run_startup(path.read_text())
        self.progress(
            f"startup: {report.startup.median_s:.2f} s until the first read "
            f"({report.startup.tables} tables)"
        )

    async def _rss(self, report: BenchReport) -> None:
        for size in self.options.rss_entries:
            await self.reset()
            self.progress(f"rss: filling {size:,} entries")
            await self.fill(insert_ops(size))
            run = await self.run_drainer(f"rss_{size}")
            await self._check_drained("drainer", size)
            report.rss.append(run)
            self.progress(f"rss: {size:,} entries, peak {run.peak_rss_kb / 1024:.0f} MiB")

    def describe(self) -> dict[str, Any]:
        """The run's parameters."""
        return {
            "entries": self.options.entries,
            "mix_entries": mix_size(self.options.entries),
            "partitions": self.options.partitions,
            "rss_entries": list(self.options.rss_entries),
            "delay_seconds": self.options.delay_s,
            "drainer_settings": dict(self.options.drainer_settings),
            "workers": list(self.options.workers),
            "startup_schema": str(self.options.startup_schema)
            if self.options.startup_schema is not None
            else None,
            "baseline_pool_size": POOL_SIZE,
            "schema": self.schema,
            "redis_prefix": self.prefix,
        }

    async def machine(self) -> dict[str, Any]:
        """The machine and server versions the numbers come from."""
        assert self.pool is not None
        info = await self.redis.info("server")
        return {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
            "python": platform.python_version(),
            "postgresql": await self.pool.fetchval("SHOW server_version"),
            "redis": info.get("redis_version"),
            "platform": platform.platform(),
        }


async def _load_startup_schema(url: str, sql: str) -> tuple[str, int]:
    """Run ``sql`` in the database at ``url``; the schema holding most tables, and their count."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
        row = await conn.fetchrow(
            """
            SELECT schemaname, count(*) AS tables FROM pg_tables
            WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
            GROUP BY schemaname ORDER BY tables DESC, schemaname LIMIT 1
            """
        )
    finally:
        await conn.close()
    if row is None:
        raise ValueError("the startup schema creates no table")
    return str(row["schemaname"]), int(row["tables"])


def _py_spy() -> Path:
    candidate = Path(sys.executable).parent / "py-spy"
    if not candidate.exists():
        raise RuntimeError("--profile needs py-spy in the virtual environment")
    return candidate


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_kib() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


async def run_bench(options: BenchOptions, progress: Any = None) -> BenchReport:
    """Run the whole benchmark against the servers in ``options``."""
    workdir = options.workdir or Path.cwd()
    async with Bench(options, workdir, progress) as bench:
        return await bench.run()


# --------------------------------------------------------------------------- output


def _profile_name(measure: str, workers: int) -> str:
    """The flame graph's name of a drainer run (``--profile``)."""
    return measure if workers == 1 else f"{measure}_{workers}_workers"


def _worker_runs(runs: Mapping[str, DrainRun]) -> list[tuple[str, int]]:
    """(key, workers) of the runs with several drainer workers, fewest first."""
    found = []
    for workers in range(2, MAX_WORKERS + 1):
        if (name := drainer_key(workers)) in runs:
            found.append((name, workers))
    return found


def _rate(run: DrainRun | None) -> str:
    return f"{run.rate:,.0f}" if run is not None else "-"


def print_report(report: BenchReport, console: Any = None) -> None:
    """Print the report as tables (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    m = report.machine
    console.print(
        f"[bold]drainer bench[/bold]: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}, Redis {m['redis']}"
    )
    cfg = report.config
    table = Table(title=f"{cfg['partitions']} partitions, same servers, same data, one run")
    table.add_column("measure")
    table.add_column("drainer", justify="right")
    table.add_column("baseline (per entry)", justify="right")
    table.add_column("limit (COPY)", justify="right")
    table.add_column("drainer/baseline", justify="right")
    table.add_column("drainer/limit", justify="right")
    ins = report.inserts
    if ins:
        table.add_row(
            f"inserts, ops/s ({cfg['entries']:,} entries)",
            _rate(ins.get("drainer")),
            _rate(ins.get("baseline")),
            _rate(ins.get("limit")),
            f"{report.inserts_vs_baseline:.1f}x",
            f"{report.inserts_vs_limit:.0%}",
        )
        for name, workers in _worker_runs(ins):
            table.add_row(
                f"  same, drainer with {workers} workers",
                _rate(ins[name]),
                "",
                "",
                f"{report.ratio(ins, name, 'baseline'):.1f}x",
                f"{report.ratio(ins, name, 'limit'):.0%}",
            )
    if report.mix:
        table.add_row(
            f"1 insert + 3 updates, ops/s ({cfg['mix_entries']:,} entries)",
            _rate(report.mix.get("drainer")),
            _rate(report.mix.get("baseline")),
            "-",
            f"{report.mix_vs_baseline:.1f}x",
            "-",
        )
        for name, workers in _worker_runs(report.mix):
            table.add_row(
                f"  same, drainer with {workers} workers",
                _rate(report.mix[name]),
                "",
                "-",
                f"{report.ratio(report.mix, name, 'baseline'):.1f}x",
                "-",
            )
    if report.tagged is not None:
        table.add_row(
            f"same, Hyperswitch-shaped updates ({cfg['mix_entries']:,} entries)",
            _rate(report.tagged),
            "-",
            "-",
            f"{report.tagged_vs_flat:.0%} of flat",
            "-",
        )
    if report.delay is not None:
        d = report.delay
        table.add_row(
            f"delay p50 / p99 at {d.offered_rate:,.0f} ops/s offered",
            f"{d.p50_ms:.0f} / {d.p99_ms:.0f} ms",
            "",
            "",
            "",
            "",
        )
    for run in report.rss:
        table.add_row(
            f"peak RSS, {run.entries:,} backlog",
            f"{run.peak_rss_kb / 1024:.0f} MiB ({run.rate:,.0f} ops/s)",
            "",
            "",
            "",
            "",
        )
    if report.startup is not None:
        runs = len(report.startup.seconds)
        table.add_row(
            f"start-up until the first read, {report.startup.tables} tables (median of {runs})",
            f"{report.startup.median_s:.2f} s",
            "",
            "",
            "",
            "",
        )
    console.print(table)
    targets = Table(title="targets")
    targets.add_column("target")
    targets.add_column("measured", justify="right")
    targets.add_column("required", justify="right")
    targets.add_column("holds")
    for t in report.targets():
        if t.unit == "%":
            measured, required = f"{t.measured:.0%}", f"{t.required:.0%}"
        elif t.unit == "x":
            measured, required = f"{t.measured:.2f}x", f"{t.required:.0f}x"
        elif t.unit == "s":
            measured, required = f"{t.measured:.2f} s", f"{t.required:.1f} s"
        else:
            measured, required = f"{t.measured:.0f} {t.unit}", f"{t.required:.0f} {t.unit}"
        sign = ">=" if t.higher_is_better else "<="
        targets.add_row(
            t.name,
            measured,
            f"{sign} {required}",
            "[green]yes[/green]" if t.holds else "[red]no[/red]",
        )
    console.print(targets)
    console.print(f"total {report.seconds:.0f}s")
