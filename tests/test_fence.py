"""The watermark table: created once even when replicas start at the same moment."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from drainer.db.fence import create_watermark_table, read_watermarks
from tests.conftest import sqlalchemy_url

REPLICAS = 8


async def test_replicas_starting_together_all_create_the_table(pg_dsn: str) -> None:
    engines = [create_async_engine(sqlalchemy_url(pg_dsn)) for _ in range(REPLICAS)]
    try:

        async def start(engine: AsyncEngine) -> None:
            async with engine.begin() as conn:
                await create_watermark_table(conn)

        results = await asyncio.gather(*(start(e) for e in engines), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        async with engines[0].connect() as conn:
            assert await read_watermarks(conn) == {}
    finally:
        for engine in engines:
            await engine.dispose()
