"""The public Python API, used the way Hyperswitch's Rust drainer's API is used."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

import drainer
from drainer.consumers import delete_op, insert_op, update_op
from drainer.db import CoercionError, NoRowMatched, Outcome, UnknownTable
from tests.support.drainer import stream_totals, write_config


async def test_load_settings_build_stores_execute_and_start_drainer(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("CREATE TABLE account (id text PRIMARY KEY, balance bigint NOT NULL)")
        settings = drainer.load_settings(
            write_config(tmp_path / "l.toml", pg_dsn, prefix=redis_prefix)
        )
        stores = {t.id: await drainer.Store.create(settings, t) for t in settings.tenants()}
        store = stores["t1"]
        try:
            # execute one operation directly, outside any stream
            assert (
                await store.execute(insert_op("account", {"id": "a", "balance": 5}))
                is Outcome.APPLIED
            )
            assert (
                await store.execute(update_op("account", {"id": "a"}, {"balance": "7"}))
                is Outcome.APPLIED
            )
            with pytest.raises(NoRowMatched, match="account"):
                await store.execute(update_op("account", {"id": "zz"}, {"balance": 1}))
            with pytest.raises(CoercionError, match=r"account\.balance"):
                await store.execute(insert_op("account", {"id": "b", "balance": "lots"}))
            with pytest.raises(UnknownTable, match="acount"):
                await store.execute(insert_op("acount", {"id": "b"}))
            assert await conn.fetchval("SELECT balance FROM account WHERE id = 'a'") == 7

            # append through the stream and start the drainer inside this program
            await store.producer.insert("account", {"id": "b", "balance": 1}, partition_key="b")
            await store.producer.update("account", {"id": "b"}, {"balance": 2}, partition_key="b")
            await store.producer.delete("account", {"id": "a"}, partition_key="a")
            await drainer.start_drainer(stores, settings, burst=True)
        finally:
            for s in stores.values():
                await s.close()
            await store.redis.aclose()
        rows = await conn.fetch("SELECT id, balance FROM account")
        assert [tuple(r) for r in rows] == [("b", 2)]
        assert await stream_totals(redis_prefix) == (0, 0)
        assert delete_op("account", {"id": "a"}).dumps().startswith(b'{"db_op":"delete"')
    finally:
        await conn.close()
