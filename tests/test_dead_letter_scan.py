"""GET /dead-letters reads at most server.dead_letter_scan_max dead letters per request.

A filter that matches little cannot make one request read the whole dead-letter
stream: it answers with what it found, how many it read, and a cursor.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from drainer.consumers.dead_letter import NewDeadLetter
from drainer.consumers.producer import Producer, update_op
from tests.support.api import api_client
from tests.support.drainer import create_a_table, settings_from, write_config

SCAN_MAX = 100
LETTERS = 450
#: Every this many dead letters, one of the class the filter asks for.
EVERY = 90


async def _page_all(client: httpx.AsyncClient, **params: str) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    scanned: list[int] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/dead-letters", params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids.extend(d["id"] for d in body["items"])
        scanned.append(body["scanned"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, scanned


async def test_a_filtered_listing_is_bounded_and_pages_on_with_a_cursor(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b")
    await conn.close()
    await create_a_table(pg_dsn, "tenant_a", "tenant_b")
    prefix_a, prefix_b = f"{redis_prefix}a", f"{redis_prefix}b"
    config = write_config(
        tmp_path / "d.toml",
        pg_dsn,
        prefix="unused",
        tenants={
            "a": {"schema": "tenant_a", "redis_key_prefix": prefix_a},
            "b": {"schema": "tenant_b", "redis_key_prefix": prefix_b},
        },
        server={"dead_letter_scan_max": SCAN_MAX},
    )
    async with api_client(settings_from(config)) as (drainer, client):
        wanted: list[str] = []
        for tenant in ("a", "b"):
            store = drainer.stores[tenant]
            stream = store.layout.stream_key(0)
            fields = Producer(store.redis, store.layout).fields(
                update_op("child", {"id": "c"}, {"n": 1}), partition_key="pay"
            )
            letters = [
                NewDeadLetter(
                    stream,
                    f"1-{n}",
                    fields,
                    "no_row" if n % EVERY == 0 else "constraint",
                    "e",
                    1,
                )
                for n in range(LETTERS)
            ]
            ids = await store.dead_letters.add(letters)
            wanted.extend(i for i, d in zip(ids, letters, strict=True) if d.error_class == "no_row")

        first = (await client.get("/dead-letters", params={"error_class": "no_row"})).json()
        # more dead letters than the bound: the first request stops at it, with a cursor
        assert first["scanned"] == SCAN_MAX and first["next_cursor"] is not None
        found, scanned = await _page_all(client, error_class="no_row")
        assert found == wanted
        assert max(scanned) <= SCAN_MAX and sum(scanned) == 2 * LETTERS
        # unfiltered pages are bounded the same way and find every one
        everything, scanned = await _page_all(client, limit="1000")
        assert len(everything) == 2 * LETTERS and max(scanned) <= SCAN_MAX
