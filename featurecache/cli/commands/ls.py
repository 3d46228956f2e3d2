"""``featurecache ls``: the artifacts in the cache."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from featurecache.cli.output import (
    JsonFlag,
    human_bytes,
    human_time,
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
    """List artifacts: feature, short id, rows, size, created, last used, hits, pinned. A
    composite result (a tuple, dict, Series...) is one line, its parts counted under rows."""
    from featurecache.cli.context import catalog_session
    from featurecache.ops.inventory import COMPOSITE, list_artifacts, short_id

    if limit is None:
        limit = 0 if as_json else TABLE_LIMIT
    with catalog_session() as catalog:
        inventory = list_artifacts(catalog, feature, sort.value, limit=limit or None)
    if as_json:
        print_json(inventory.to_json())
        return
    shown = len(inventory.rows)
    more = inventory.total - shown
    # The structure column only when the page holds a composite: most caches have none.
    composites = any(row.kind == COMPOSITE for row in inventory.rows)
    print_table(
        plural(inventory.total, "artifact"),
        ["feature", "artifact", "rows", "size", "created", "last used", "hits", "pinned"]
        + (["composite"] if composites else []),
        [
            [
                row.feature,
                short_id(row.artifact_id),
                plural(row.columns, "part") if row.kind == COMPOSITE else f"{row.rows:,}",
                human_bytes(row.size_bytes),
                human_time(row.created_at),
                human_time(row.last_used_at),
                row.hits,
                "yes" if row.pinned else "",
            ]
            + ([row.summary or ""] if composites else [])
            for row in inventory.rows
        ],
        caption=f"the first {shown:,}; {more:,} more with --limit 0" if more > 0 else None,
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
