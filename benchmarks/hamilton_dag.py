"""The benchmark's feature function as a Hamilton dataflow (one node per frame type).

Hamilton turns every public function of this module into a node named after it; the input
frames (``events_pl``, ``events_pd``) are passed to ``execute(inputs=...)``.
"""

from __future__ import annotations

import feature_fn
import pandas as pd
import polars as pl

# Names of the nodes that really ran in this process (a cache hit leaves it empty).
_CALLS: list[str] = []


def features_polars(events_pl: pl.DataFrame) -> pl.DataFrame:
    _CALLS.append("features_polars")
    return feature_fn.polars_features(events_pl)


def features_pandas(events_pd: pd.DataFrame) -> pd.DataFrame:
    _CALLS.append("features_pandas")
    return feature_fn.pandas_features(events_pd)
