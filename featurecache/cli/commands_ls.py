"""``featurecache ls``: the artifacts in the cache."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

from featurecache.cli.output import JsonOption, human_bytes, human_time, print_json, print_table


class SortBy(str, Enum):
    size = "size"
    created = "created"
    used = "used"


def list_artifacts(feature: str | None = None, sort: str = "created") -> list[dict[str, Any]]:
    """The rows ``featurecache ls`` shows (library function; the CLI only renders them)."""
    from featurecache.cli.context import open_catalog

    catalog = open_catalog()
    try:
        rows = []
        for artifact, features in catalog.list_artifacts(feature=feature, sort=sort):
            rows.append(
                {
                    "artifact_id": artifact.artifact_id,
                    "feature": ", ".join(features),
                    "rows": artifact.rows,
                    "columns": artifact.columns,
                    "size_bytes": artifact.size_bytes,
                    "created_at": artifact.created_at,
                    "last_used_at": artifact.last_used_at,
                    "hits": artifact.hits,
                    "pinned": artifact.pinned,
                    "compute_seconds": artifact.compute_seconds,
                    "uri": artifact.uri,
                }
            )
        return rows
    finally:
        catalog.close()


def ls(
    feature: str = typer.Option(None, "--feature", help="Only artifacts of this feature."),
    sort: SortBy = typer.Option(SortBy.created, "--sort", help="Order: size, created or used."),
    as_json: bool = JsonOption,
) -> None:
    """List artifacts: feature, short id, rows, size, created, last used, hits, pinned."""
    rows = list_artifacts(feature, sort.value)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} artifacts",
        ["feature", "artifact", "rows", "size", "created", "last used", "hits", "pinned"],
        [
            [
                r["feature"],
                r["artifact_id"][:12],
                f"{r['rows']:,}",
                human_bytes(r["size_bytes"]),
                human_time(r["created_at"]),
                human_time(r["last_used_at"]),
                r["hits"],
                "yes" if r["pinned"] else "",
            ]
            for r in rows
        ],
    )


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
