"""The quick start as root from a private directory: the embedded PostgreSQL, which must
run as an unprivileged user, is run from a copy that user can reach."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from drainer.devtools import embedded

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the case exists only as root (PostgreSQL refuses to run as root)"
)


def test_root_with_the_server_in_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"  # like /root or a `mktemp -d` directory: mode 700
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    # the wheel's layout (pginstall and its vendored libraries) inside the private directory
    package = embedded.postgres_bin_dir().parent.parent
    shutil.copytree(package / "pginstall", private / package.name / "pginstall", symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    shutil.copytree(libs, private / libs.name, symlinks=True)
    private_bin = private / package.name / "pginstall" / "bin"
    monkeypatch.setattr(embedded, "postgres_bin_dir", lambda: private_bin)
    # the run's own directory, made as `drainer demo` makes it (a fresh temporary one)
    run = Path(tempfile.mkdtemp(prefix="drainer-test-"))
    server = embedded.EmbeddedPostgres(run / "pg")
    assert embedded._closed_to_others(private_bin / "postgres") is not None
    try:
        url = server.start()

        async def ask() -> int:
            conn = await asyncpg.connect(url)
            try:
                return int(await conn.fetchval("SELECT 41 + 1"))
            finally:
                await conn.close()

        assert asyncio.run(ask()) == 42
        assert server.bin.is_relative_to(run)  # the copy ran, not the private original
    finally:
        server.stop()
        shutil.rmtree(run, ignore_errors=True)
