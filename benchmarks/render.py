"""Print a benchmark run's tables and target lines on the console (rich) and as Markdown."""

from __future__ import annotations

from typing import Any

from report import aux_tables, call_table, notes
from small import table as small_table
from stream import table as stream_table


def _aux(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = aux_tables(summary)
    if "summary" in summary.get("small", {}):
        tables.append(small_table(summary["small"]["summary"]))
    return tables


def _targets_console(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    marks = Table(title="Targets")
    for name in ("target", "measured", "goal", ""):
        marks.add_column(name)
    for t in summary["targets"]:
        style = {True: "green", False: "red"}.get(t["ok"], "yellow")
        marks.add_row(t["target"], t["measured"], t["goal"], f"[{style}]{_mark(t['ok'])}[/{style}]")
    return marks


def render_small_console(summary: dict[str, Any]) -> None:
    """``run.py --small``: the small-data table and its targets."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    title, cols, body = small_table(summary["small"]["summary"])
    table = Table(title=title)
    for i, name in enumerate(cols):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in body:
        table.add_row(*row)
    console.print(table)
    console.print(_targets_console(summary))
    console.print(
        f"machine: {summary['machine_line']}; load average {summary['load_start']} → {summary['load_end']}",
        highlight=False,
    )


def render_small_markdown(summary: dict[str, Any]) -> str:
    title, cols, body = small_table(summary["small"]["summary"])
    parts = [
        f"### small-data run, {summary['finished']}",
        "",
        f"Machine: {summary['machine_line']}. Load average {summary['load_start']} → {summary['load_end']}.",
        "",
        f"**{title}**",
        "",
        _md_table(cols, body),
        "",
        "**Targets**",
        "",
        _md_table(
            ["target", "measured", "goal", ""],
            [[t["target"], t["measured"], t["goal"], _mark(t["ok"])] for t in summary["targets"]],
        ),
    ]
    return "\n".join(parts) + "\n"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def render_console(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    head, rows = call_table(summary)
    table = Table(
        title=f"Feature call, {summary['rows']:,} rows (median of n fresh processes; hits are warm-cache)"
    )
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for title, cols, body in _aux(summary):
        extra = Table(title=title)
        for i, name in enumerate(cols):
            extra.add_column(name, justify="left" if i == 0 else "right")
        for row in body:
            extra.add_row(*row)
        console.print(extra)
    for line in _stream_lines(summary):
        console.print(line, highlight=False)
    console.print(_targets_console(summary))
    for line in notes(summary):
        console.print("• " + line, highlight=False)
    console.print(
        f"machine: {summary['machine_line']}; load average {summary['load_start']} → {summary['load_end']}",
        highlight=False,
    )


def _stream_lines(summary: dict[str, Any]) -> list[str]:
    """The streaming table (``stream.py``), when it ran."""
    stream = summary.get("stream", {})
    if "summary" in stream:
        return ["", "Streaming an artifact to a training loop", "", *stream_table(stream), ""]
    if "error" in stream:
        return [f"streaming: ERROR {stream['error'][:300]}"]
    return []


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any]) -> str:
    parts = [
        f"### {summary['mode']} run, {summary['rows']:,} rows, {summary['finished']}",
        "",
        f"Machine: {summary['machine_line']}. Load average {summary['load_start']} → {summary['load_end']}. "
        f"Each scenario ran {summary['repeat']}× in fresh processes; times are medians, ratios the "
        "median of per-round ratios; hits are warm-cache.",
        "",
        _md_table(*call_table(summary)),
    ]
    for title, cols, body in _aux(summary):
        parts += ["", f"**{title}**", "", _md_table(cols, body)]
    parts += _stream_lines(summary)
    parts += [
        "",
        "**Targets**",
        "",
        _md_table(
            ["target", "measured", "goal", ""],
            [[t["target"], t["measured"], t["goal"], _mark(t["ok"])] for t in summary["targets"]],
        ),
    ]
    parts += [""] + [f"- {line}" for line in notes(summary)]
    return "\n".join(parts) + "\n"
