"""What ``drainer demo`` shows: a live panel on a terminal, plain lines elsewhere, a summary."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from drainer.devtools.demo import DemoOptions, DemoResult, DemoStats

#: Refreshes of the live panel per second.
LIVE_REFRESH_PER_S = 4
#: Seconds between two progress lines without the live panel.
LINE_INTERVAL_S = 2.0
#: Eighths of a block, for the backlog bar (one character per partition).
BLOCKS = "▁▂▃▄▅▆▇█"
#: Characters of a dead letter's message the summary shows.
SHOWN_ERROR_CHARS = 90


def backlog_bar(backlog: list[int]) -> Text:
    """One character per partition, its height the partition's backlog (scaled to the max)."""
    bar = Text()
    top = max(backlog, default=0)
    for length in backlog:
        if length == 0:
            bar.append("·", style="dim")
            continue
        level = min(len(BLOCKS) - 1, (length * len(BLOCKS) - 1) // max(top, 1))
        bar.append(
            BLOCKS[level], style="red" if level >= 6 else "yellow" if level >= 3 else "green"
        )
    return bar


def _progress(stats: DemoStats, options: DemoOptions) -> str:
    if options.count is not None:
        return f"{stats.pushed:,} of {options.count:,} ops"
    shown = min(stats.elapsed_s, options.duration_s) if stats.producing else stats.elapsed_s
    return f"{shown:5.1f} s of {options.duration_s:.0f} s"


class LiveView:
    """A rich live panel, refreshed a few times a second."""

    interval_s = 1 / LIVE_REFRESH_PER_S

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, refresh_per_second=LIVE_REFRESH_PER_S, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def update(self, stats: DemoStats, options: DemoOptions, *, final: bool = False) -> None:
        """Redraw the panel from the current counters."""
        rate = stats.drain_rate()
        p50, p99 = stats.recent_percentiles()
        backlog = stats.backlog
        grid = Table.grid(padding=(0, 3))
        for _ in range(6):
            grid.add_column(justify="right")
        dead = stats.outcomes.get("dead", 0)
        grid.add_row(
            "pushed", f"[bold]{stats.pushed:,}[/]",
            "drained", f"[bold]{stats.drained:,}[/]",
            "backlog", f"[bold]{sum(backlog):,}[/]",
        )  # fmt: skip
        grid.add_row(
            "drain rate", f"{rate:,.0f}/s",
            "delay p50", f"{p50:,.0f} ms",
            "delay p99", f"{p99:,.0f} ms",
        )  # fmt: skip
        grid.add_row(
            "dead letters", f"[{'yellow' if dead else 'green'}]{dead}[/]",
            "malformed sent", f"{stats.malformed_pushed}",
            "producer", "done" if not stats.producing else f"{options.rate:,.0f} ops/s",
        )  # fmt: skip
        bar = Text.assemble(
            (f"backlog per partition (max {max(backlog, default=0):,}) ", "dim"),
            backlog_bar(backlog),
        )
        state = "finished" if final else _progress(stats, options)
        panel = Panel(
            Group(grid, Text(""), bar),
            title=f"drainer demo · {state}",
            subtitle=f"{options.partitions} partitions",
            expand=False,
        )
        self.live.update(panel, refresh=True)


class LineView:
    """Plain progress lines (no terminal, CI, or ``--no-live``)."""

    interval_s = 0.25

    def __init__(self, console: Console) -> None:
        self.console = console
        self._last = 0.0

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, stats: DemoStats, options: DemoOptions, *, final: bool = False) -> None:
        """Print a progress line every few seconds (and a last one)."""
        rate = stats.drain_rate()
        now = time.monotonic()
        if not final and now - self._last < LINE_INTERVAL_S:
            return
        self._last = now
        p50, p99 = stats.recent_percentiles()
        self.console.print(
            f"{'done' if final else _progress(stats, options)}: pushed {stats.pushed:,}, "
            f"drained {stats.drained:,}, backlog {sum(stats.backlog):,}, "
            f"{rate:,.0f}/s, delay p50 {p50:,.0f} ms p99 {p99:,.0f} ms, "
            f"dead letters {stats.outcomes.get('dead', 0)}",
            highlight=False,
        )


def print_summary(result: DemoResult, console: Console) -> None:
    """The end of the run: totals, rates, dead letters and the final check."""
    kinds = result.kinds
    applied = result.outcomes.get("applied", 0) + result.outcomes.get("existed", 0)
    seconds = max(result.seconds, 1e-9)
    totals = Table.grid(padding=(0, 2))
    totals.add_column()
    totals.add_column(justify="right")
    totals.add_column()
    totals.add_row(
        "pushed",
        f"{result.pushed:,}",
        f"{kinds.get('insert', 0):,} inserts, {kinds.get('update', 0):,} updates, "
        f"{kinds.get('delete', 0):,} deletes, {result.malformed} malformed",
    )
    totals.add_row(
        "drained",
        f"{result.drained:,}",
        f"{applied:,} applied, {result.outcomes.get('dead', 0)} dead-lettered, "
        f"{result.backlog_left:,} left in the streams",
    )
    totals.add_row(
        "rates",
        f"{result.pushed / seconds:,.0f}/s",
        f"pushed, {result.drained / seconds:,.0f}/s drained on average over "
        f"{result.seconds:.1f} s, peak {result.peak_rate:,.0f}/s",
    )
    totals.add_row(
        "drainer delay",
        f"{result.delay_p50_ms:,.0f} ms",
        f"p50, p90 {result.delay_p90_ms:,.0f} ms, p99 {result.delay_p99_ms:,.0f} ms, "
        f"max {result.delay_max_ms:,.0f} ms (append to commit)",
    )
    console.print(Panel(totals, title="summary", expand=False))

    letters = Table(title="dead letters", title_justify="left")
    letters.add_column("entry")
    letters.add_column("error class")
    letters.add_column("reason")
    letters.add_column("intended as")
    for d in result.dead_letters:
        error = d.error if len(d.error) <= SHOWN_ERROR_CHARS else d.error[:SHOWN_ERROR_CHARS] + "…"
        intended = (
            f"[green]{d.intended}[/]"
            if d.intended and d.error_class == d.expected_class
            else f"[red]{d.intended or 'not intended'} (expected {d.expected_class})[/]"
        )
        letters.add_row(d.source_id, d.error_class, error, intended)
    console.print(letters)

    if result.interrupted:
        console.print("[yellow]interrupted: the final check was skipped[/]")
        return
    check = Table(title="final check: tables against what the producer intended",
                  title_justify="left")  # fmt: skip
    check.add_column("table")
    check.add_column("intended rows", justify="right")
    check.add_column("rows found", justify="right")
    check.add_column("result")
    for t in result.tables:
        if t.ok:
            verdict = "[green]match[/]"
        else:
            verdict = (
                f"[red]{len(t.missing)} missing, {len(t.unexpected)} unexpected, "
                f"{len(t.different)} different[/] e.g. "
                + ", ".join((t.missing + t.unexpected + t.different)[:3])
            )
        check.add_row(t.table, f"{t.expected:,}", f"{t.found:,}", verdict)
    console.print(check)
    letters_ok = "[green]as intended[/]" if result.dead_letters_ok else "[red]not as intended[/]"
    console.print(
        f"dead letters: {len(result.dead_letters)} of {result.malformed} malformed entries, "
        f"{letters_ok}"
    )
    if not result.drained_in_time:
        console.print("[red]the drainer did not catch up in time[/]")
    console.print(
        "[bold green]PASS[/]: the database holds exactly what the producer intended"
        if result.passed
        else "[bold red]FAIL[/]: the database does not hold what the producer intended"
    )
