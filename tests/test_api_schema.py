"""Schemathesis against the app's own OpenAPI schema: no 5xx, no response off its schema.

The drainer runs as a real process (its Redis and database clients live on its
own event loop) with pending entries held by a dead consumer and dead letters,
one of each with bytes that are not UTF-8 in its fields, so listings return real
items. Every operation is fuzzed with valid and, where
it has inputs, invalid data, with the admin token so the changing endpoints run
past authentication.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from tests.support.api import free_port
from tests.support.drainer import (
    REDIS_URL,
    spawn_drainer,
    stop_process_async,
    wait_until,
    write_config,
)

TOKEN = "schema-test-token"
#: An entry whose fields (and a field name) are not UTF-8.
BAD_BYTES = {
    b"request_id": b"req-\x80",
    b"global_id": b"pay_\xfe\xff",
    b"typed_sql": b'{"db_op":"insert","data":{"insertable":{"table":"item","data":{"id":"\xff"}}}}',
    b"pushed_at": b"1767261600.5",
    b"odd-\xff": b"\xc3\x28",
}
#: Examples per operation and generation mode: bounded so the run stays short.
MAX_EXAMPLES = int(os.environ.get("DRAINER_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    parts = (operation.path_parameters, operation.query, operation.headers, operation.body)
    return any(len(part) for part in parts)


def _fuzz(base_url: str) -> list[str]:
    """Run every operation of the schema; returns the failures (empty when all pass)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if _has_inputs(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Case) -> None:
                response = case.call(base_url=base_url, headers=auth, timeout=30)
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except Exception as exc:  # collect all, report together
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_the_api_keeps_to_its_openapi_schema(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("CREATE TABLE item (id text PRIMARY KEY, n int NOT NULL)")
    await conn.close()
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    producer = Producer(redis, layout)
    held = layout.stream_for("held")
    await redis.xgroup_create(held, "drainer", id="0", mkstream=True)
    await producer.insert("item", {"id": "h", "n": 1}, partition_key="held")
    raw = aioredis.Redis.from_url(REDIS_URL)
    await raw.xadd(held, BAD_BYTES)  # type: ignore[arg-type]
    await raw.xreadgroup("drainer", "ghost", {held: ">"}, count=2)
    port = free_port()
    config = write_config(
        tmp_path / "s.toml",
        pg_dsn,
        prefix=redis_prefix,
        drainer={"claim_min_idle_ms": 600_000},
        server={"enabled": True, "port": port, "admin_token": TOKEN},
    )
    proc = spawn_drainer(config, consumer="schema")
    base_url = f"http://127.0.0.1:{port}"
    try:
        await producer.insert("item", {"id": "bad", "nope": 1}, partition_key="k")
        await raw.xadd(layout.stream_for("k"), BAD_BYTES)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=base_url) as client:

            async def dead_letter_written() -> bool:
                assert proc.poll() is None, "the drainer exited"
                try:
                    resp = await client.get("/pending")
                except httpx.TransportError:
                    return False
                return bool(resp.status_code == 200 and resp.json()["dead_letters"] == 2)

            await wait_until(dead_letter_written, timeout_s=60)
        # Schemathesis is synchronous: run it off the loop
        failures = await asyncio.to_thread(_fuzz, base_url)
        assert not failures, "\n\n".join(failures)
        code, out = await stop_process_async(proc)
        assert code == 0, out
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            await stop_process_async(proc)
        await redis.aclose()
        await raw.aclose()
