"""``featurecache why FEATURE``: why the latest call of a feature hit or missed."""

from __future__ import annotations

import typer

from featurecache.cli.output import JsonOption, print_json, print_table


def why(
    feature: str = typer.Argument(..., help="The feature's name (see featurecache ls)."),
    as_json: bool = JsonOption,
) -> None:
    """List every component of FEATURE's latest key and say what changed since the previous key."""
    from featurecache.cli.context import open_catalog
    from featurecache.ops.why import why_in_catalog

    catalog = open_catalog()
    try:
        report = why_in_catalog(catalog, feature)
    finally:
        catalog.close()
    if as_json:
        print_json(report.to_json())
        return
    typer.echo(
        f"{feature}: key {report.latest.key_id[:12]} → artifact {report.latest.artifact_id[:12]}"
    )
    typer.echo(report.explanation.summary)
    if report.explanation.changes:
        for message in report.explanation.messages():
            typer.echo(f"  - {message}")
    print_table(
        "key components",
        ["kind", "name", "value", "detail"],
        [[row.kind, row.name, row.value, row.detail] for row in report.components],
    )


def register(app: typer.Typer) -> None:
    app.command("why")(why)
