"""Shared fixtures: every test gets its own PostgreSQL database and Redis key prefix.

The servers are the real ones named by ``DRAINER_TEST_PG_URL`` and
``DRAINER_TEST_REDIS_URL`` (defaults: the local PostgreSQL and Redis).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
HYPERSWITCH_SCHEMA = ROOT.parent / "shared" / "fixtures" / "hyperswitch" / "schema.sql"
if not HYPERSWITCH_SCHEMA.exists():  # a fresh clone keeps its own copy
    HYPERSWITCH_SCHEMA = ROOT / "tests" / "fixtures" / "hyperswitch_schema.sql"

PG_ADMIN_DSN = os.environ.get(
    "DRAINER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DRAINER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


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
