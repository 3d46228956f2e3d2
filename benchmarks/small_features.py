"""The small-data benchmark's features as ``@cached_feature`` functions (default cache,
configured by the runner through ``FEATURECACHE_*`` variables). Hits and misses are counted by
the cache's session counters: a body that appended to a module-level list would change its own
code identity (the list is a global it reads) and never hit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from small_fn import pandas_body, polars_body

from featurecache import cached_feature

if TYPE_CHECKING:
    import pandas as pd


@cached_feature(name="small_polars")
def fc_polars(frame: pl.DataFrame) -> pl.DataFrame:
    return polars_body(frame)


@cached_feature(name="small_pandas")
def fc_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    return pandas_body(frame)
