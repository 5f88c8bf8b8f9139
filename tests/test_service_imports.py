"""The service runs without the developer tools: ``drainer run`` never imports
``drainer.devtools`` (the container image leaves it out), and ``bench``/``demo`` say so
in one line when it is missing. And what start-up imports: with ``[server] enabled =
false`` neither FastAPI nor uvicorn; with it, FastAPI only once the partition workers
read (``drainer.main.install_app``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from tests.support.drainer import REDIS_URL, create_a_table, env_without_settings, write_config

DEVTOOLS = "drainer.devtools"
#: What the drainer logs just before its partition workers read (consumers.supervisor).
DRAINING_MARKER = "draining "
ENTRIES = 3
RUN_TIMEOUT_S = 60
#: ``-X importtime`` writes one stderr line per module: ``import time: self | cumulative | name``.
IMPORTTIME_PREFIX = "import time:"


def _drainer_with_importtime(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "drainer", *args],
        env=env_without_settings(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def _imported(stderr: str) -> set[str]:
    """The modules an ``-X importtime`` log shows imported."""
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in stderr.splitlines()
        if line.startswith(IMPORTTIME_PREFIX)
    }


def _package(modules: set[str], package: str) -> set[str]:
    """The modules of ``package`` (itself included) among ``modules``."""
    return {name for name in modules if name == package or name.startswith(f"{package}.")}


def _devtools(modules: set[str]) -> set[str]:
    return _package(modules, DEVTOOLS)


async def _drain_with_importtime(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, *, server: dict[str, object] | None = None
) -> subprocess.CompletedProcess[str]:
    """``drainer run --burst`` with ``-X importtime`` over a few entries, checked drained."""
    await create_a_table(pg_dsn)
    config = write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix, server=server)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        producer = Producer(client, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
        await producer.append_many(
            (insert_op("item", {"id": f"i{i}", "n": i}), f"key{i}") for i in range(ENTRIES)
        )
    finally:
        await client.aclose()

    done = await asyncio.to_thread(
        _drainer_with_importtime, "run", "--burst", "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM item") == ENTRIES
    finally:
        await conn.close()
    assert "drainer.lifecycle" in _imported(done.stderr)  # the log was parsed: the service
    return done


async def test_run_drains_without_importing_the_developer_tools(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    done = await _drain_with_importtime(tmp_path, pg_dsn, redis_prefix)
    assert _devtools(_imported(done.stderr)) == set()


async def test_run_without_the_api_imports_neither_fastapi_nor_uvicorn(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    done = await _drain_with_importtime(tmp_path, pg_dsn, redis_prefix)  # server disabled
    modules = _imported(done.stderr)
    assert _package(modules, "fastapi") == set()
    assert _package(modules, "uvicorn") == set()
    # of the API only what answers "starting" (no routes, no pydantic models)
    assert _package(modules, "drainer.api") <= {"drainer.api", "drainer.api.startup"}


async def test_run_with_the_api_imports_fastapi_only_once_the_workers_read(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    server = {"enabled": True, "host": "127.0.0.1", "port": 0}
    done = await _drain_with_importtime(tmp_path, pg_dsn, redis_prefix, server=server)
    # -X importtime and the log share stderr, line by line in the order things happened
    lines = done.stderr.splitlines()
    draining = next(i for i, line in enumerate(lines) if DRAINING_MARKER in line)
    before, after = _imported("\n".join(lines[:draining])), _imported("\n".join(lines[draining:]))
    assert "uvicorn" in before  # the API was served during start-up
    assert _package(before, "fastapi") == set()
    assert "fastapi" in after and "drainer.api.app" in after  # then the real app was built


def test_the_import_check_sees_the_developer_tools_where_they_are_used() -> None:
    # a bad option: the benchmark's modules are loaded, then it exits before any server
    done = _drainer_with_importtime("bench", "--only", "nonsense")
    assert done.returncode == 2, done.stderr
    assert {DEVTOOLS, f"{DEVTOOLS}.bench", f"{DEVTOOLS}.embedded"} <= _devtools(
        _imported(done.stderr)
    )


#: A child that cannot import ``drainer.devtools`` (as in the image), then runs the CLI.
WITHOUT_DEVTOOLS = textwrap.dedent(
    """
    import sys

    class NoDevtools:
        def find_spec(self, name, path=None, target=None):
            if name == "drainer.devtools" or name.startswith("drainer.devtools."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoDevtools())
    sys.argv = ["drainer", sys.argv[1]]
    import drainer.cli

    drainer.cli.main()
    """
)


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_bench_and_demo_without_the_developer_tools_say_so_in_one_line(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEVTOOLS, command],
        env=env_without_settings(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"drainer {command}: the developer tools (drainer.devtools) are not installed here; "
        f"run it from a source checkout with `make {command}`"
    ]
