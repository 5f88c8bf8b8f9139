"""Start-up failures name the server and what failed; those that can never fix
themselves end the process at once instead of being retried forever."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.api import free_port
from tests.support.drainer import env_without_settings, write_config


def _run(config: Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = env_without_settings()
    return subprocess.run(
        [sys.executable, "-m", "drainer", "run", "--config", str(config), "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/drainer_no_such_db",
            "database 127.0.0.1:5432/drainer_no_such_db as postgres: database "
            '"drainer_no_such_db" does not exist',
        ),
        (
            "postgresql://drainer_no_such_role@127.0.0.1:5432/postgres",
            "database 127.0.0.1:5432/postgres as drainer_no_such_role: role "
            '"drainer_no_such_role" does not exist',
        ),
    ],
)
def test_a_permanent_database_error_exits_at_once_naming_the_server(
    tmp_path: Path, redis_prefix: str, dsn: str, said: str
) -> None:
    done = _run(write_config(tmp_path / "c.toml", dsn, prefix=redis_prefix))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("drainer: ")]
    assert lines == [f"drainer: cannot start: tenant t1: {said}"]
    assert "Background on this error" not in done.stderr + done.stdout


def test_an_unreachable_database_is_retried_and_named(tmp_path: Path, redis_prefix: str) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "c.toml", f"postgresql://postgres@127.0.0.1:{port}/postgres", prefix=redis_prefix
    )
    env = env_without_settings()
    proc = subprocess.Popen(
        [sys.executable, "-m", "drainer", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = ""
    try:
        for line in proc.stdout:
            if "cannot start yet" in line:
                seen = line
                break
            assert time.monotonic() < deadline, "no retry line"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert f"cannot start yet: database 127.0.0.1:{port}/postgres as postgres:" in seen
    assert "retrying in" in seen


def test_a_schema_with_no_table_is_an_error_at_start(
    tmp_path: Path, pg_dsn: str, redis_prefix: str
) -> None:
    done = _run(write_config(tmp_path / "c.toml", pg_dsn, prefix=redis_prefix))
    assert done.returncode == 2, done.stderr
    assert (
        "drainer: cannot start: tenant 't1': schema 'public' has no table the drainer can map"
        in done.stderr
    )
