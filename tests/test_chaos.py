"""Exactly once under chaos: three replicas, a live producer, and one fault after another.

While a producer keeps appending inserts, ordered updates and deletes, three
``drainer run`` replicas drain them, through TCP proxies, from a Redis server
into a PostgreSQL cluster that this test starts for itself (the shared servers
serve other tests and must not be restarted). In turn:

- a replica is SIGKILLed while it holds entries, and a new one started;
- a replica is SIGSTOPped while it holds entries until the others have claimed
  them all (past ``claim_min_idle_ms``), then woken with SIGCONT;
- every connection to PostgreSQL, then to Redis, is dropped and refused for a while;
- Redis is SIGKILLed while the replicas work off a burst, and restarted from its
  append-only file (fsync on every write);
- PostgreSQL (``fsync=on``) is restarted with ``pg_ctl restart -m fast``, then with
  ``-m immediate`` (a crash: sessions cut wherever they are, then WAL recovery).

After each fault the drain must commit changes appended after it. The check is
independent of the drainer: a trigger records every committed change of the
table, and per key that record must equal what the producer was told it
appended, in the same order, each change once; every stream and pending list
must end empty, and nothing be dead-lettered. ``DRAINER_CHAOS_ROUNDS=N`` repeats
the faults N times for a longer soak.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.streams import StreamLayout
from tests.support.chaos import (
    SCHEMA,
    AofRedis,
    ChaosRun,
    Faults,
    Feeder,
    ThrowawayPostgres,
    Workload,
    compare,
    stop_replica,
)
from tests.support.drainer import write_config
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.integration

PREFIX = "chaos"
PARTITIONS = 8
REPLICAS = 3
CLAIM_MIN_IDLE_MS = 1500
#: Operations per append and pause between appends: about 100 a second, well below
#: what three replicas drain, so each fault's backlog is worked off within seconds.
FEED_CHUNK = 20
FEED_INTERVAL_S = 0.2
#: Operations appended at once just before Redis is killed, so it dies with a backlog.
REDIS_CRASH_BURST = 200
#: How long a dropped connection stays refused.
OUTAGE_S = 2.0
#: Bound of every wait for the drain to catch up or a fault to take effect.
WAIT_S = 60.0
#: Attempts at landing a SIGKILL or SIGSTOP while the replica holds entries.
LANDING_ATTEMPTS = 5
#: The replicas run with the default session timeouts: a replica frozen inside a batch
#: transaction keeps it (and its partition's watermark lock) until it wakes, then
#: commits entries the others have claimed meanwhile; the fence must absorb that.
REPLICA_ENV: dict[str, str] = {}
#: Rounds of faults: one in ``make test``; more for a longer soak (DRAINER_CHAOS_ROUNDS=5).
ROUNDS = int(os.environ.get("DRAINER_CHAOS_ROUNDS", "1"))


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[AofRedis]:
    server = AofRedis(tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
async def faults(own_postgres: ThrowawayPostgres, own_redis: AofRedis) -> AsyncIterator[Faults]:
    pg_proxy = TcpProxy("127.0.0.1", own_postgres.port)
    redis_proxy = TcpProxy("127.0.0.1", own_redis.port)
    await pg_proxy.start()
    await redis_proxy.start()
    try:
        yield Faults(
            own_postgres,
            own_redis,
            pg_proxy,
            redis_proxy,
            claim_min_idle_ms=CLAIM_MIN_IDLE_MS,
            outage_s=OUTAGE_S,
            wait_s=WAIT_S,
            landing_attempts=LANDING_ATTEMPTS,
        )
    finally:
        await pg_proxy.close()
        await redis_proxy.close()


async def test_exactly_once_through_kills_freezes_outages_and_restarts(
    tmp_path: Path, faults: Faults
) -> None:
    conn = await asyncpg.connect(faults.postgres.dsn)
    await conn.execute(SCHEMA)
    await conn.close()
    config = write_config(
        tmp_path / "chaos.toml",
        f"postgresql://postgres@127.0.0.1:{faults.pg_proxy.port}/postgres",
        prefix=PREFIX,
        redis={"url": f"redis://127.0.0.1:{faults.redis_proxy.port}/0"},
        drainer={
            "num_partitions": PARTITIONS,
            "max_read_count": 8,
            "max_concurrent_partitions": 4,
            "claim_min_idle_ms": CLAIM_MIN_IDLE_MS,
            "retry_backoff_base_ms": 20,
            "retry_backoff_max_ms": 500,
        },
    )
    layout = StreamLayout("DRAINER_STREAM", PARTITIONS, PREFIX)
    redis = aioredis.Redis.from_url(faults.redis_server.url, decode_responses=True)
    workload = Workload()
    feeder = Feeder(redis, layout, workload, chunk=FEED_CHUNK)
    run = ChaosRun(faults, config, tmp_path, layout, redis, feeder, REPLICA_ENV)
    feeder.start(FEED_INTERVAL_S)
    try:
        for _ in range(REPLICAS):
            run.spawn()
        await run.caught_up("start-up")
        for _ in range(ROUNDS):
            await run.sigkill()
            await run.sigstop()
            await run.cut(faults.pg_proxy, "PostgreSQL")
            await run.cut(faults.redis_proxy, "Redis")
            await run.restart_redis(REDIS_CRASH_BURST)
            await run.restart_postgres("fast")
            await run.restart_postgres("immediate")
        await run.drain_and_stop()

        problems = await compare(faults.postgres.dsn, workload)
        assert problems == [], f"{len(problems)} keys differ, first: {problems[:5]}"
        dead = await redis.xrange(layout.dead_letter_key, count=5)
        assert dead == [], f"dead-lettered: {dead}"
        outputs = run.outputs()
        # the faults reached the replicas: they claimed idle entries, waited out outages
        assert any("took over" in out for out in outputs)
        assert any("db unavailable" in out for out in outputs)
        assert any("redis unavailable" in out for out in outputs)
        print("\n".join(run.timeline))
    except BaseException:
        print(run.report())
        raise
    finally:
        await feeder.close()
        for replica in run.replicas:
            if replica.proc.poll() is None:
                await stop_replica(replica, signal.SIGKILL)
        await redis.aclose()
