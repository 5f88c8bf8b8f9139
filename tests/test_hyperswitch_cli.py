"""Start-up the way Hyperswitch's drainer binary starts, and the tenants it drains.

Hyperswitch's binary (juspay/hyperswitch af406737, ``crates/drainer/src/{main,settings}.rs``)
takes ``-f FILE`` / ``--config-path FILE`` and no subcommand; given no file it reads
``$CONFIG_DIR/<RUN_ENV>.toml`` (``crates/router_env/src/logger/config.rs``). It drains one
store per ``[multitenancy.tenants.<id>]``, whatever ``[multitenancy] enabled`` says.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from drainer.cli import hyperswitch_argv
from drainer.settings import Tenant, hyperswitch_config_path, load_settings
from tests.conftest import ROOT
from tests.support.drainer import REDIS_URL

HYPERSWITCH_CONFIG = ROOT / "tests" / "fixtures" / "hyperswitch_drainer.toml"
PARTITIONS = 32  # the fixture's [drainer] num_partitions
STREAM_NAME = "drainer_stream"  # the fixture's [drainer] stream_name
BOTH_TENANTS = [
    Tenant("public", "public", ""),
    Tenant("tenant_a", "tenant_a", "tenant_a"),
]


def _lookup_entry(n: int) -> tuple[str, dict[str, str]]:
    """A ``ReverseLookupNew`` insert, as Hyperswitch's router writes it."""
    gid = f"mid_merchant_1_pid_pay_{n}"
    data = {
        "lookup_id": f"pa_merchant_1_pay_{n}_1",
        "sk_id": f"pa_pay_{n}_1",
        "pk_id": gid,
        "source": "payment_attempt",
        "updated_by": "redis_kv",
    }
    typed_sql = {
        "db_op": "insert",
        "data": {"insertable": {"table": "reverse_look_up", "data": data}},
    }
    return gid, {
        "request_id": f"req_{n}",
        "global_id": gid,
        "typed_sql": json.dumps(typed_sql, separators=(",", ":")),
        "pushed_at": "1780000000",
    }


def _stream(prefix: str, global_id: str) -> str:
    shard = zlib.crc32(global_id.encode()) % PARTITIONS
    return f"{prefix}:{{shard_{shard}}}_{STREAM_NAME}"


async def _drain_with(
    args: list[str], extra_env: dict[str, str], dsn: str, prefix: str, cwd: Path = ROOT
) -> None:
    """Push entries for both of the fixture's tenants, run ``drainer ARGS``, check it drained."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE SCHEMA tenant_a;"
        " CREATE TABLE tenant_a.reverse_lookup (LIKE public.reverse_lookup INCLUDING ALL);"
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    public, tenant_a = f"{prefix}p", f"{prefix}a"
    try:
        for n in range(10):
            gid, fields = _lookup_entry(n)
            await redis.xadd(_stream(public if n < 6 else tenant_a, gid), fields)
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("RUN_ENV", "CONFIG_DIR")},
            "DRAINER__MASTER_DATABASE__URL": dsn,
            "DRAINER__REDIS__URL": REDIS_URL,
            "DRAINER__MULTITENANCY__TENANTS__PUBLIC__REDIS_KEY_PREFIX": public,
            "DRAINER__MULTITENANCY__TENANTS__TENANT_A__REDIS_KEY_PREFIX": tenant_a,
            "DRAINER__SERVER__ENABLED": "false",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "drainer", *args],
            env=env,
            capture_output=True,
            timeout=120,
            cwd=cwd,
        )
        log = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, log
        for tenant_prefix in (public, tenant_a):
            for shard in range(PARTITIONS):
                assert await redis.xlen(f"{tenant_prefix}:{{shard_{shard}}}_{STREAM_NAME}") == 0
        assert await conn.fetchval("SELECT count(*) FROM public.reverse_lookup") == 6
        assert await conn.fetchval("SELECT count(*) FROM tenant_a.reverse_lookup") == 4
    finally:
        await redis.aclose()
        await conn.close()


async def test_bare_dash_f_runs_the_drainer(hyperswitch_dsn: str, redis_prefix: str) -> None:
    await _drain_with(["-f", str(HYPERSWITCH_CONFIG), "--burst"], {}, hyperswitch_dsn, redis_prefix)


async def test_bare_config_path_runs_the_drainer(hyperswitch_dsn: str, redis_prefix: str) -> None:
    await _drain_with(
        ["--config-path", str(HYPERSWITCH_CONFIG), "--burst"], {}, hyperswitch_dsn, redis_prefix
    )


async def test_run_dash_f_runs_the_drainer(hyperswitch_dsn: str, redis_prefix: str) -> None:
    await _drain_with(
        ["run", "-f", str(HYPERSWITCH_CONFIG), "--burst"], {}, hyperswitch_dsn, redis_prefix
    )


async def test_run_env_and_config_dir_find_the_file(
    tmp_path: Path, hyperswitch_dsn: str, redis_prefix: str
) -> None:
    config_dir = tmp_path / "local_config"
    config_dir.mkdir()
    shutil.copy(HYPERSWITCH_CONFIG, config_dir / "sandbox.toml")
    await _drain_with(
        ["run", "--burst"],
        {"RUN_ENV": "sandbox", "CONFIG_DIR": str(config_dir)},
        hyperswitch_dsn,
        redis_prefix,
    )


def test_hyperswitch_config_path_rule(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for name in ("development.toml", "sandbox.toml", "production.toml"):
        (config / name).write_text("")
    d = str(config)
    assert hyperswitch_config_path({}) is None  # neither variable: no file, as before
    assert hyperswitch_config_path({"CONFIG_DIR": d}) == config / "production.toml"
    assert hyperswitch_config_path({"CONFIG_DIR": d, "RUN_ENV": "sandbox"}) == (
        config / "sandbox.toml"
    )
    for env_name in ("development", "integ"):
        assert hyperswitch_config_path({"CONFIG_DIR": d, "RUN_ENV": env_name}) == (
            config / "development.toml"
        )
    # Hyperswitch parses RUN_ENV exactly; anything else is a release build's default
    assert hyperswitch_config_path({"CONFIG_DIR": d, "RUN_ENV": "Sandbox"}) == (
        config / "production.toml"
    )
    # CONFIG_DIR defaults to "config" under the workspace (cwd, or CARGO_MANIFEST_DIR/../..)
    manifest = str(tmp_path / "crates" / "drainer")
    assert hyperswitch_config_path({"RUN_ENV": "sandbox", "CARGO_MANIFEST_DIR": manifest}) == (
        config / "sandbox.toml"
    )
    (config / "sandbox.toml").unlink()
    assert hyperswitch_config_path({"CONFIG_DIR": d, "RUN_ENV": "sandbox"}) is None


def test_hyperswitch_flags_select_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUN_ENV", raising=False)
    monkeypatch.delenv("CONFIG_DIR", raising=False)
    assert hyperswitch_argv(["-f", "x.toml"]) == ["run", "-f", "x.toml"]
    assert hyperswitch_argv(["-fx.toml"]) == ["run", "-fx.toml"]
    assert hyperswitch_argv(["--config-path=x.toml"]) == ["run", "--config-path=x.toml"]
    assert hyperswitch_argv(["run", "-f", "x.toml"]) == ["run", "-f", "x.toml"]
    assert hyperswitch_argv(["--help"]) == ["--help"]
    assert hyperswitch_argv([]) == []  # no file to find: the help, as before
    (tmp_path / "production.toml").write_text("")
    monkeypatch.setenv("CONFIG_DIR", str(tmp_path))
    assert hyperswitch_argv([]) == ["run"]  # the images' bare `drainer` runs


# --- tenants: every [multitenancy.tenants.<id>], as Hyperswitch's main.rs ---------------


def test_every_listed_tenant_is_drained() -> None:
    assert load_settings(HYPERSWITCH_CONFIG, env={}).tenants() == BOTH_TENANTS


def test_listed_tenants_are_drained_with_multitenancy_disabled(tmp_path: Path) -> None:
    text = HYPERSWITCH_CONFIG.read_text().replace(
        "[multitenancy]\nenabled = true", "[multitenancy]\nenabled = false"
    )
    assert "enabled = false\nglobal_tenant" in text
    path = tmp_path / "disabled.toml"
    path.write_text(text)
    # global_tenant is not drained, enabled or not
    assert load_settings(path, env={}).tenants() == BOTH_TENANTS


def test_no_listed_tenant_drains_public(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    path.write_text("[multitenancy]\nenabled = false\n")
    assert load_settings(path, env={}).tenants() == [Tenant("public", "public", "")]


def test_listed_tenants_must_be_distinct_with_multitenancy_disabled(tmp_path: Path) -> None:
    from drainer.settings import SettingsError

    path = tmp_path / "dup.toml"
    path.write_text(
        "[multitenancy]\nenabled = false\n"
        '[multitenancy.tenants.a]\nschema = "s"\n[multitenancy.tenants.b]\nschema = "s"\n'
    )
    with pytest.raises(SettingsError, match=r"multitenancy\.tenants\.b\.schema"):
        load_settings(path, env={})
