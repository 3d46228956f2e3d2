"""``featurecache clear FEATURE [--dry-run]``: drop every cache entry of one feature, so its
next call recomputes; its artifacts are left to ``featurecache gc``."""

from __future__ import annotations

from typing import Annotated

import typer

from featurecache.cli.output import JsonFlag, print_json

DryRunFlag = Annotated[
    bool, typer.Option("--dry-run", help="Say what would be dropped; change nothing.")
]


def clear(
    feature: Annotated[
        str, typer.Argument(metavar="FEATURE", help="The feature's name (see featurecache stats).")
    ],
    dry_run: DryRunFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Drop every cache entry of FEATURE (all its keys: every code version and argument set),
    so that its next call recomputes. Artifacts are not deleted here: other features may
    share them, and featurecache gc collects the ones left unused."""
    from featurecache.cli.context import catalog_session
    from featurecache.errors import UnknownFeatureError

    with catalog_session() as catalog:
        result = catalog.clear_feature(feature, dry_run=dry_run)
    if not result.known:
        raise UnknownFeatureError(feature)
    if as_json:
        print_json(result.to_json())
        return
    if not result.entries:
        typer.echo(f"{feature}: no cache entries to drop (already cleared or collected)")
        return
    verb = "would drop" if dry_run else "dropped"
    entries = "entry" if result.entries == 1 else "entries"
    typer.echo(
        f"{feature}: {verb} {result.entries} {entries} ({result.artifacts} artifacts, "
        f"{result.unreferenced} of them named by no other feature's entry: "
        "featurecache gc collects them by its policies)"
    )


def register(app: typer.Typer) -> None:
    app.command("clear")(clear)
