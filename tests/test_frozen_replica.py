"""A replica frozen (SIGSTOP) inside a batch transaction must not stall the other replicas.

The frozen replica holds its partition's watermark row locked. Another replica claims
its entries and must keep draining every other partition meanwhile (the lock is taken
with NOWAIT, the busy partition backs off); PostgreSQL ends the frozen replica's idle
transaction (``idle_in_transaction_session_timeout``), after which the claimed entries
are applied, and everything is applied exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout, partition_of
from drainer.db.fence import WATERMARK_TABLE, create_watermark_table
from drainer.settings import SettingsError, load_settings
from drainer.store import Store
from tests.conftest import sqlalchemy_url
from tests.support.drainer import (
    REDIS_URL,
    create_a_table,
    settings_from,
    spawn_drainer,
    stop_process_async,
    stream_totals,
    wait_until,
    write_config,
)

PARTITIONS = 32
#: Advisory lock the test holds; the table's trigger waits on it for ``hold`` rows, so
#: the first replica stops inside its batch transaction exactly when the test wants.
GATE_LOCK = 4242
HOLD_KEY = "held-entity"
HELD = ["hold-0", "hold-1", "hold-2"]
FREE_ENTRIES = 30
LATER_ENTRIES = 10
#: Generous bounds: each wait normally ends in well under a second.
WAIT_S = 30

_SCHEMA = f"""
CREATE TABLE ledger (id bigserial PRIMARY KEY, v text NOT NULL);
CREATE FUNCTION wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.v LIKE 'hold-%' THEN
        PERFORM pg_advisory_xact_lock_shared({GATE_LOCK});
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER gate BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION wait_at_gate();
"""
_WAITING_AT_GATE = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'drainer'
  AND wait_event_type = 'Lock' AND wait_event = 'advisory'
"""

#: The frozen replica's own settings: it may wait at the gate as long as the test
#: needs, and PostgreSQL ends its transaction 1 s after it goes idle.
FROZEN_ENV = {
    "DRAINER__MASTER_DATABASE__STATEMENT_TIMEOUT_MS": "120000",
    "DRAINER__MASTER_DATABASE__LOCK_TIMEOUT_MS": "120000",
    "DRAINER__MASTER_DATABASE__IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS": "1000",
}
#: The healthy replica's: a session lock_timeout longer than the test's waits, so it
#: drains the other partitions only if taking the watermark never waits at all.
HEALTHY_ENV = {"DRAINER__MASTER_DATABASE__LOCK_TIMEOUT_MS": "120000"}


def _keys_off(partition: int, count: int, tag: str) -> list[str]:
    """``count`` partition keys, none of which falls on ``partition``."""
    keys: list[str] = []
    i = 0
    while len(keys) < count:
        key = f"{tag}-{i}"
        if partition_of(key, PARTITIONS) != partition:
            keys.append(key)
        i += 1
    return keys


def _stopped(proc: subprocess.Popen[bytes]) -> bool:
    """True while the process is stopped by a signal (state T in /proc)."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def _spawn(
    config: Path, consumer: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> subprocess.Popen[bytes]:
    with monkeypatch.context() as scoped:
        for name, value in env.items():
            scoped.setenv(name, value)
        return spawn_drainer(config, consumer=consumer)


@pytest.mark.parametrize(
    "first_batch",
    [False, True],
    ids=["watermark-row-exists", "first-batch-of-the-partition"],
)
async def test_frozen_replica_holding_a_partition_lock_does_not_stall_the_others(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    first_batch: bool,
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    gate = await asyncpg.connect(pg_dsn)
    await conn.execute(_SCHEMA)
    await gate.execute("SELECT pg_advisory_lock($1)", GATE_LOCK)
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix)
    held_partition = partition_of(HOLD_KEY, PARTITIONS)
    held_stream = layout.stream_key(held_partition)
    if not first_batch:
        # as an earlier batch on the partition leaves it (the frozen replica then only
        # locks the row; on a first batch it inserts it, uncommitted)
        engine = create_async_engine(sqlalchemy_url(pg_dsn))
        try:
            async with engine.begin() as setup:
                await create_watermark_table(setup)
                await setup.execute(
                    text(f"INSERT INTO {WATERMARK_TABLE} (stream) VALUES (:s)"),
                    {"s": held_stream},
                )
        finally:
            await engine.dispose()
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, layout)
    drainer = {"num_partitions": PARTITIONS}
    frozen_config = write_config(
        tmp_path / "frozen.toml", pg_dsn, prefix=redis_prefix, drainer=drainer
    )
    # one slot: a single lock wait without limit would stop this replica entirely
    healthy_config = write_config(
        tmp_path / "healthy.toml",
        pg_dsn,
        prefix=redis_prefix,
        drainer={**drainer, "claim_min_idle_ms": 300, "max_concurrent_partitions": 1},
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for v in HELD:
            await producer.insert("ledger", {"v": v}, partition_key=HOLD_KEY)
        frozen = _spawn(frozen_config, "frozen", FROZEN_ENV, monkeypatch)
        procs.append(frozen)

        async def frozen_waits_at_gate() -> bool:
            return await conn.fetchval(_WAITING_AT_GATE) == 1

        await wait_until(frozen_waits_at_gate, timeout_s=WAIT_S)
        # inside its batch transaction, the watermark row of held_partition locked
        os.kill(frozen.pid, signal.SIGSTOP)

        healthy = _spawn(healthy_config, "healthy", HEALTHY_ENV, monkeypatch)
        procs.append(healthy)

        async def healthy_claimed() -> bool:
            rows = await redis.xpending_range(
                held_stream, "drainer", "-", "+", 10, consumername="healthy"
            )
            return len(rows) == len(HELD)

        await wait_until(healthy_claimed, timeout_s=WAIT_S)
        free = [f"free-{i}" for i in range(FREE_ENTRIES)]
        for v, key in zip(free, _keys_off(held_partition, FREE_ENTRIES, "free"), strict=True):
            await producer.insert("ledger", {"v": v}, partition_key=key)

        async def free_applied() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM ledger WHERE v LIKE 'free-%'")
            return n == FREE_ENTRIES

        # every entry on the untouched partitions, while the lock is still held
        await wait_until(free_applied, timeout_s=WAIT_S)
        assert _stopped(frozen)
        assert await conn.fetchval(_WAITING_AT_GATE) == 1
        assert await conn.fetchval("SELECT count(*) FROM ledger WHERE v LIKE 'hold-%'") == 0

        # the frozen replica's statement completes; its transaction then sits idle and
        # PostgreSQL ends it, releasing the lock, while the replica is still stopped
        await gate.execute("SELECT pg_advisory_unlock($1)", GATE_LOCK)

        async def held_applied() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM ledger WHERE v LIKE 'hold-%'")
            return n == len(HELD)

        await wait_until(held_applied, timeout_s=WAIT_S)
        assert _stopped(frozen)

        os.kill(frozen.pid, signal.SIGCONT)
        later = [f"later-{i}" for i in range(LATER_ENTRIES)]
        for i, v in enumerate(later):
            await producer.insert("ledger", {"v": v}, partition_key=HOLD_KEY if i < 3 else v)

        async def all_done() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM ledger")
            return n >= len(HELD) + FREE_ENTRIES + LATER_ENTRIES and (
                await stream_totals(redis_prefix, partitions=PARTITIONS) == (0, 0)
            )

        await wait_until(all_done, timeout_s=WAIT_S)
        for proc in procs:
            code, out = await stop_process_async(proc)
            assert code == 0, out

        rows = await conn.fetch("SELECT v, count(*) AS n FROM ledger GROUP BY v")
        assert {r["v"]: r["n"] for r in rows} == dict.fromkeys([*HELD, *free, *later], 1)
        # the held partition kept its order
        order = await conn.fetch(
            "SELECT v FROM ledger WHERE v = ANY($1::text[]) ORDER BY id",
            [*HELD, *later[:3]],
        )
        assert [r["v"] for r in order] == [*HELD, *later[:3]]
        assert await redis.xlen(layout.dead_letter_key) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                await stop_process_async(proc, signal.SIGKILL)
        await gate.close()
        await conn.close()
        await redis.aclose()


async def test_drainer_sessions_carry_the_configured_timeouts(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await create_a_table(pg_dsn)
    path = write_config(tmp_path / "t.toml", pg_dsn, prefix=redis_prefix)
    env = {
        "DRAINER__MASTER_DATABASE__STATEMENT_TIMEOUT_MS": "45000",
        "DRAINER__MASTER_DATABASE__LOCK_TIMEOUT_MS": "1500",
        "DRAINER__MASTER_DATABASE__IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS": "20000",
    }
    configured = load_settings(path, env=env)
    expected = {
        "statement_timeout": "45s",
        "lock_timeout": "1500ms",
        "idle_in_transaction_session_timeout": "20s",
        "plan_cache_mode": "force_custom_plan",
    }
    defaults = {
        "statement_timeout": "30s",
        "lock_timeout": "10s",
        "idle_in_transaction_session_timeout": "30s",
        # plans made for the table as it is, not once while it was small (docs/performance.md)
        "plan_cache_mode": "force_custom_plan",
    }
    for settings, wanted in ((configured, expected), (settings_from(path), defaults)):
        tenant = settings.tenants()[0]
        store = await Store.create(settings, tenant)
        try:
            # a batch's session, as the executor opens it
            async with store.executor.sessions() as session, session.begin():
                shown = {name: await session.scalar(text(f"SHOW {name}")) for name in wanted}
                mine = await session.scalar(text("SELECT pg_backend_pid()"))
            assert shown == wanted
            # and as PostgreSQL reports the drainer's session to an operator
            seen = await asyncpg.connect(pg_dsn)
            try:
                name = await seen.fetchval(
                    "SELECT application_name FROM pg_stat_activity WHERE pid = $1", mine
                )
            finally:
                await seen.close()
            assert name == "drainer"
        finally:
            await store.close()
            await store.redis.aclose()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lock_timeout_ms", "0", "greater than or equal to 1"),
        ("statement_timeout_ms", "500", "greater than or equal to 1000"),
        ("idle_in_transaction_session_timeout_ms", "0", "greater than or equal to 1000"),
        ("statement_timeout_ms", "2147483648", "less than or equal to 2147483647"),
        ("lock_timeout_ms", "soon", "valid integer"),
    ],
)
def test_session_timeouts_are_validated(key: str, value: str, message: str) -> None:
    env = {f"DRAINER__MASTER_DATABASE__{key.upper()}": value}
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env)
    assert f"master_database.{key}: " in str(caught.value)
    assert message in str(caught.value)
