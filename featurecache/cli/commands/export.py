"""``featurecache export REF --dvc PATH``: an artifact into a DVC project, pinned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featurecache.cli.output import JsonFlag, human_bytes, print_json


def export(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="An artifact id, a unique prefix of one, or a feature name (its latest artifact).",
        ),
    ],
    dvc: Annotated[
        Path,
        typer.Option(
            "--dvc",
            metavar="PATH",
            help="Where to import it inside a DVC project (a file path, or an existing folder).",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Import an artifact into a DVC project as `dvc import-url` does (a frozen .dvc file
    recording its md5), and pin it so no GC policy deletes it."""
    from featurecache.cli.context import cache_session, echo_header, load, location_of, with_cache
    from featurecache.integrations.dvc.export import export_to_dvc

    settings = load()
    with cache_session(settings) as (catalog, store):
        result = export_to_dvc(catalog, store, ref, dvc)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(result.to_json(), location))
        return
    echo_header(location)
    typer.echo(
        f"exported {result.artifact_id[:12]} ({result.feature or 'no feature'}, "
        f"{human_bytes(result.size_bytes)}) to {result.path}; pinned"
    )
    typer.echo(f"track it in git: git add {result.dvc_file}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
