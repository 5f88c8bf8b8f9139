"""The ``drainer`` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from app.settings import SettingsError, load_settings
from app.telemetry import configure_logging

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


@cli.callback()
def _root() -> None:
    """Drain database operations from partitioned Redis Streams into PostgreSQL."""


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


@cli.command()
def run(
    config: ConfigOption = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Drain until every partition is empty, then exit 0.")
    ] = False,
) -> None:
    """Run the drainer: the consumer loop and the operator API."""
    from app.lifecycle import run_drainer

    try:
        settings = load_settings(config)
    except SettingsError as exc:
        typer.echo(f"drainer: bad settings: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.telemetry.log_level, settings.telemetry.log_format)
    try:
        code = _run_loop(run_drainer(settings, burst=burst))
    except ValueError as exc:  # start-up problems a user must fix (missing schema, bad keys)
        typer.echo(f"drainer: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="drainer")


if __name__ == "__main__":  # pragma: no cover
    main()
