"""Build settings for a test and run drainers in-process or as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.streams import StreamLayout, partition_of
from drainer.settings import Settings, load_settings

if TYPE_CHECKING:
    from drainer.consumers.options import ConsumerOptions
    from drainer.consumers.partition import PartitionWorker
    from drainer.consumers.waker import Waker
    from drainer.store import Store

REDIS_URL = os.environ.get("DRAINER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST_DRAINER = {
    "num_partitions": 8,
    "loop_interval": 20,
    "idle_poll_max_ms": 100,
    "claim_min_idle_ms": 1500,
    "retry_backoff_base_ms": 20,
    "retry_backoff_max_ms": 200,
    "shutdown_timeout_s": 10,
    "shutdown_interval": 200,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_table(name: str, body: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    nested = []
    for key, value in body.items():
        if isinstance(value, Mapping):
            nested.append((f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    for sub, table in nested:
        lines.extend(_toml_table(sub, table))
    return lines


def write_config(
    path: Path,
    dsn: str,
    *,
    prefix: str,
    schema: str = "public",
    tenants: Mapping[str, Mapping[str, str]] | None = None,
    drainer: Mapping[str, Any] | None = None,
    tables: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    redis: Mapping[str, Any] | None = None,
) -> Path:
    """Write a settings file: one tenant (``prefix``, ``schema``) unless ``tenants`` given."""
    doc: dict[str, Mapping[str, Any]] = {
        "drainer": {**FAST_DRAINER, **(drainer or {})},
        "master_database": {"url": dsn, "pool_size": 5},
        "redis": redis or {"url": REDIS_URL},
        "server": {"enabled": False, **(server or {})},
        "multitenancy": {
            "enabled": True,
            "tenants": tenants or {"t1": {"schema": schema, "redis_key_prefix": prefix}},
        },
    }
    if tables:
        doc["tables"] = tables
    lines: list[str] = []
    for name, body in doc.items():
        lines.extend(_toml_table(name, body))
    path.write_text("\n".join(lines))
    return path


def env_without_settings(*names: str) -> dict[str, str]:
    """This process's environment without settings from outside the test: no
    ``DRAINER__`` variable (in any case, as the settings read them) and none of ``names``."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("DRAINER__") and k not in names
    }


def settings_from(path: Path) -> Settings:
    return load_settings(path, env={})


def spawn_drainer(config: Path, *args: str, consumer: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``drainer run`` as a real process."""
    env = dict(os.environ)
    env.pop("DRAINER__DRAINER__CONSUMER_NAME", None)
    if consumer:
        env["DRAINER__DRAINER__CONSUMER_NAME"] = consumer
    return subprocess.Popen(
        [sys.executable, "-m", "drainer", "run", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 30
) -> tuple[int, str]:
    """Signal a drainer process and wait; returns (exit code, its output)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out.decode(errors="replace")


async def stop_process_async(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 30
) -> tuple[int, str]:
    """:func:`stop_process` without blocking the test's event loop (which may run a proxy)."""
    return await asyncio.to_thread(stop_process, proc, sig, timeout_s)


async def stream_totals(
    prefix: str, *, group: str = "drainer", client: Any = None, partitions: int = 0
) -> tuple[int, int]:
    """(entries in all of a prefix's partition streams, entries pending in their groups).

    With ``partitions`` the keys are computed (needed on Redis Cluster), else scanned.
    """
    own = client is None
    client = client or aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        if partitions:
            keys = StreamLayout("DRAINER_STREAM", partitions, prefix).all_streams()
        else:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:{{shard_*", count=1000)]
        length = pending = 0
        for key in keys:
            length += await client.xlen(key)
            with contextlib.suppress(aioredis.ResponseError):
                pending += (await client.xpending(key, group))["pending"]
        return length, pending
    finally:
        if own:
            await client.aclose()


async def wait_until(predicate: Any, *, timeout_s: float = 60, interval_s: float = 0.1) -> None:
    """Poll an async predicate until it is true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s: {predicate}")
        await asyncio.sleep(interval_s)


async def create_a_table(dsn: str, *schemas: str) -> None:
    """One mappable table in each schema (default ``public``): a tenant whose schema has
    none is refused at start, and these tests need a drainer, not particular rows."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas or ("public",):
            await conn.execute(f'CREATE TABLE "{schema}".item (id text PRIMARY KEY, n int)')
    finally:
        await conn.close()


def partition_worker(
    store: Store,
    options: ConsumerOptions,
    partition_key: str,
    *,
    stop: asyncio.Event | None = None,
    waker: Waker | None = None,
) -> PartitionWorker:
    """A worker of ``store``'s pipeline for the partition of ``partition_key``, alone."""
    # imported here: subprocess tests use this module without the service's stack
    from drainer.consumers.partition import PartitionWorker

    layout = store.pipeline.layout
    return PartitionWorker(
        store.pipeline,
        partition_of(partition_key, layout.num_partitions),
        store.redis,
        options,
        PartitionLimiter(1, adaptive=False),
        stop or asyncio.Event(),
        waker=waker,
    )
