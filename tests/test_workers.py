"""``drainer run --workers N``: N consumer processes, one operator API, one stop.

Real processes against real servers: a burst with two workers drains a backlog once,
both workers working; the parent's API shows both (metrics merged, each series
labelled ``worker``); a killed worker is restarted under its consumer name; SIGTERM
stops every worker and the parent exits 0; a port in use fails before any worker
starts. Then the supervision itself (start-up failure, crash loop, stop deadline,
burst exit codes) with stand-in worker commands, and the merging of metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from drainer import workers as workers_module
from drainer.cli import cli
from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from drainer.settings import SettingsError, load_settings
from drainer.worker_api import merge_metrics, parse_reply, with_label
from drainer.workers import (
    Worker,
    WorkerPool,
    WorkerStartupFailed,
    WorkerState,
    worker_consumer_name,
)
from tests.support.api import busy_port, free_port
from tests.support.drainer import (
    REDIS_URL,
    create_a_table,
    env_without_settings,
    spawn_drainer,
    stop_process_async,
    stream_totals,
    wait_until,
    write_config,
)

PARTITIONS = 8  # tests.support.drainer.FAST_DRAINER
ENTRIES = 2000
ROWS = 40


async def _wait_for_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, str]:
    out, _ = await asyncio.to_thread(proc.communicate, timeout=timeout_s)
    return proc.returncode, out.decode(errors="replace")


async def _consumers_holding_entries(redis: aioredis.Redis, prefix: str) -> set[str]:
    names: set[str] = set()
    for key in StreamLayout("DRAINER_STREAM", PARTITIONS, prefix).all_streams():
        with contextlib.suppress(aioredis.ResponseError):  # no group yet
            for consumer in await redis.xinfo_consumers(key, "drainer"):
                if consumer["pending"] > 0:
                    names.add(consumer["name"])
    return names


async def test_a_burst_with_two_workers_drains_a_backlog_exactly_once(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL)")
    config = write_config(
        tmp_path / "w.toml",
        pg_dsn,
        prefix=redis_prefix,
        # each worker works at most half the partitions at once: the other half is free
        # for the second worker even while the first holds batches
        drainer={"max_concurrent_partitions": PARTITIONS // 2, "max_read_count": 100},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    await producer.append_many(
        (insert_op("ledger", {"id": f"l{i}", "amount": i}), f"acct{i % 200}")
        for i in range(ENTRIES)
    )
    # Inserts wait on this lock until both workers hold entries: the first worker up
    # could otherwise drain the whole backlog before the second has started.
    blocker = conn.transaction()
    await blocker.start()
    await conn.execute("LOCK TABLE ledger IN SHARE MODE")
    blocking = True
    proc = spawn_drainer(config, "--workers", "2", "--burst", consumer="burst")
    try:
        holding: set[str] = set()

        async def both_hold_entries() -> bool:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            holding.update(await _consumers_holding_entries(redis, redis_prefix))
            return len(holding) >= 2

        await wait_until(both_hold_entries, timeout_s=60, interval_s=0.05)
        await blocker.rollback()
        blocking = False
        code, out = await _wait_for_exit(proc, timeout_s=90)
        assert code == 0, out
        # two distinct consumers did work, and no other (the parent drains nothing)
        assert holding == {"burst-w1", "burst-w2"}
        assert await conn.fetchval("SELECT count(*) FROM ledger") == ENTRIES
        assert await conn.fetchval("SELECT sum(amount) FROM ledger") == sum(range(ENTRIES))
        assert await stream_totals(redis_prefix) == (0, 0)  # nothing left, nothing pending
        assert out.count("shutdown requested (burst complete)") == 2
        assert "all 2 workers stopped" in out
    finally:
        if blocking:
            await blocker.rollback()
        if proc.poll() is None:
            await stop_process_async(proc)
        await redis.aclose()
        await conn.close()


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that are still processes (reaped ones are gone from /proc)."""
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


async def test_two_workers_behind_one_api_a_killed_one_restarts_and_sigterm_stops_all(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE event (id text PRIMARY KEY, n int NOT NULL)")
    port = free_port()
    config = write_config(
        tmp_path / "api.toml",
        pg_dsn,
        prefix=redis_prefix,
        server={"enabled": True, "host": "127.0.0.1", "port": port},
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix))
    proc = spawn_drainer(config, "--workers", "2", consumer="pair")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15)
    liveness_seen: list[int] = []

    async def get(path: str) -> httpx.Response | None:
        try:
            return await client.get(path)
        except httpx.TransportError:
            return None  # not listening yet

    async def ready() -> bool:
        assert proc.poll() is None, "the parent exited"
        response = await get("/health/ready")
        return response is not None and response.status_code == 200

    try:
        await wait_until(ready, timeout_s=60)
        live = await client.get("/health")
        assert live.status_code == 200, live.text
        workers = live.json()["workers"]
        assert [w["consumer"] for w in workers] == ["pair-w1", "pair-w2"]
        assert [w["state"] for w in workers] == ["running", "running"]
        assert all(w["health"]["status"] == "ok" for w in workers)
        ready_body = (await client.get("/health/ready")).json()
        assert [w["readiness"]["ready"] for w in ready_body["workers"]] == [True, True]

        for i in range(ROWS):
            await producer.insert("event", {"id": f"e{i}", "n": i}, partition_key=f"k{i}")

        async def applied() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM event") == ROWS)

        await wait_until(applied, timeout_s=30)

        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        declared = [
            line.split()[2] for line in metrics.text.splitlines() if line.startswith("# TYPE")
        ]
        assert len(declared) == len(set(declared))  # one # TYPE per family: merged
        samples = _samples(metrics.text)
        assert all("worker" in labels for _, labels, _ in samples)
        health_workers = {
            labels["worker"] for name, labels, _ in samples if name == "drainer_health"
        }
        assert health_workers == {"w1", "w2"}
        up = {labels["worker"]: v for name, labels, v in samples if name == "drainer_worker_up"}
        assert up == {"w1": 1.0, "w2": 1.0}
        committed = sum(v for name, _, v in samples if name == "drainer_successful_queries_total")
        assert committed == ROWS  # every row once, whichever worker applied it

        pending = await client.get("/pending")
        assert pending.status_code == 200 and pending.json()["total"] == 0
        # the parent serves replay itself, from its own stores (loopback: no token needed)
        stream = StreamLayout("DRAINER_STREAM", PARTITIONS, redis_prefix).stream_key(0)
        replay = await client.post(f"/replay/{quote(stream, safe='')}/1-0")
        assert replay.status_code == 404, replay.text  # not pending: nothing to replay
        replays = [
            (labels["worker"], labels["outcome"])
            for name, labels, _ in _samples((await client.get("/metrics")).text)
            if name == "drainer_replays_total"
        ]
        assert replays == [("api", "refused")]

        victim = workers[0]
        os.kill(victim["pid"], signal.SIGKILL)

        async def restarted() -> bool:
            response = await client.get("/health")
            liveness_seen.append(response.status_code)
            first = response.json()["workers"][0]
            return (
                first["state"] == "running"
                and first["restarts"] == 1
                and first["pid"] != victim["pid"]
                and first["consumer"] == "pair-w1"
            )

        await wait_until(restarted, timeout_s=45, interval_s=0.2)
        # one death and a restart is not a crash loop: the parent stayed alive throughout
        assert set(liveness_seen) == {200}
        await wait_until(ready, timeout_s=30)
        pids = [w["pid"] for w in (await client.get("/health")).json()["workers"]]

        code, out = await stop_process_async(proc)
        assert code == 0, out
        assert "worker w1 (pid" in out and "was killed by SIGKILL" in out
        assert out.count("shutdown requested (SIGTERM)") == 2
        assert "all 2 workers stopped" in out
        assert _alive([*pids, victim["pid"]]) == []
    finally:
        await client.aclose()
        if proc.poll() is None:
            await stop_process_async(proc)
        await redis.aclose()
        await conn.close()


async def test_workers_stop_gracefully_when_their_parent_is_killed(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    await create_a_table(pg_dsn)
    port = free_port()
    config = write_config(
        tmp_path / "w.toml",
        pg_dsn,
        prefix=redis_prefix,
        server={"enabled": True, "host": "127.0.0.1", "port": port},
    )
    proc = spawn_drainer(config, "--workers", "2", consumer="orphan")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:

            async def both_ready() -> bool:
                assert proc.poll() is None, "the parent exited"
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(both_ready, timeout_s=60)
        proc.kill()
        # the output pipe ends only when every process holding it (the workers) is gone
        _, out = await _wait_for_exit(proc, timeout_s=30)
        assert out.count("the parent process is gone: stopping") == 2, out
        assert out.count("shutdown requested (SIGTERM)") == 2  # the graceful path
        assert out.count("consumer loop stopped") == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            await _wait_for_exit(proc, timeout_s=30)


def test_a_port_in_use_fails_at_once_and_starts_no_worker(
    tmp_path: Path, redis_prefix: str
) -> None:
    db_port = free_port()  # unreachable: the port must fail before any store attempt
    with busy_port() as api_port:
        config = write_config(
            tmp_path / "c.toml",
            f"postgresql://postgres@127.0.0.1:{db_port}/postgres",
            prefix=redis_prefix,
            server={"enabled": True, "host": "127.0.0.1", "port": api_port},
        )
        env = env_without_settings()
        done = subprocess.run(
            [sys.executable, "-m", "drainer", "run", "--config", str(config), "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("drainer: ")]
    assert lines == [f"drainer: cannot start: port {api_port} on 127.0.0.1 is in use"]
    assert "worker w1" not in done.stderr and "cannot start yet" not in done.stderr
    assert "Traceback" not in done.stderr


# ---- supervision, with stand-in worker commands (processes, no servers)


@pytest.fixture
def lifeline() -> Iterator[int]:
    """The read end of a pipe a stand-in worker inherits, as a real one does."""
    read_end, write_end = os.pipe()
    yield read_end
    os.close(read_end)
    os.close(write_end)


def _worker(tmp_path: Path, lifeline: int, code: str) -> Worker:
    return Worker(
        1,
        consumer="c-w1",
        command=[sys.executable, "-c", code],
        listener=None,
        lifeline_fd=lifeline,
        error_file=tmp_path / "w1.error",
        stop_timeout_s=5,
        burst=False,
    )


@pytest.mark.integration
async def test_a_worker_that_cannot_start_fails_with_its_own_reason(
    tmp_path: Path, lifeline: int
) -> None:
    code = (
        "import json, os; spec = json.loads(os.environ['DRAINER_WORKER']); "
        "open(spec['error_file'], 'w').write('tenant t1: no such schema'); raise SystemExit(2)"
    )
    worker = _worker(tmp_path, lifeline, code)
    with pytest.raises(WorkerStartupFailed, match=r"^worker w1: tenant t1: no such schema$"):
        await worker.run(asyncio.Event())
    assert worker.state is WorkerState.FAILED and worker.restarts == 0


@pytest.mark.integration
async def test_a_worker_dying_over_and_over_backs_off_and_fails_liveness(
    tmp_path: Path, lifeline: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers_module, "WORKER_RESTART_BASE_S", 0.05)
    monkeypatch.setattr(workers_module, "WORKER_RESTART_MAX_S", 0.2)
    worker = _worker(tmp_path, lifeline, "raise SystemExit(1)")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def crash_looping() -> bool:
            assert not task.done()
            return (
                worker.failures >= workers_module.WORKER_CRASH_LOOP_FAILURES
                and worker.state is WorkerState.RESTARTING
            )

        await wait_until(crash_looping, timeout_s=30, interval_s=0.01)
        live, detail = worker.liveness()
        assert not live and detail is not None and detail.startswith("crash loop")
    finally:
        stop.set()
        await task
    assert worker.state is WorkerState.EXITED and worker.exit_code == 0


@pytest.mark.integration
async def test_a_worker_ignoring_the_stop_is_killed_at_the_deadline(
    tmp_path: Path, lifeline: int
) -> None:
    ready = tmp_path / "ignoring"
    code = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    worker = _worker(tmp_path, lifeline, code)
    worker.stop_timeout_s = 0.5
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def ignoring() -> bool:
        return ready.exists()

    await wait_until(ignoring, timeout_s=10, interval_s=0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert worker.killed and worker.state is WorkerState.FAILED


@pytest.mark.integration
async def test_a_burst_pool_exits_non_zero_when_a_worker_failed(tmp_path: Path) -> None:
    settings = load_settings(env={})
    pool = WorkerPool(settings, count=2, burst=True, config=None, api=False)
    try:
        pool.workers[0].command = [sys.executable, "-c", "pass"]
        pool.workers[1].command = [sys.executable, "-c", "raise SystemExit(3)"]
        assert await asyncio.wait_for(pool.run(), 30) == 1
        assert [w.state for w in pool.workers] == [WorkerState.EXITED, WorkerState.FAILED]
        assert pool.workers[1].restarts == 0  # a burst worker is not restarted
    finally:
        pool.close()
    again = WorkerPool(settings, count=2, burst=True, config=None, api=False)
    try:
        for worker in again.workers:
            worker.command = [sys.executable, "-c", "pass"]
        assert await asyncio.wait_for(again.run(), 30) == 0
    finally:
        again.close()


# ---- names, settings, the CLI flag, metrics merging (unit)


def test_worker_consumer_names() -> None:
    assert worker_consumer_name("pod-7", 1, 1) == "pod-7"
    assert [worker_consumer_name("pod-7", i, 3) for i in (1, 2, 3)] == [
        "pod-7-w1",
        "pod-7-w2",
        "pod-7-w3",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "drainer.workers: must be greater than or equal to 1 (got 0)"),
        ("65", "drainer.workers: must be less than or equal to 64 (got 65)"),
    ],
)
def test_the_workers_setting_is_bounded(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(f"[drainer]\nworkers = {value}\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert message in str(caught.value)
    assert load_settings(env={"DRAINER__DRAINER__WORKERS": "4"}).drainer.workers == 4
    assert load_settings(env={}).drainer.workers == 1


def test_the_workers_flag_is_bounded() -> None:
    result = CliRunner().invoke(cli, ["run", "--workers", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output
    assert "greater than or equal to 1" in result.output


def test_with_label_puts_the_worker_first() -> None:
    assert with_label('a_total{t="x"} 1.0', "worker", "w1") == 'a_total{worker="w1",t="x"} 1.0'
    assert with_label("a 2.0", "worker", "w2") == 'a{worker="w2"} 2.0'
    assert with_label("a{} 2.0", "worker", "w2") == 'a{worker="w2"} 2.0'
    assert with_label('a{t="} {"} 3', "worker", "w1") == 'a{worker="w1",t="} {"} 3'


WORKER_TEXT = """\
# HELP drainer_batches_total Batch transactions.
# TYPE drainer_batches_total counter
drainer_batches_total{result="ok",tenant="t1"} {n}.0
# HELP drainer_batch_duration_seconds Time per batch.
# TYPE drainer_batch_duration_seconds histogram
drainer_batch_duration_seconds_bucket{le="0.1",tenant="t1"} {n}.0
drainer_batch_duration_seconds_bucket{le="+Inf",tenant="t1"} {n}.0
drainer_batch_duration_seconds_count{tenant="t1"} {n}.0
drainer_batch_duration_seconds_sum{tenant="t1"} 0.5
# HELP drainer_pending_entries Backlog.
# TYPE drainer_pending_entries gauge
drainer_pending_entries 7.0
"""


def test_merged_metrics_declare_each_family_once_and_label_every_series() -> None:
    texts = [(w, WORKER_TEXT.replace("{n}", n)) for w, n in (("w1", "3"), ("w2", "4"))]
    only_w1 = "# HELP x_total X.\n# TYPE x_total counter\nx_total 1.0\n"
    merged = merge_metrics([*texts, ("w3", only_w1)])
    assert merged.count("# TYPE drainer_batches_total counter") == 1
    assert merged.count("# HELP drainer_batches_total") == 1
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    assert set(families) == {
        "drainer_batches",
        "drainer_batch_duration_seconds",
        "drainer_pending_entries",
        "x",
    }
    batches = {s.labels["worker"]: s.value for s in families["drainer_batches"].samples}
    assert batches == {"w1": 3.0, "w2": 4.0}
    pending = [(s.labels, s.value) for s in families["drainer_pending_entries"].samples]
    assert pending == [({"worker": "w1"}, 7.0), ({"worker": "w2"}, 7.0)]
    counts = [
        s.labels["worker"]
        for s in families["drainer_batch_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert counts == ["w1", "w2"]
    kept = merge_metrics(texts, only=lambda worker, family: family == "drainer_pending_entries")
    assert [f.name for f in text_string_to_metric_families(kept)] == ["drainer_pending_entries"]
    assert merge_metrics([]) == ""


def test_a_worker_reply_is_read_with_a_length_or_chunked() -> None:
    plain = parse_reply(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}")
    assert (plain.status, plain.json()) == (503, {})
    chunked = parse_reply(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert (chunked.status, chunked.body) == (200, b"abcde")
