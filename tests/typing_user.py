"""A user's feature module, as a type checker sees it (never collected or run by pytest).

``tests/test_typing.py`` runs ``mypy --strict`` on this file: decorating with
``@cached_feature`` must keep the function's signature and return type, so callers of a cached
feature are type-checked exactly as callers of the plain function.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import featurecache
from featurecache import Feature, FeatureCache, cached_feature


@cached_feature
def sessions(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame:
    gap = pl.duration(minutes=gap_minutes)
    return (
        clicks.sort(["user_id", "ts"])
        .with_columns(
            ((pl.col("ts").diff().over("user_id") > gap).fill_null(True))
            .cum_sum()
            .over("user_id")
            .alias("session")
        )
        .group_by(["user_id", "session"])
        .agg(pl.len().alias("clicks"), pl.col("ts").min().alias("start"))
    )


@cached_feature(name="user_features", version="2")
def user_features(session_table: pl.DataFrame, min_clicks: int) -> pl.DataFrame:
    return (
        session_table.filter(pl.col("clicks") >= min_clicks)
        .group_by("user_id")
        .agg(pl.len().alias("sessions"), pl.col("clicks").mean().alias("mean_clicks"))
    )


team_cache = FeatureCache(catalog="sqlite:///catalog.db", store=Path("artifacts"))


@team_cache.cached_feature
def raw_clicks(path: Path) -> pl.LazyFrame:
    return pl.scan_parquet(path)


def build(path: Path) -> pl.DataFrame:
    clicks: pl.DataFrame = raw_clicks(path).collect()
    table = sessions(clicks)
    widened = sessions(clicks, gap_minutes=45)
    # The results are polars DataFrames, not Any: their methods are checked.
    n_rows: int = table.height + widened.height
    features = user_features(table, min_clicks=n_rows // 1000)
    return features.join(table.select("user_id").unique(), on="user_id")


def describe() -> str:
    feature: Feature[[pl.DataFrame, int], pl.DataFrame] = sessions
    undecorated = sessions.func
    report = featurecache.why(sessions)
    keys: list[str] = [row.name for row in report.components]
    return f"{feature.name} {user_features.name} {undecorated.__name__} {report.feature} {keys}"


def control(clicks: pl.DataFrame) -> int:
    # The control methods take the function's own arguments and return its type.
    cached: bool = sessions.is_cached(clicks, gap_minutes=45)
    fresh: pl.DataFrame = sessions.recompute(clicks)
    dropped: int = sessions.clear()
    stats = featurecache.session_stats()
    saved: float = stats.seconds_avoided + stats.features["sessions"].seconds_avoided
    return int(cached) + fresh.height + dropped + stats.hits + int(saved)


def stream(path: Path) -> int:
    # featurecache.open is typed: a reader whose attributes and batches are checked.
    reader: featurecache.ArtifactReader = featurecache.open(raw_clicks(path).collect())
    rows = 0
    for batch in reader.batches(4096, columns=["user_id"], shard=(0, 2)):
        rows += batch.num_rows
    return rows + reader.num_rows + reader.num_row_groups
