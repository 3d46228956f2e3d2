"""Output shared by every command: the one ``--json`` option (JSON on stdout and nothing else;
a listing prints an array, a single report an object), rich tables otherwise, human units, and
a progress bar on stderr for long runs (only on a terminal, never with ``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from featurecache.ops.progress import Progress

JSON_HELP = "Print JSON on stdout (and nothing else)."
# Every listing takes this, spelled ``as_json: JsonFlag = False``.
JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
# The same option as a default value, for commands written in that style.
JsonOption = typer.Option(False, "--json", help=JSON_HELP)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """Indented for a terminal; compact for a pipe (C-encoded: 100k rows in a blink)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, default=_default, indent=indent) + "\n")


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def plural(count: int, noun: str) -> str:
    """``1 artifact``, ``2 artifacts``, ``1,000 artifacts``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def human_time(when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.strftime("%Y-%m-%d %H:%M")


def human_seconds(seconds: float | None) -> str:
    """``0.35s``, ``12.5s``, ``3m20s``, ``2h05m``, ``1d03h``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    whole = int(seconds)
    for size, unit, next_size, next_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "m"),
        (60, "m", 1, "s"),
    ):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // next_size:02d}{next_unit}"
    return f"{whole}s"  # pragma: no cover - every value >= 60 matched above


class _RichProgress:
    """``admin.progress.Progress`` drawn by rich: one bar per phase."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self._task: Any = None

    def start(self, description: str, total: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total)
        # A phase with nothing to do draws no bar.
        self._task = self._bar.add_task(description, total=total) if total > 0 else None

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, steps)


class _Silent:
    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, steps: int = 1) -> None:
        return None


@contextmanager
def progress_bar(as_json: bool) -> Iterator[Progress]:
    """A progress bar on stderr when it is a terminal and the output is not JSON."""
    if as_json or not sys.stderr.isatty():
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        yield _RichProgress(bar)
