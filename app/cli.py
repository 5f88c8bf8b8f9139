"""The ``drainer`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar


@contextlib.contextmanager
def _loading_for_good() -> Iterator[None]:
    """Run the block with the garbage collector paused, then freeze what it made.

    For imports: what they make lives as long as the process, so a collection in
    the middle finds nothing to free, and every later full pass would walk it all
    again. Frozen objects are left out of every pass (``gc.freeze``); the collector
    is on again after the block if it was before.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


# Importing the settings loads the whole service: SQLAlchemy, pydantic, Redis,
# OpenTelemetry and the drainer's own modules, about 160 000 objects the collector
# tracks. Its passes over them while they load, and again during reflection, were
# about 0.16 s of `drainer run`'s start-up on 2 slow cores (timed with gc.callbacks:
# 185 ms in collections until the first read, 25 ms with this).
with _loading_for_good():
    import typer

    from drainer.settings import (
        ENV_PREFIX,
        MAX_WORKERS,
        Settings,
        SettingsError,
        hyperswitch_config_path,
        load_settings,
    )
    from drainer.telemetry import configure_logging

if TYPE_CHECKING:
    from drainer.worker_process import WorkerSpec

T = TypeVar("T")
#: Columns of the benchmark report when stdout is not a terminal.
REPORT_WIDTH = 150

#: What `drainer run` says when it is given no settings at all.
NO_SETTINGS_MESSAGE = (
    "drainer: no settings given: pass --config FILE (or -f FILE), or set "
    "DRAINER__<SECTION>__<KEY> variables (e.g. DRAINER__MASTER_DATABASE__URL)"
)

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Drain database operations from partitioned Redis Streams into PostgreSQL.",
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (env DRAINER__SECTION__KEY overrides it)."
    ),
]

#: ``run``'s config option also takes the flags of Hyperswitch's drainer binary.
RunConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        "--config-path",
        "-f",
        help="TOML settings file (env DRAINER__SECTION__KEY overrides it). Without it: "
        "$CONFIG_DIR/<RUN_ENV file> when RUN_ENV or CONFIG_DIR is set and the file exists, "
        "as Hyperswitch's drainer finds it; else no file.",
    ),
]
#: Hyperswitch's drainer takes ``-f FILE`` / ``--config-path FILE`` with no subcommand.
HYPERSWITCH_FLAGS = ("-f", "--config-path")
#: What ``bench`` and ``demo`` say where ``drainer.devtools`` is not installed (the image).
NO_DEVTOOLS_MESSAGE = (
    "drainer {command}: the developer tools (drainer.devtools) are not installed here; "
    "run it from a source checkout with `make {command}`"
)


@cli.callback()
def _root() -> None:
    """Drain database operations from partitioned Redis Streams into PostgreSQL."""


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


@cli.command()
def run(
    config: RunConfigOption = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Drain until every partition is empty, then exit 0.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=MAX_WORKERS,
            help="Consumer processes on this host behind one operator API "
            "(default: [drainer] workers, 1). Kubernetes: keep 1 and scale pods.",
        ),
    ] = None,
) -> None:
    """Run the drainer: the consumer loop and the operator API."""
    from drainer.main import run_drainer
    from drainer.worker_process import WorkerSpec

    try:
        spec = WorkerSpec.from_environ(os.environ)
    except ValueError as exc:
        typer.echo(f"drainer: {exc}", err=True)
        raise typer.Exit(2) from None
    if spec is not None:
        raise typer.Exit(_run_as_worker(spec, config, burst))
    if config is None:
        config = hyperswitch_config_path()
    if config is None and not any(name.startswith(ENV_PREFIX) for name in os.environ):
        # defaults alone would drain Redis db 0 into database `postgres`: never a choice
        typer.echo(NO_SETTINGS_MESSAGE, err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        typer.echo(f"drainer: bad settings: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.telemetry.log_level, settings.telemetry.log_format)
    if config is not None:
        logging.getLogger("drainer.cli").info("settings file: %s", config)
    count = workers if workers is not None else settings.drainer.workers
    try:
        if count == 1:
            code = _run_loop(run_drainer(settings, burst=burst))
        else:
            from drainer.workers import run_workers

            code = _run_loop(run_workers(settings, count=count, burst=burst, config=config))
    except ValueError as exc:  # start-up problems a user must fix (missing schema, bad keys)
        typer.echo(f"drainer: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _run_as_worker(spec: WorkerSpec, config: Path | None, burst: bool) -> int:
    """``drainer run`` as a worker of ``drainer run --workers``: its exit code.

    The parent checked the settings and printed what a user needs; a worker's own
    start-up problem goes to the parent (which says it once), not to stderr N times.
    """
    from drainer.worker_process import STARTUP_FAILED_EXIT, run_worker, tag_logs

    try:
        settings = load_settings(config)
    except SettingsError as exc:
        spec.report_startup_error(f"bad settings: {exc}")
        return STARTUP_FAILED_EXIT
    configure_logging(settings.telemetry.log_level, settings.telemetry.log_format)
    tag_logs(spec.worker)
    try:
        return _run_loop(run_worker(settings, spec, burst=burst))
    except ValueError as exc:
        spec.report_startup_error(str(exc))
        return STARTUP_FAILED_EXIT


RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url", help="Redis to use; default: the settings' Redis, else an embedded one."
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL to use; default: the settings' database, else an embedded one.",
    ),
]


def _require_devtools(command: str) -> None:
    """Exit 2 with one line unless ``drainer.devtools`` can be imported."""
    try:
        # the package's __init__ imports nothing, so only the package itself can be missing
        import drainer.devtools  # noqa: F401
    except ModuleNotFoundError:
        typer.echo(NO_DEVTOOLS_MESSAGE.format(command=command), err=True)
        raise typer.Exit(2) from None


def _server_urls(
    config: Path | None, redis_url: str | None, database_url: str | None
) -> tuple[Settings, str | None, str | None]:
    """The settings, and explicit URLs, else the ones the settings configure (None: unset)."""
    from drainer.devtools.embedded import configured_urls, plain_postgres_url

    try:
        settings = load_settings(config)
    except SettingsError as exc:
        typer.echo(f"drainer: bad settings: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.redis.cluster_enabled and redis_url is None:
        typer.echo(
            "drainer: the demo and the benchmark need a single Redis, not a cluster", err=True
        )
        raise typer.Exit(2)
    from_settings = configured_urls(settings)
    redis = redis_url or from_settings[0]
    database = plain_postgres_url(database_url) if database_url else from_settings[1]
    return settings, redis, database


def _parse_sets(values: list[str]) -> dict[str, int | float | str | bool]:
    parsed: dict[str, int | float | str | bool] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        value: int | float | str | bool = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(raw)
                    break
                except ValueError:
                    continue
        parsed[key.strip()] = value
    return parsed


@cli.command()
def bench(
    entries: Annotated[
        int, typer.Option(min=100, help="Backlog drained by each contender (entries).")
    ] = 500_000,
    partitions: Annotated[int, typer.Option(min=1, help="Partition streams.")] = 64,
    rss_entries: Annotated[
        str,
        typer.Option(help="Backlogs whose peak RSS is compared, comma-separated (entries)."),
    ] = "100000,1000000",
    delay_seconds: Annotated[
        float, typer.Option(min=0, help="Length of the fixed-rate delay run (0 skips it).")
    ] = 20.0,
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes for a smoke run (overrides the sizes).")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    settings_overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A setting of the drainer under test, KEY=VALUE for [drainer] or "
            "SECTION.KEY=VALUE (repeatable).",
        ),
    ] = None,
    profile_dir: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="Record py-spy flame graphs of the drainer's drains into this directory "
            "(slows it down: for finding hot spots, not for numbers).",
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Only these measurements, comma-separated: inserts, mix, tagged, delay, "
            "rss, startup."
        ),
    ] = None,
    delay_rate: Annotated[
        float | None,
        typer.Option(min=1, help="Offered rate of the delay run (default: half the insert rate)."),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            "--workers",
            help="Worker processes of the drainer in the inserts and mix runs "
            "(`run --workers`), comma-separated: each count is measured, e.g. 1,2,4.",
        ),
    ] = "1",
    startup_schema: Annotated[
        Path | None,
        typer.Option(
            "--startup-schema",
            help="SQL (a pg_dump --schema-only) whose tables the startup run reflects; "
            "default: Hyperswitch's 51 tables, tests/fixtures/hyperswitch_schema.sql of "
            "this checkout.",
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Benchmark the drainer against the per-entry baseline and COPY, on the same data.

    Also times start-up until the first read against a schema of many tables (startup).
    """
    import json
    import logging
    import tempfile

    from rich.console import Console

    _require_devtools("bench")
    from drainer.devtools import bench as benchmark
    from drainer.devtools.embedded import EmbeddedError, servers

    drainer_settings = _parse_sets(settings_overrides or [])
    try:
        sizes = tuple(int(part) for part in rss_entries.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("expected integers", param_hint="--rss-entries") from None
    if quick:
        entries, sizes, delay_seconds = (
            benchmark.QUICK_ENTRIES,
            benchmark.QUICK_RSS_ENTRIES,
            min(delay_seconds, benchmark.QUICK_DELAY_S),
        )
    try:
        worker_counts = tuple(int(part) for part in workers.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("expected integers", param_hint="--workers") from None
    if not worker_counts or not all(1 <= n <= MAX_WORKERS for n in worker_counts):
        raise typer.BadParameter(f"expected counts from 1 to {MAX_WORKERS}", param_hint="--workers")
    phases = frozenset(benchmark.PHASES)
    if only is not None:
        phases = frozenset(part.strip() for part in only.split(",") if part.strip())
        unknown = sorted(phases - set(benchmark.PHASES))
        if unknown or not phases:
            raise typer.BadParameter(
                f"expected some of {', '.join(benchmark.PHASES)}", param_hint="--only"
            )
    if "delay" in phases and "inserts" not in phases and delay_rate is None:
        raise typer.BadParameter("the delay run alone needs --delay-rate", param_hint="--only")
    if startup_schema is not None and not startup_schema.is_file():
        raise typer.BadParameter(f"no such file: {startup_schema}", param_hint="--startup-schema")
    startup_schema = startup_schema or benchmark.default_startup_schema()
    if "startup" in phases and startup_schema is None:
        if only is not None:  # asked for by name: say what is missing
            raise typer.BadParameter(
                "the startup run needs a schema outside a source checkout",
                param_hint="--startup-schema",
            )
        phases -= {"startup"}  # by default: every measure this installation can take
    _, redis, database = _server_urls(config, redis_url, database_url)
    console = Console(stderr=True)
    configure_logging("WARNING")
    logging.getLogger("drainer.devtools.embedded").setLevel(logging.INFO)

    def progress(message: str) -> None:
        console.print(f"[dim]bench:[/dim] {message}")

    try:
        with (
            servers(redis, database, label="drainer-bench") as found,
            tempfile.TemporaryDirectory(prefix="drainer-bench-run-") as workdir,
        ):
            options = benchmark.BenchOptions(
                redis_url=found.redis_url,
                database_url=found.database_url,
                entries=entries,
                partitions=partitions,
                rss_entries=sizes,
                delay_s=delay_seconds,
                drainer_settings=drainer_settings,
                workdir=Path(workdir),
                profile_dir=profile_dir,
                phases=phases,
                delay_rate=delay_rate,
                workers=worker_counts,
                startup_schema=startup_schema,
            )
            report = _run_loop(benchmark.run_bench(options, progress))
    except EmbeddedError as exc:
        typer.echo(f"drainer: {exc}", err=True)
        raise typer.Exit(2) from None
    # a report read from a file or a pipe gets the width its table needs
    benchmark.print_report(report, Console(width=None if sys.stdout.isatty() else REPORT_WIDTH))
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")


@cli.command()
def demo(
    duration: Annotated[
        float, typer.Option(min=0.1, help="Seconds the producer runs (unless --count).")
    ] = 20.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Operations to push instead of a duration.")
    ] = None,
    rate: Annotated[float, typer.Option(min=1, help="Operations pushed per second.")] = 1000.0,
    partitions: Annotated[int, typer.Option(min=1, help="Partition streams.")] = 64,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Live panel, or plain periodic lines.")
    ] = True,
    api_port: Annotated[
        int | None,
        typer.Option(help="Serve the operator API on this port during the demo (0: any)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the demo's schema and streams in place.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the workload's random choices.")] = 1,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON here.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Level of the drainer's own logs.")] = "WARNING",
    redis_url: RedisUrlOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Drive a payments workload through the drainer, live, then check every row.

    With no Redis or database configured, embedded servers are started in a
    temporary directory and removed at exit. Exit code 0 when the tables hold
    exactly what the producer intended and the dead letters are exactly the
    malformed entries it wrote; 1 when not; 130 when interrupted.
    """
    import json
    import logging

    from rich.console import Console
    from rich.logging import RichHandler

    _require_devtools("demo")
    from drainer.devtools.demo import DemoOptions, run_demo
    from drainer.devtools.demo_view import LineView, LiveView, print_summary
    from drainer.devtools.embedded import EmbeddedError, servers

    settings, redis, database = _server_urls(config, redis_url, database_url)
    console = Console(highlight=False)
    use_live = live and console.is_terminal
    if use_live:
        handler = RichHandler(console=console, show_path=False)
        logging.basicConfig(level=log_level.upper(), handlers=[handler], force=True)
    else:
        configure_logging(log_level)
    try:
        with servers(redis, database, label="drainer-demo") as found:
            if found.any_embedded:
                what = " and ".join(
                    name
                    for name, on in (
                        ("Redis", found.embedded_redis),
                        ("PostgreSQL", found.embedded_postgres),
                    )
                    if on
                )
                console.print(f"embedded {what} in {found.root}")
            options = DemoOptions(
                redis_url=found.redis_url,
                database_url=found.database_url,
                duration_s=duration,
                count=count,
                rate=rate,
                partitions=partitions,
                api_port=api_port,
                keep=keep,
                seed=seed,
            )
            view = LiveView(console) if use_live else LineView(console)
            with view:
                result = _run_loop(run_demo(options, settings, view))
    except EmbeddedError as exc:
        typer.echo(f"drainer: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("drainer: interrupted", err=True)
        raise typer.Exit(130) from None
    except (OSError, ValueError) as exc:  # a server that cannot be reached, a bad schema
        typer.echo(f"drainer: demo failed: {exc}", err=True)
        raise typer.Exit(2) from None
    if found.root is not None:
        console.print(f"embedded servers stopped, {found.root} removed")
    print_summary(result, console)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    raise typer.Exit(result.exit_code)


@cli.command()
def dialect(
    name: Annotated[
        str, typer.Argument(help="A built-in dialect (hyperswitch) or 'package.module:NAME'.")
    ] = "hyperswitch",
) -> None:
    """Print a dialect's rules: tags, keys, insert nulls, every update variant."""
    from drainer.db.dialects import load_dialect
    from drainer.db.dialects.describe import describe

    try:
        found = load_dialect(name)
    except ValueError as exc:
        typer.echo(f"drainer: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(describe(found), nl=False)


def _load_or_exit(config: Path | None) -> Settings:
    """The settings, or exit 2 printing each problem on its own line."""
    try:
        settings = load_settings(config)
        settings.tenants()
    except SettingsError as exc:
        for problem in exc.problems:
            typer.echo(f"drainer: bad settings: {problem}", err=True)
        raise typer.Exit(2) from None
    return settings


@cli.command()
def check(config: RunConfigOption = None) -> None:
    """Check the settings, then every tenant's Redis and database; print what would drain.

    Read-only: creates no stream, group, consumer or table. Exit 0 when all is well, 1
    with one line per problem (naming the tenant and the server), 2 for bad settings.
    """
    from drainer.check import check as check_tenants

    if config is None:
        config = hyperswitch_config_path()
    settings = _load_or_exit(config)
    configure_logging("ERROR")
    reports = _run_loop(check_tenants(settings))
    problems = [problem for report in reports for problem in report.problems]
    for report in reports:
        typer.echo("\n".join(report.lines()))
    for problem in problems:
        typer.echo(f"drainer: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {len(reports)} tenant(s) ready to drain")


config_cli = typer.Typer(no_args_is_help=True, help="Inspect the settings.")
cli.add_typer(config_cli, name="config")


@config_cli.command("show")
def config_show(
    config: RunConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Every effective setting and where it came from (file, env or default); secrets masked."""
    from drainer.config_show import entries, render_json, render_text

    if config is None:
        config = hyperswitch_config_path()
    settings = _load_or_exit(config)
    found = entries(settings, config, os.environ)
    typer.echo(render_json(found) if as_json else render_text(found), nl=False)


def hyperswitch_argv(args: list[str]) -> list[str]:
    """``args`` with ``run`` put first where Hyperswitch's drainer binary would run.

    That binary has no subcommands: ``drainer -f FILE`` (``--config-path FILE``) runs it,
    and so does a bare ``drainer`` (its images' default command), which then reads
    ``$CONFIG_DIR/<RUN_ENV file>``. A bare ``drainer`` runs only when that file exists;
    else it prints the help, as before.
    """
    if not args:
        return ["run"] if hyperswitch_config_path() is not None else args
    first = args[0]
    if (
        first in HYPERSWITCH_FLAGS
        or first.startswith("--config-path=")
        or (first.startswith("-f") and not first.startswith("--"))
    ):
        return ["run", *args]
    return args


def main() -> None:
    """Console-script entry point."""
    cli(args=hyperswitch_argv(sys.argv[1:]), prog_name="drainer")


if __name__ == "__main__":  # pragma: no cover
    main()
