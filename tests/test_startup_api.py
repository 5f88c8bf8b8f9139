"""The API answers while start-up still waits for the database: liveness says
"starting", readiness and every other endpoint 503 with the reason; a port in use
fails start-up at once with one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from drainer.api.startup import StartupDispatcher
from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from drainer.lifecycle import StartupStatus, open_stores
from drainer.main import start_drainer
from tests.support.api import busy_port, free_port
from tests.support.drainer import (
    REDIS_URL,
    create_a_table,
    env_without_settings,
    settings_from,
    spawn_drainer,
    stop_process,
    stop_process_async,
    stream_totals,
    wait_until,
    write_config,
)
from tests.support.proxy import TcpProxy

ROWS = 20


def _get(port: int, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    except httpx.TransportError:
        return None


def _wait_for_answer(proc: subprocess.Popen[bytes], port: int, path: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the drainer exited during start-up"
        response = _get(port, path)
        if response is not None:
            return response
        time.sleep(0.1)
    raise AssertionError(f"nothing answered {path} on port {port}")


def _server(port: int) -> dict[str, Any]:
    return {"enabled": True, "host": "127.0.0.1", "port": port}


async def test_the_starting_app_answers_alone_until_the_real_app_takes_over() -> None:
    status = StartupStatus()
    # an error message may quote bytes that were not UTF-8 (a lone surrogate here)
    status.waiting_for = "tenant t1: database db:5432/app as \udcff"
    dispatcher = StartupDispatcher(status)
    transport = httpx.ASGITransport(app=dispatcher)
    async with httpx.AsyncClient(transport=transport, base_url="http://drainer") as client:
        live = await client.get("/health")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/json"
        assert live.json() == {
            "status": "starting",
            "detail": "starting: waiting for tenant t1: database db:5432/app as \\xff",
        }
        ready = await client.get("/health/ready/")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["status"] == "starting"
        other = await client.get("/dead-letters")
        assert other.status_code == 503
        assert other.json() == {"detail": live.json()["detail"]}

        async def real_app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        dispatcher.app = real_app
        assert (await client.get("/health")).status_code == 204


def test_probes_answer_starting_while_the_database_is_unreachable(
    tmp_path: Path, redis_prefix: str
) -> None:
    db_port, api_port = free_port(), free_port()
    config = write_config(
        tmp_path / "c.toml",
        f"postgresql://postgres@127.0.0.1:{db_port}/postgres",
        prefix=redis_prefix,
        server=_server(api_port),
    )
    proc = spawn_drainer(config)
    try:
        waited_for = f"database 127.0.0.1:{db_port}/postgres as postgres"
        deadline = time.monotonic() + 60
        while True:  # until the first retry is reported
            live = _wait_for_answer(proc, api_port, "/health")
            assert live.status_code == 200, live.text
            assert live.json()["status"] == "starting"
            if waited_for in live.json()["detail"]:
                break
            assert time.monotonic() < deadline, live.text
            time.sleep(0.1)
        assert live.json()["detail"].startswith("starting: waiting for tenant t1: ")
        ready = _wait_for_answer(proc, api_port, "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert waited_for in ready.json()["detail"]
        other = _wait_for_answer(proc, api_port, "/pending")
        assert other.status_code == 503
        assert other.json()["detail"].startswith("starting: waiting for tenant t1: ")
    finally:
        code, out = stop_process(proc, signal.SIGTERM)
    assert code == 0, out
    assert f"cannot start yet: {waited_for}" in out
    assert "stopped before start-up finished" in out


def test_a_port_in_use_fails_start_up_at_once_with_one_line(
    tmp_path: Path, redis_prefix: str
) -> None:
    db_port = free_port()  # unreachable: start-up must fail before any store attempt
    with busy_port() as api_port:
        config = write_config(
            tmp_path / "c.toml",
            f"postgresql://postgres@127.0.0.1:{db_port}/postgres",
            prefix=redis_prefix,
            server=_server(api_port),
        )
        env = env_without_settings()
        done = subprocess.run(
            [sys.executable, "-m", "drainer", "run", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("drainer: ")]
    assert lines == [f"drainer: cannot start: port {api_port} on 127.0.0.1 is in use"]
    assert "cannot start yet" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert "never retrieved" not in done.stderr


async def test_start_drainer_on_a_port_in_use_fails_before_draining(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    """The library path binds first too: a ValueError naming the port, nothing drained."""
    await create_a_table(pg_dsn)
    with busy_port() as api_port:
        settings = settings_from(
            write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix, server=_server(api_port))
        )
        stores = await open_stores(settings)
        store = next(iter(stores.values()))
        try:
            await store.producer.insert("item", {"id": "one"}, partition_key="k")
            with pytest.raises(ValueError, match=f"port {api_port} on 127.0.0.1 is in use"):
                await start_drainer(stores, settings, burst=True)
            assert await stream_totals(redis_prefix) == (1, 0)  # still in its stream, unread
        finally:
            for open_store in stores.values():
                await open_store.close()
            await store.redis.aclose()


async def test_a_database_back_during_start_up_makes_it_ready_and_drain(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    target = urlsplit(pg_dsn)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied = pg_dsn.replace(target.netloc, f"{target.username}@127.0.0.1:{proxy.port}")
    await proxy.cut()
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE event (id text PRIMARY KEY, n int NOT NULL)")
    api_port = free_port()
    config = write_config(
        tmp_path / "c.toml", proxied, prefix=redis_prefix, server=_server(api_port)
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    proc = spawn_drainer(config)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    try:

        async def answer(path: str) -> httpx.Response | None:
            assert proc.poll() is None, "the drainer exited"
            try:
                return await client.get(path)
            except httpx.TransportError:
                return None

        async def waiting_for_the_database() -> bool:
            live = await answer("/health")
            return live is not None and f"127.0.0.1:{proxy.port}/" in live.json()["detail"]

        await wait_until(waiting_for_the_database, timeout_s=60)
        for i in range(ROWS):
            await producer.insert("event", {"id": f"e{i}", "n": i}, partition_key=f"k{i}")
        await proxy.restore()

        async def ready() -> bool:
            response = await answer("/health/ready")
            return response is not None and response.status_code == 200

        await wait_until(ready, timeout_s=60)
        live = await client.get("/health")
        assert live.status_code == 200 and live.json()["status"] == "ok"

        async def applied() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM event") == ROWS)

        await wait_until(applied, timeout_s=30)
        code, out = await stop_process_async(proc)
        assert code == 0, out
        assert "cannot start yet" in out
    finally:
        await client.aclose()
        if proc.poll() is None:
            await stop_process_async(proc)
        await proxy.close()
        await redis.aclose()
        await conn.close()
