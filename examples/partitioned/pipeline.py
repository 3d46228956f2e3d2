"""The cached feature: one day of clicks sessionized (30 minutes without a click ends a
session). Defined in a module, so that Dask workers import it and cache it too."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from featurecache import cached_feature


def sessions_of(clicks: pl.DataFrame, gap_minutes: int) -> pl.DataFrame:
    """Sessions of every user in ``clicks`` (any number of days)."""
    gap = pl.duration(minutes=gap_minutes)
    return (
        clicks.sort("user_id", "ts")
        .with_columns(new=(pl.col("ts").diff().over("user_id") > gap).fill_null(True))
        .with_columns(session=pl.col("new").cum_sum().over("user_id"))
        .group_by("user_id", "session")
        .agg(
            start=pl.col("ts").min(),
            end=pl.col("ts").max(),
            clicks=pl.len(),
            pages=pl.col("page").n_unique(),
        )
        .with_columns(
            day=pl.col("start").dt.date(),
            minutes=(pl.col("end") - pl.col("start")).dt.total_seconds() / 60,
        )
        .drop("session")
        .sort("user_id", "start")
    )


@cached_feature
def sessionize(day: str, path: Path, gap_minutes: int = 30) -> pl.DataFrame:
    """One day's sessions; ``path`` is the day's folder (its content is in the key)."""
    return sessions_of(pl.read_parquet(path / "clicks.parquet"), gap_minutes)
