"""``drainer bench --quick``: every row of the report, with sane values (no timing limits)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.drainer import REDIS_URL, env_without_settings

BENCH_TIMEOUT_S = 180
#: The start-up run's default schema: Hyperswitch's (tests/fixtures/hyperswitch_schema.sql).
HYPERSWITCH_TABLES = 51
STARTUP_TARGET = "start-up until the first read (51 tables)"


def _run_bench(pg_dsn: str, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = env_without_settings()
    command = [sys.executable, "-m", "drainer", "bench", "--quick", *args, "--partitions", "8"]
    return subprocess.run(
        [*command, "--redis-url", redis_url, "--database-url", pg_dsn],
        env=env,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
    )


async def _bench(
    tmp_path: Path, pg_dsn: str, redis_url: str, *args: str
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """``drainer bench --quick`` on 8 partitions of the test servers: its JSON and run."""
    report = tmp_path / "bench.json"
    proc = await asyncio.to_thread(_run_bench, pg_dsn, redis_url, *args, "--json", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(report.read_text()), proc


async def _keys_left(prefix: str) -> list[bytes]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    finally:
        await client.aclose()


async def test_quick_bench_reports_every_measure(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    data, proc = await _bench(tmp_path, pg_dsn, redis_url)

    # the printed table has every row
    rows = (
        "inserts, ops/s",
        "1 insert + 3 updates",
        "Hyperswitch-shaped",
        "delay p50 / p99",
        "peak RSS",
        "start-up until the first read",
    )
    for row in rows:
        assert row in proc.stdout, proc.stdout
    for column in ("drainer", "baseline (per entry)", "limit (COPY)"):
        assert column in proc.stdout

    # every contender drained the whole backlog at a positive rate
    inserts, mix = data["inserts"], data["mix"]
    assert set(inserts) == {"drainer", "baseline", "limit"}
    assert set(mix) == {"drainer", "baseline"}
    for run in [*inserts.values(), *mix.values()]:
        assert run["entries"] > 0 and run["seconds"] > 0 and run["ops_per_s"] > 0
    assert inserts["drainer"]["entries"] == inserts["baseline"]["entries"]
    assert inserts["limit"]["entries"] == inserts["drainer"]["entries"]
    assert mix["drainer"]["entries"] == mix["baseline"]["entries"]
    # the same mix with tagged-union updates and Encryption values drained whole too
    tagged = data["tagged"]
    assert tagged["entries"] == mix["drainer"]["entries"] and tagged["ops_per_s"] > 0

    # ratios are computed from those rates
    ratios = data["ratios"]
    assert ratios["inserts_drainer_vs_baseline"] == pytest.approx(
        inserts["drainer"]["ops_per_s"] / inserts["baseline"]["ops_per_s"], rel=0.01
    )
    assert ratios["mix_drainer_vs_baseline"] == pytest.approx(
        mix["drainer"]["ops_per_s"] / mix["baseline"]["ops_per_s"], rel=0.01
    )
    assert ratios["tagged_vs_flat_mix"] == pytest.approx(
        tagged["ops_per_s"] / mix["drainer"]["ops_per_s"], rel=0.01
    )
    assert ratios["inserts_drainer_vs_limit"] == pytest.approx(
        inserts["drainer"]["ops_per_s"] / inserts["limit"]["ops_per_s"], rel=0.01
    )
    assert ratios["tagged_mix_vs_inserts"] == pytest.approx(
        tagged["ops_per_s"] / inserts["drainer"]["ops_per_s"], rel=0.01
    )

    # delay at a fixed offered rate, measured on the rows the drainer wrote
    delay = data["delay"]
    assert delay["offered_ops_per_s"] > 0 and delay["samples"] > 0
    assert 0 < delay["p50_ms"] <= delay["p99_ms"] <= delay["max_ms"]

    # peak RSS of the drainer process at two backlog sizes
    rss = data["rss"]
    assert len(rss) == 2 and rss[0]["entries"] < rss[1]["entries"]
    assert all(r["peak_rss_kb"] > 10_000 for r in rss)
    assert data["rss_growth"] == pytest.approx(
        rss[1]["peak_rss_kb"] / rss[0]["peak_rss_kb"] - 1, abs=0.001
    )
    assert {t["name"] for t in data["targets"]} >= {
        "inserts: drainer / baseline",
        "mix: drainer / baseline",
        "mix: tagged-union updates / flat",
        "tagged-union mix / inserts",
        "inserts: drainer / COPY limit",
        "delay p99 at fixed rate",
        "peak RSS growth, small to large backlog",
        STARTUP_TARGET,
    }
    assert data["machine"]["cores"] and data["machine"]["postgresql"]

    # the run cleaned up after itself
    assert await _keys_left(data["config"]["redis_prefix"]) == []


async def test_bench_measures_the_drainer_with_several_workers(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    data, proc = await _bench(tmp_path, pg_dsn, redis_url, "--only", "inserts", "--workers", "1,2")
    inserts = data["inserts"]
    assert set(inserts) == {"drainer", "drainer_2_workers", "baseline", "limit"}
    two = inserts["drainer_2_workers"]
    assert two["entries"] == inserts["drainer"]["entries"] and two["ops_per_s"] > 0
    # the parent and both workers: more memory than one process alone
    assert two["peak_rss_kb"] > inserts["drainer"]["peak_rss_kb"]
    assert data["config"]["workers"] == [1, 2]
    assert "same, drainer with 2 workers" in proc.stdout
    assert data["ratios"]["inserts_2_workers_vs_limit"] == pytest.approx(
        two["ops_per_s"] / inserts["limit"]["ops_per_s"], rel=0.01
    )
    [target] = [t for t in data["targets"] if t["name"].startswith("inserts, --workers 2")]
    assert (target["required"], target["unit"]) == (0.35, "%")


async def test_bench_times_start_up_until_the_first_read_on_hyperswitch_tables(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    data, proc = await _bench(tmp_path, pg_dsn, redis_url, "--only", "startup")
    startup = data["startup"]
    assert startup["tables"] == HYPERSWITCH_TABLES  # the checkout's schema, reflected whole
    runs = startup["runs_s"]
    assert len(runs) == 3 and all(seconds > 0 for seconds in runs)
    assert startup["median_s"] == pytest.approx(statistics.median(runs), abs=0.001)
    [target] = [t for t in data["targets"] if t["name"] == STARTUP_TARGET]
    assert (target["required"], target["unit"]) == (1.5, "s")
    assert target["measured"] == pytest.approx(startup["median_s"], abs=0.001)
    assert target["holds"] == (target["measured"] <= target["required"])
    assert "start-up until the first read, 51 tables (median of 3)" in proc.stdout
    assert "<= 1.5 s" in proc.stdout
    # that measure only
    assert data["inserts"] == {} and data["mix"] == {} and data["delay"] is None
    assert data["config"]["startup_schema"].endswith("hyperswitch_schema.sql")

    # its database and its streams are gone
    conn = await asyncpg.connect(pg_dsn)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
            f"{data['config']['schema']}%",
        )
    finally:
        await conn.close()
    assert left == 0
    assert await _keys_left(data["config"]["redis_prefix"]) == []


async def test_bench_refuses_a_startup_schema_that_does_not_exist(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    missing = tmp_path / "nothing.sql"
    proc = await asyncio.to_thread(
        _run_bench, pg_dsn, redis_url, "--only", "startup", "--startup-schema", str(missing)
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no such file" in proc.stderr and "--startup-schema" in proc.stderr
