"""pandas and polars Series of a composite result, each stored as a one-column frame.

* pandas: the Series as a one-column frame through ``frames.frame_to_arrow`` (pandas'
  metadata keeps the index, MultiIndex, categorical / nullable / tz-aware / string dtypes and an
  index ``freq``). The structure keeps the name (any scalar or tuple of scalars: ``to_frame``
  would turn a None name into the label 0), and what pandas' metadata loses: an ``object``
  dtype of the values or of an index level (pandas 3 reads Arrow strings back as ``str``), the
  dtype of a categorical's categories, and which missing values of an object Series were not
  None (Arrow has one null).
* polars: the one-column polars frame (the dtype); the name is in the structure too, as
  polars reads a column named "" back as "column_0".
"""

from __future__ import annotations

from typing import Any, cast

import pyarrow as pa

from featurecache.frames import FrameConversionError, frame_to_arrow
from featurecache.results.leaf import RefusedLeaf, text_in, text_out
from featurecache.results.scalars import decode_scalar, encode_scalar, is_scalar


def split_pandas_series(series: Any) -> tuple[dict[str, Any], pa.Table]:
    """The structure node (without its part index) and the table of a pandas Series."""
    column = _column_label(series)
    try:
        table = frame_to_arrow(series.to_frame(name=column), "pandas")
    except FrameConversionError as exc:
        raise RefusedLeaf(
            f"pandas.Series of dtype {series.dtype} that Arrow cannot represent ({exc.detail})",
            "give it one type first (e.g. series.astype(str) or series.astype(float))",
        ) from exc
    node: dict[str, Any] = {
        "t": "pandas.Series",
        "dtype": str(series.dtype),
        "length": len(series),
        "name": _encode_name(series.name),
        "index_object": [str(dtype) == "object" for dtype in _level_dtypes(series.index)],
    }
    if series.dtype == object:
        node["missing"] = _missing_kinds(series)
    if str(series.dtype) == "category":
        # Arrow gives empty or all-null categories back as object, object ones back as str.
        node["categories_dtype"] = str(series.dtype.categories.dtype)
        node["ordered"] = bool(series.dtype.ordered)
    return node, table


def _column_label(series: Any) -> str:
    # The Series' own name where it is a str (the Parquet file reads naturally), else a label
    # that no index field of the frame uses (pyarrow names unnamed levels __index_level_i__).
    taken = {str(n) for n in series.index.names} | {
        f"__index_level_{i}__" for i in range(series.index.nlevels)
    }
    candidates = [series.name] if type(series.name) is str else []
    candidates += ["values", "__featurecache_series__"]
    return next(c for c in candidates if c not in taken)


def _encode_name(name: object) -> dict[str, Any]:
    if type(name) is tuple:
        return {"t": "tuple", "items": [_encode_name(part) for part in name]}
    if not is_scalar(name):
        raise RefusedLeaf(
            f"pandas.Series named by a {type(name).__qualname__}",
            "rename it to a str, a number, None or a tuple of those first (series.rename(...))",
        )
    try:
        return encode_scalar(name)
    except RefusedLeaf as exc:
        raise RefusedLeaf(f"pandas.Series named by a {exc.type_name}", exc.hint) from exc


def _decode_name(node: dict[str, Any]) -> object:
    if node["t"] == "tuple":
        return tuple(_decode_name(part) for part in node["items"])
    return decode_scalar(node)


def _level_dtypes(index: Any) -> list[Any]:
    levels = getattr(index, "levels", None)
    if levels is not None:
        return [level.dtype for level in levels]
    return [index.dtype]


def _missing_kinds(series: Any) -> dict[str, list[int]]:
    """Rows of each kind of missing value other than None (None needs no record)."""
    import numpy as np
    import pandas as pd

    values = series.to_numpy(dtype=object)
    # Vectorised: only the rare missing values that are not None are visited one by one.
    others = np.asarray(pd.isna(values), dtype=bool) & ~np.equal(values, cast(Any, None))
    found: dict[str, list[int]] = {}
    for row in np.flatnonzero(others).tolist():
        value = values[row]
        if value is pd.NA:
            kind = "NA"
        elif value is pd.NaT:
            kind = "NaT"
        else:
            kind = "nan"
        found.setdefault(kind, []).append(row)
    return found


def join_pandas_series(node: dict[str, Any], frame: Any) -> Any:
    """The pandas Series of ``node`` from its one-column frame as read back (kind "pandas")."""
    series = frame.iloc[:, 0]
    series.name = _decode_name(node["name"])
    if node["dtype"] == "object" and series.dtype != object:
        series = _as_object(series, node.get("missing", {}))
    if "categories_dtype" in node:
        series = _categorical(series, node["categories_dtype"], node["ordered"])
    if any(node["index_object"]):
        series.index = _object_levels(series.index, node["index_object"])
    return series


def _as_object(series: Any, missing: dict[str, list[int]]) -> Any:
    import numpy as np
    import pandas as pd

    values = series.to_numpy(dtype=object)
    values[np.asarray(pd.isna(values), dtype=bool)] = None
    fill = {"nan": float("nan"), "NA": pd.NA, "NaT": pd.NaT}
    for kind, rows in missing.items():
        values[rows] = fill[kind]
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def _categorical(series: Any, categories_dtype: str, ordered: bool) -> Any:
    import pandas as pd

    if str(series.dtype) != "category":
        # No categories at all: Arrow's dictionary of nulls comes back as an object column.
        categories = pd.Index([], dtype=categories_dtype)
    elif str(series.dtype.categories.dtype) != categories_dtype:
        categories = series.cat.categories.astype(categories_dtype)
    else:
        return series
    return series.astype(pd.CategoricalDtype(categories, ordered=ordered))


def _object_levels(index: Any, wanted: list[bool]) -> Any:
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        levels = [
            level.astype(object) if want and level.dtype != object else level
            for level, want in zip(index.levels, wanted, strict=True)
        ]
        return index.set_levels(cast(Any, levels))  # the stubs want lists, not Index objects
    return index.astype(object)


def describe_pandas_series(node: dict[str, Any]) -> str:
    return f"pandas.Series {node['dtype']} ×{node['length']}"


def split_polars_series(series: Any) -> tuple[dict[str, Any], pa.Table]:
    try:
        table = frame_to_arrow(series.to_frame(), "polars")
    except FrameConversionError as exc:
        raise RefusedLeaf(
            f"polars.Series of dtype {series.dtype} ({exc.detail})",
            "cast it to a data type first (e.g. series.cast(pl.String))",
        ) from exc
    node = {
        "t": "polars.Series",
        "dtype": str(series.dtype),
        "length": len(series),
        # polars reads a column named "" back as "column_0": the name is kept here too.
        "name": text_out(series.name),
    }
    return node, table


def join_polars_series(node: dict[str, Any], frame: Any) -> Any:
    return frame.to_series(0).alias(text_in(node["name"]))


def describe_polars_series(node: dict[str, Any]) -> str:
    return f"polars.Series {node['dtype']} ×{node['length']}"
