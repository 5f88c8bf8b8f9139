"""`drainer run` with no settings at all refuses to start instead of draining defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from tests.support.drainer import REDIS_URL, env_without_settings


def test_run_without_any_settings_refuses_with_one_line(tmp_path: Path) -> None:
    env = env_without_settings("RUN_ENV", "CONFIG_DIR")
    client = redis.Redis.from_url(REDIS_URL)
    before = client.exists("{shard_0}_DRAINER_STREAM")
    proc = subprocess.run(
        [sys.executable, "-m", "drainer", "run", "--burst"],
        env=env,
        cwd=tmp_path,  # no config/ directory here for the Hyperswitch fallback to find
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "drainer: no settings given: pass --config FILE (or -f FILE), or set "
        "DRAINER__<SECTION>__<KEY> variables (e.g. DRAINER__MASTER_DATABASE__URL)"
    ]
    # nothing was created on the default servers
    assert client.exists("{shard_0}_DRAINER_STREAM") == before
    client.close()
