"""Shared fixtures: every test gets its own PostgreSQL database and Redis key prefix.

The servers are the real ones named by ``DRAINER_TEST_PG_URL`` and
``DRAINER_TEST_REDIS_URL`` (defaults: the local PostgreSQL and Redis). When neither
variable is set and nothing answers on the default port, the run starts an embedded
server of that kind (the ``embedded`` extra) for itself and removes it at the end, so
``make test`` works on a machine with no services at all. ``DRAINER_TEST_EMBEDDED=1``
forces embedded servers.

Every test is in one of two lanes (``make test-fast``, ``make test-integration``):
``integration`` when it reaches a real server or starts processes, ``unit`` otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
HYPERSWITCH_SCHEMA = ROOT.parent / "shared" / "fixtures" / "hyperswitch" / "schema.sql"
if not HYPERSWITCH_SCHEMA.exists():  # a fresh clone keeps its own copy
    HYPERSWITCH_SCHEMA = ROOT / "tests" / "fixtures" / "hyperswitch_schema.sql"

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN_DSN = os.environ.get("DRAINER_TEST_PG_URL", DEFAULT_PG_DSN)
REDIS_URL = os.environ.get("DRAINER_TEST_REDIS_URL", DEFAULT_REDIS_URL)
RUN_ID = uuid.uuid4().hex[:8]
_embedded: list[Any] = []

#: Fixtures that connect to the test Redis or PostgreSQL. A test using one, directly or
#: through another fixture (``item.fixturenames`` is the closure), is an integration test.
SERVER_FIXTURES = frozenset(
    {"hyperswitch_template", "hyperswitch_dsn", "pg_dsn", "redis", "redis_prefix", "redis_url"}
)
#: Modules (paths under tests/) whose tests start processes or servers of their own, or
#: connect without those fixtures: by fixture names alone they would be unit tests.
INTEGRATION_MODULES = frozenset(
    {
        "hyperswitch/test_docs.py",
        "test_bench.py",
        "test_chaos.py",
        "test_check_cli.py",
        "test_cluster.py",
        "test_demo.py",
        "test_embedded_root.py",
        "test_no_settings.py",
        "test_packaging.py",
        "test_service_imports.py",
    }
)
LANES = ("unit", "integration")
#: Set while a unit test runs; what it did that only integration tests may do.
_unit_running: list[str] = []
_escapes: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Every audited event comes here (imports, opens, ...): leave at once outside unit tests.
    if not _unit_running:
        return
    if event in ("subprocess.Popen", "os.posix_spawn", "os.fork"):
        _escapes.append(f"{event} {str(args[:2])[:120]}")
    elif event == "socket.connect" and isinstance(args[1], tuple):
        _escapes.append(f"a connection to {args[1][0]}:{args[1][1]}")


# A test the lanes hook calls unit but which starts a process or opens a connection
# would slow the fast lane and fail without servers: it fails here instead, every run.
sys.addaudithook(_audit)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _needs_no_server(config: pytest.Config) -> bool:
    # collecting, or only the unit lane: starting embedded servers would be wasted time
    return bool(config.option.collectonly) or config.option.markexpr.strip() == "unit"


def pytest_configure(config: pytest.Config) -> None:
    """Start embedded servers for whatever is neither configured nor running locally."""
    global PG_ADMIN_DSN, REDIS_URL
    if _needs_no_server(config):
        return
    from drainer.devtools.embedded import EmbeddedPostgres, EmbeddedRedis

    force = os.environ.get("DRAINER_TEST_EMBEDDED") == "1"
    root = Path(tempfile.mkdtemp(prefix="drainer-test-servers-"))
    _embedded.append(root)
    if force or ("DRAINER_TEST_REDIS_URL" not in os.environ and not _answers(6379)):
        redis_server = EmbeddedRedis(root / "redis")
        REDIS_URL = redis_server.start()
        _embedded.append(redis_server)
    if force or ("DRAINER_TEST_PG_URL" not in os.environ and not _answers(5432)):
        pg_server = EmbeddedPostgres(root / "postgres")
        PG_ADMIN_DSN = pg_server.start()
        _embedded.append(pg_server)
    # test modules and the drainer processes they start read the same variables
    os.environ["DRAINER_TEST_REDIS_URL"] = REDIS_URL
    os.environ["DRAINER_TEST_PG_URL"] = PG_ADMIN_DSN


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by these very markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every test in exactly one lane; a lane marked on the test itself wins."""
    for item in items:
        if any(item.get_closest_marker(lane) for lane in LANES):
            continue
        module = item.path.relative_to(ROOT / "tests").as_posix()
        integration = module in INTEGRATION_MODULES or not SERVER_FIXTURES.isdisjoint(
            getattr(item, "fixturenames", ())
        )
        item.add_marker("integration" if integration else "unit")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("unit") is not None:
        _escapes.clear()
        _unit_running.append(item.nodeid)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        result = yield
    finally:
        running = bool(_unit_running)
        _unit_running.clear()
    if running and _escapes:
        pytest.fail(
            f"a unit test made {', '.join(sorted(set(_escapes)))}: give it a server fixture, "
            "list its module in INTEGRATION_MODULES (tests/conftest.py) or mark it integration",
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    _unit_running.clear()  # when setup failed, the call (which clears it) did not run
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    for item in reversed(_embedded):
        if isinstance(item, Path):
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.stop()
    _embedded.clear()


def _dsn_for(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def sqlalchemy_url(dsn: str) -> str:
    """The asyncpg SQLAlchemy URL for a plain ``postgresql://`` DSN."""
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _load_schema(dbname: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn_for(dbname))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def hyperswitch_template() -> Iterator[str]:
    """A template database holding Hyperswitch's schema, built once per run."""
    name = f"drainer_hs_tmpl_{RUN_ID}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(_load_schema(name, HYPERSWITCH_SCHEMA.read_text()))
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _new_database(template: str | None = None) -> Iterator[str]:
    name = f"drainer_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{clause}'))
    yield _dsn_for(name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database (plain ``postgresql://`` DSN), dropped afterwards."""
    yield from _new_database()


@pytest.fixture
def hyperswitch_dsn(hyperswitch_template: str) -> Iterator[str]:
    """A fresh database created from Hyperswitch's schema, dropped afterwards."""
    yield from _new_database(hyperswitch_template)


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis (responses decoded), closed afterwards."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"t{RUN_ID}{uuid.uuid4().hex[:8]}"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
