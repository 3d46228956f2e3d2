"""Cheap descriptions of frames for input fingerprints: shape and Arrow schema, including for
frames carried over from the cache (whose content is not read again)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from featurecache.frames import describe_schema, newest_polars_compat


def schema_of(table: pa.Table | pa.Schema) -> list[dict[str, Any]]:
    return describe_schema(table)


def frame_shape(value: Any, table: pa.Table) -> tuple[int, int]:
    """(rows, columns) as the user sees them: a pandas index is not a column."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2:
        return int(shape[0]), int(shape[1])
    return table.num_rows, table.num_columns


def carried_schema(value: Any, kind: str) -> tuple[list[dict[str, Any]] | None, int | None]:
    """Schema and row count of a frame handed out by the cache, without reading its data."""
    if kind == "arrow":
        return describe_schema(value), int(value.num_rows)
    import polars as pl

    if kind == "polars":
        return describe_schema(value.to_arrow(compat_level=newest_polars_compat())), value.height
    empty = pl.DataFrame(schema=value.collect_schema())  # a LazyFrame: the schema, no rows read
    return describe_schema(empty.to_arrow(compat_level=newest_polars_compat())), None
