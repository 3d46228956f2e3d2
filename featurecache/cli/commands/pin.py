"""``featurecache pin REF`` / ``unpin REF``: pinned artifacts survive every GC policy."""

from __future__ import annotations

from typing import Annotated

import typer

from featurecache.cli.output import JsonFlag, print_json

RefArgument = Annotated[
    str,
    typer.Argument(metavar="REF", help="An artifact id or a unique prefix of one."),
]


def _set(ref: str, pinned: bool, as_json: bool) -> None:
    from featurecache.cli.context import catalog_session, echo_header, load, location_of, with_cache
    from featurecache.ops.inventory import set_pinned, short_id

    settings = load()
    with catalog_session(settings) as catalog:
        row = set_pinned(catalog, ref, pinned)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(row.to_json(), location))
        return
    echo_header(location)
    state = "pinned" if pinned else "unpinned"
    typer.echo(f"{state} {short_id(row.artifact_id)} ({row.feature or 'no feature'})")


def pin(ref: RefArgument, as_json: JsonFlag = False) -> None:
    """Pin an artifact: no GC policy deletes it until it is unpinned."""
    _set(ref, True, as_json)


def unpin(ref: RefArgument, as_json: JsonFlag = False) -> None:
    """Unpin an artifact: GC policies apply to it again."""
    _set(ref, False, as_json)


def register(app: typer.Typer) -> None:
    app.command("pin")(pin)
    app.command("unpin")(unpin)
