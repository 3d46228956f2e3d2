"""Small-data benchmark functions: a tiny feature's body, the inputs, and the joblib.Memory
versions (plain functions). ``small_features`` holds the ``@cached_feature`` versions, apart, so
a bare process never imports featurecache.

The joblib versions count their real runs in ``CALLS``, so the benchmark can tell a joblib hit
from a recomputation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import pandas as pd

CALLS: list[str] = []


def polars_body(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(double=pl.col("value") * 2, label=pl.col("name").str.to_uppercase())


def pandas_body(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(double=frame["value"] * 2, label=frame["name"].str.upper())


def joblib_polars(frame: pl.DataFrame) -> pl.DataFrame:
    CALLS.append("joblib_polars")
    return polars_body(frame)


def joblib_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    CALLS.append("joblib_pandas")
    return pandas_body(frame)


def polars_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(rows)),
            "value": [float(seed * 1_000_003 + i) for i in range(rows)],
            "name": [f"n{i % 7}" for i in range(rows)],
        }
    )


def pandas_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "id": list(range(rows)),
            "value": [float(seed * 1_000_003 + i) for i in range(rows)],
            "name": [f"n{i % 7}" for i in range(rows)],
        }
    )
