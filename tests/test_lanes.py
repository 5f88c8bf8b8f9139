"""The two lanes (``-m unit``, ``-m integration``) split the collection: each test in one.

A test in neither lane would be run by ``make test`` and by no lane, a test in both
twice; either means a marker on a test contradicts the hook in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECT_TIMEOUT_S = 120

pytestmark = pytest.mark.integration  # it starts pytest processes


async def _collected(*args: str) -> set[str]:
    """The node ids ``pytest --collect-only`` lists with ``args``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "--assert=plain",  # nothing runs: rewriting every module's asserts is wasted time
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), COLLECT_TIMEOUT_S)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return {line for line in text.splitlines() if "::" in line}


async def test_every_test_is_in_exactly_one_lane() -> None:
    # the three collections run side by side: each is mostly imports, one per CPU
    everything, unit, integration = await asyncio.gather(
        _collected(), _collected("-m", "unit"), _collected("-m", "integration")
    )
    assert unit & integration == set(), "in both lanes"
    assert everything - unit - integration == set(), "in neither lane"
    assert unit | integration == everything
    # one test of each kind: by its fixtures, none and a Redis one; by its module's marker
    pure = "tests/test_group.py::test_partition_is_crc32_mod_n_and_keys_carry_the_hash_tag"
    on_redis = "tests/test_group.py::test_backlog_written_before_the_group_exists_is_read"
    assert pure in unit
    assert on_redis in integration
    assert "tests/test_lanes.py::test_every_test_is_in_exactly_one_lane" in integration
