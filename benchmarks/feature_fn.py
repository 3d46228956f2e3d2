"""The benchmark's feature function, written once for polars and once for pandas.

A realistic event-level transform: derived columns, a window (mean price per item), a per-user
group-by joined back to every row, and a ratio of the two. It keeps the row order and every input
column but the long free-text one (replaced by its length), so a ~1 GB input gives a ~1 GB output.
The two versions compute the same values; neither depends on anything but its argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import pandas as pd


def polars_features(events: pl.DataFrame) -> pl.DataFrame:
    """Per-event features (polars)."""
    amount = pl.col("price").fill_null(0.0) * pl.col("qty")
    users = events.group_by("user_id").agg(
        user_events=pl.len().cast(pl.Int32),
        user_spend=amount.sum(),
        user_first_ts=pl.col("ts").min(),
    )
    return (
        events.with_columns(
            amount=amount,
            hour=pl.col("ts").dt.hour().cast(pl.Int8),
            weekday=pl.col("ts").dt.weekday().cast(pl.Int8),
            comment_len=pl.col("comment").str.len_chars().cast(pl.Int32),
            score_z=(pl.col("score") - pl.col("score").mean()) / pl.col("score").std(),
            item_mean_price=pl.col("price").mean().over("item_id"),
        )
        .join(users, on="user_id", how="left", maintain_order="left")
        .with_columns(
            spend_share=pl.col("amount") / pl.col("user_spend"),
            days_since_first=(pl.col("ts") - pl.col("user_first_ts"))
            .dt.total_days()
            .cast(pl.Int32),
        )
        .drop("comment", "user_first_ts")
    )


def pandas_features(events: pd.DataFrame) -> pd.DataFrame:
    """Per-event features (pandas); same values as ``polars_features``."""
    out = events.drop(columns=["comment"])
    out["amount"] = events["price"].fillna(0.0) * events["qty"]
    out["hour"] = events["ts"].dt.hour.astype("int8")
    out["weekday"] = (events["ts"].dt.weekday + 1).astype("int8")
    out["comment_len"] = events["comment"].str.len().astype("Int32")
    score = events["score"]
    out["score_z"] = (score - score.mean()) / score.std()
    out["item_mean_price"] = events.groupby("item_id")["price"].transform("mean")
    grouped = out.groupby("user_id")
    users_events = grouped["user_id"].transform("size").astype("int32")
    user_spend = grouped["amount"].transform("sum")
    user_first_ts = grouped["ts"].transform("min")
    out["user_events"] = users_events
    out["user_spend"] = user_spend
    out["spend_share"] = out["amount"] / user_spend
    out["days_since_first"] = (events["ts"] - user_first_ts).dt.days.astype("int32")
    return out
