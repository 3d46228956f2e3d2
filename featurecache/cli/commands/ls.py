"""``featurecache ls``: the artifacts in the cache."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from featurecache.cli.output import (
    JsonFlag,
    human_age,
    human_bytes,
    plural,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from featurecache.catalog.facade import ArtifactSort

# A table of more rows than this is not read by anyone, and rendering it takes long.
TABLE_LIMIT = 100


class SortBy(StrEnum):
    size = "size"
    created = "created"
    used = "used"


def ls(
    feature: Annotated[
        str | None,
        typer.Option("--feature", metavar="NAME", help="Only artifacts of this feature."),
    ] = None,
    sort: Annotated[
        SortBy,
        typer.Option(
            "--sort", help="Order: largest (size), newest (created) or last used (used) first."
        ),
    ] = SortBy.created,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=0,
            metavar="N",
            help=f"Show the first N (0: all). Default: {TABLE_LIMIT} in a table, all with --json.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List artifacts, newest first: feature, short id, the arguments of the call that made it
    (plain values and file names not at their defaults), rows, size, age, last use, hits,
    pinned. A composite result (a tuple, dict, Series...) is one line, its parts counted
    under rows."""
    from featurecache.cli.context import catalog_session, echo_header, load, location_of
    from featurecache.ops.arg_summary import argument_values, newest_components, summaries
    from featurecache.ops.inventory import COMPOSITE, list_artifacts, short_id

    if limit is None:
        limit = 0 if as_json else TABLE_LIMIT
    settings = load()
    location = location_of(settings)
    with catalog_session(settings) as catalog:
        inventory = list_artifacts(catalog, feature, sort.value, limit=limit or None)
        ids = [row.artifact_id for row in inventory.rows]
        if as_json:
            components = newest_components(catalog, ids)
        else:
            args = summaries(catalog, ids)
    if as_json:
        # An array, as always (scripts index it); each row names the catalog it is from, its
        # ``uri`` the stored file, and ``args`` the arguments of the call that made it.
        rows = inventory.to_json()
        for row in rows:  # fresh dicts: set in place, 100k rows are not copied
            row["catalog"] = location.catalog
            row["args"] = argument_values(components[row["artifact_id"]])
        print_json(rows)
        return
    echo_header(location)
    shown = len(inventory.rows)
    more = inventory.total - shown
    # The structure column only when the page holds a composite: most caches have none.
    composites = any(row.kind == COMPOSITE for row in inventory.rows)
    # With --feature, the title names it and the room goes to the arguments.
    title = plural(inventory.total, "artifact") + (f" of {feature}" if feature else "")
    columns = ["artifact", "args", "rows", "size", "created", "used", "hits", "pin"]
    print_table(
        title,
        ([] if feature else ["feature"]) + columns + (["composite"] if composites else []),
        [
            ([] if feature else [row.feature])
            + [
                short_id(row.artifact_id),
                args.get(row.artifact_id) or "",
                plural(row.columns, "part") if row.kind == COMPOSITE else f"{row.rows:,}",
                human_bytes(row.size_bytes),
                human_age(row.created_at),
                human_age(row.last_used_at),
                row.hits,
                "yes" if row.pinned else "",
            ]
            + ([row.summary or ""] if composites else [])
            for row in inventory.rows
        ],
        caption=f"the first {shown:,}; {more:,} more with --limit 0" if more > 0 else None,
        shrink=("feature", "args", "composite"),
    )


def list_artifacts(feature: str | None = None, sort: str = "created") -> list[dict[str, Any]]:
    """Every artifact of the configured cache as the JSON objects ``ls --json`` prints (kept for
    scripts and tests; the library function is ``featurecache.ops.inventory.list_artifacts``)."""
    from featurecache.cli.context import catalog_session
    from featurecache.ops import inventory

    with catalog_session() as catalog:
        return inventory.list_artifacts(catalog, feature, cast("ArtifactSort", sort)).to_json()


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
