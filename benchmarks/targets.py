"""The benchmark's feature function as each contender sees it.

featurecache features are declared with ``@cached_feature`` on the default cache, which every
scenario process configures through ``FEATURECACHE_*`` variables; joblib caches plain functions
that count their calls, so a scenario can tell a hit from a recomputation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import feature_fn
import polars as pl

from featurecache import cached_feature

if TYPE_CHECKING:
    import pandas as pd

# Names of the functions that really ran in this process (joblib: a hit leaves it empty).
CALLS: list[str] = []


@cached_feature(name="bench_polars")
def fc_polars(events: pl.DataFrame) -> pl.DataFrame:
    return feature_fn.polars_features(events)


@cached_feature(name="bench_pandas")
def fc_pandas(events: pd.DataFrame) -> pd.DataFrame:
    return feature_fn.pandas_features(events)


@cached_feature(name="bench_polars_lazy", lazy=True)
def fc_polars_lazy(events: pl.DataFrame) -> pl.DataFrame:
    return feature_fn.polars_features(events)


def joblib_polars(events: pl.DataFrame) -> pl.DataFrame:
    CALLS.append("joblib_polars")
    return feature_fn.polars_features(events)


def joblib_pandas(events: pd.DataFrame) -> pd.DataFrame:
    CALLS.append("joblib_pandas")
    return feature_fn.pandas_features(events)
