"""``featurecache check-serving RUN_ID --module PKG``: the train/serve skew guard. Exit 0 when
the code of every feature the run used is the code imported now, 1 when one differs, 2 when one
cannot be checked (the library half is ``integrations/mlflow/serving.py`` and ``ops/skew.py``)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, cast

import typer

from featurecache.cli.output import JsonFlag, print_json, print_table

if TYPE_CHECKING:
    from featurecache.integrations.mlflow.serving import SourceChoice
    from featurecache.ops.skew import SkewReport


def check_serving(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The MLflow run the model was trained in.")
    ],
    modules: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            "-m",
            metavar="MODULE",
            help="Import this module first, to define the features (repeatable).",
        ),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help=(
                "Where to read what the run used: auto (the catalog, else MLflow), catalog or "
                "mlflow."
            ),
        ),
    ] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Compare the code of every feature RUN_ID used with the code this process imports now,
    naming each change the way `why` does ("helper `clean_ts` changed"). Exit code 0 when all
    are the same, 1 when one differs, 2 when one is not defined by the --module imports."""
    from featurecache.cli.context import echo_header, load, location_of, with_cache
    from featurecache.integrations.mlflow.serving import SOURCES
    from featurecache.integrations.mlflow.serving import check_serving as run_check

    if source not in SOURCES:
        raise typer.BadParameter(
            f"{source!r} is not one of {', '.join(SOURCES)}", param_hint="--source"
        )
    # As `python -m` does: modules of the project in the working directory are importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # MLflow draws a progress bar on stderr for every download (the run's manifest).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = load()
    report = run_check(run_id, modules=modules or [], source=cast("SourceChoice", source))
    location = location_of(settings)
    if as_json:
        print_json(with_cache(report.to_json(), location))
    else:
        echo_header(location)
        _print_report(report)
    if report.unchecked:
        report.raise_for_skew()  # one line on stderr, exit 2
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _print_report(report: SkewReport) -> None:
    typer.echo(f"run {report.run_id}: features read from {report.source}")
    print_table(
        "code trained with vs code served now",
        ["feature", "trained", "serving", "status", "explanation"],
        [
            [
                row.feature,
                (row.trained_digest or "-")[:8],
                (row.serving_digest or "-")[:8],
                row.status,
                row.explanation,
            ]
            for row in report.rows
        ],
        shrink=("explanation",),
    )
    for row in report.rows:
        if row.status in ("same", "missing"):  # a missing feature is named by the error line
            continue
        typer.echo(f"{row.feature} ({row.status}):")
        for line in [change.message for change in row.changes] or [row.explanation]:
            typer.echo(f"  - {line}")
    counts = {status: 0 for status in ("same", "differs", "missing", "unknown")}
    for row in report.rows:
        counts[row.status] += 1
    typer.echo(", ".join(f"{count} {status}" for status, count in counts.items() if count))


def register(app: typer.Typer) -> None:
    app.command("check-serving")(check_serving)
