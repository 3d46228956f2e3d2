"""Output shared by every command: the one ``--json`` option (JSON on stdout and nothing else;
a listing prints an array, a single report an object), rich tables otherwise, human units, and
a progress bar on stderr for long runs (only on a terminal, never with ``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator, Sequence
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


COLUMN_GAP = 2
MIN_SHRUNK = 8


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str | None = None,
    shrink: Collection[str] = (),
) -> None:
    """A table that fits the terminal (80 columns in a pipe, or ``COLUMNS``), one line per
    row: only the ``shrink`` columns (free text: names, values, details) are cut, with ``…``;
    every other column (short ids, numbers, sizes, times) keeps its full width."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    for line in table_lines(title, columns, rows, console.width, caption=caption, shrink=shrink):
        console.print(line, markup=False, emoji=False)


def table_lines(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    width: int,
    *,
    caption: str | None = None,
    shrink: Collection[str] = (),
) -> list[str]:
    """The lines of ``print_table``, fitted to ``width`` cells."""
    from rich.cells import cell_len

    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    natural = [
        max([cell_len(column), *(cell_len(row[i]) for row in cells)])
        for i, column in enumerate(columns)
    ]
    widths = _fit(natural, [column in shrink for column in columns], width)
    lines = [title]
    lines.append(_line([_cut(c, w) for c, w in zip(columns, widths, strict=True)], widths))
    lines.append("─" * min(width, sum(widths) + COLUMN_GAP * (len(widths) - 1)))
    lines.extend(
        _line([_cut(c, w) for c, w in zip(row, widths, strict=True)], widths) for row in cells
    )
    if caption:
        lines.append(caption)
    return lines


def _fit(natural: list[int], shrinkable: list[bool], width: int) -> list[int]:
    """Column widths: fixed columns whole; the room left shared among the shrinkable ones in
    proportion to their natural widths (at least ``MIN_SHRUNK`` each), none wider than it
    needs, what one does not need going to the others."""
    room = width - COLUMN_GAP * (len(natural) - 1)
    room -= sum(w for w, flex in zip(natural, shrinkable, strict=True) if not flex)
    widths = list(natural)
    pending = [i for i, flex in enumerate(shrinkable) if flex]
    while pending:
        wanted = sum(natural[i] for i in pending)
        if wanted <= room:
            break  # every one fits whole
        floor = {i: min(natural[i], MIN_SHRUNK) for i in pending}
        spare = max(room - sum(floor.values()), 0)
        above = sum(natural[i] - floor[i] for i in pending)
        share = {i: floor[i] + spare * (natural[i] - floor[i]) // max(above, 1) for i in pending}
        satisfied = [i for i in pending if share[i] >= natural[i]]
        if not satisfied:
            for i in pending:
                widths[i] = share[i]
            break
        for i in satisfied:
            room -= natural[i]
            pending.remove(i)
    return widths


def _cut(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + "…"


def _line(cells: list[str], widths: list[int]) -> str:
    from rich.cells import set_cell_size

    padded = [set_cell_size(cell, width) for cell, width in zip(cells, widths, strict=True)]
    return (" " * COLUMN_GAP).join(padded).rstrip()


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


def human_age(when: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in at most four characters: ``now``, ``45s``, ``12m``, ``3h``, ``5d``,
    ``8w``, ``2y`` (the exact times are in ``--json``)."""
    if when is None:
        return "-"
    from datetime import UTC

    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (now - when).total_seconds()
    if seconds < 1:
        return "now"
    for size, unit in ((365 * 86400, "y"), (7 * 86400, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


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
