"""``drainer check`` and ``drainer config show``, run as subprocesses against real servers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from tests.conftest import REDIS_URL, ROOT
from tests.support.drainer import env_without_settings

SECRET_PASSWORD = "s3cr3t-pw-never-shown"
SECRET_TOKEN = "admin-token-never-shown"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = env_without_settings("RUN_ENV", "CONFIG_DIR")
    return subprocess.run(
        [sys.executable, "-m", "drainer", *args],
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _config(tmp_path: Path, dsn: str, prefix: str, schema: str = "public") -> Path:
    path = tmp_path / "drainer.toml"
    path.write_text(
        f"""
[master_database]
url = "{dsn}"

[redis]
url = "{REDIS_URL}"

[multitenancy.tenants.acme]
schema = "{schema}"
redis_key_prefix = "{prefix}"
"""
    )
    return path


async def _create_tables(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE widget (id bigint PRIMARY KEY, name text)")
        await conn.execute("CREATE TABLE gadget (id bigint PRIMARY KEY, size int)")
    finally:
        await conn.close()


async def _keys(prefix: str) -> list[str]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        await client.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_check_passes_and_creates_nothing(tmp_path: Path, pg_dsn: str, redis_prefix: str) -> None:
    asyncio.run(_create_tables(pg_dsn))
    done = _cli("check", "-c", str(_config(tmp_path, pg_dsn, redis_prefix)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tenant acme" in done.stdout
    assert "2 mapped" in done.stdout
    assert "backlog:      0 entries" in done.stdout
    assert asyncio.run(_keys(redis_prefix)) == []

    async def tables() -> list[str]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return sorted(row["tablename"] for row in rows)
        finally:
            await conn.close()

    assert asyncio.run(tables()) == ["gadget", "widget"]  # no drainer tables created


def test_check_names_an_unreachable_database(tmp_path: Path, redis_prefix: str) -> None:
    port = _free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
    done = _cli("check", "-f", str(_config(tmp_path, dsn, redis_prefix)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"tenant acme: database 127.0.0.1:{port}/nowhere" in done.stderr


def test_check_names_a_missing_schema(tmp_path: Path, pg_dsn: str, redis_prefix: str) -> None:
    done = _cli("check", "--config", str(_config(tmp_path, pg_dsn, redis_prefix, "absent")))
    assert done.returncode == 1, done.stdout + done.stderr
    database = pg_dsn.rsplit("/", 1)[1]
    line = next(line for line in done.stderr.splitlines() if "absent" in line)
    assert "tenant acme: database " in line and f"/{database}" in line
    assert "schema 'absent' does not exist" in line


def test_check_reports_bad_settings_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[drainer]\nnum_partitions = 0\nmax_read_count = -1\n")
    done = _cli("check", "-c", str(path))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("drainer: bad")]
    assert len(lines) >= 2, done.stderr


def test_config_show_origins_and_masks_secrets(tmp_path: Path) -> None:
    path = tmp_path / "drainer.toml"
    path.write_text(
        f"""
[drainer]
stream_name = "FROM_FILE"

[master_database]
url = "postgresql://admin:{SECRET_PASSWORD}@db.example:5432/app"

[redis]
url = "redis://user:{SECRET_PASSWORD}@cache.example:6379/0"
cluster_urls = ["redis://u:{SECRET_PASSWORD}@n1.example:6379"]
"""
    )
    env = {"DRAINER__DRAINER__MAX_READ_COUNT": "77", "DRAINER__SERVER__ADMIN_TOKEN": SECRET_TOKEN}
    done = _cli("config", "show", "-c", str(path), env=env)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "FROM_FILE" in lines["drainer.stream_name"]
    assert lines["drainer.stream_name"].endswith("file")
    assert lines["drainer.max_read_count"].endswith("env DRAINER__DRAINER__MAX_READ_COUNT")
    assert lines["drainer.num_partitions"].endswith("default")
    assert lines["server.admin_token"].endswith("env DRAINER__SERVER__ADMIN_TOKEN")
    assert SECRET_PASSWORD not in done.stdout + done.stderr
    assert SECRET_TOKEN not in done.stdout + done.stderr

    as_json = _cli("config", "show", "-c", str(path), "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert SECRET_PASSWORD not in as_json.stdout and SECRET_TOKEN not in as_json.stdout
    assert '"origin": "file"' in as_json.stdout


def test_check_lists_the_dialect_bindings(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    done = _cli("check", "-c", str(_config(tmp_path, hyperswitch_dsn, redis_prefix)))
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "payment_attempt:" in line)
    assert "PaymentAttemptUpdate (tagged)" in line, done.stdout
    assert "attempt_id" in line and "merchant_id" in line
