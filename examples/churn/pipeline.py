"""The churn pipeline: three chained cached features and a label.

clean_clicks → sessionize → user_features (joined with demographics); churn_labels.
Each is keyed by its code and its inputs' content: a new learning rate in train.py changes
neither, so a second training run skips all of this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from featurecache import cached_feature

OBSERVATION_END = datetime(2026, 3, 1)  # noqa: DTZ001 - features see events before this …
LABEL_END = datetime(2026, 4, 1)  # noqa: DTZ001 - … and the label is "no activity in the next month"
KNOWN_PAGES = ["home", "search", "product", "cart", "checkout", "account", "help", "blog"]


def _valid_duration() -> pl.Expr:
    return pl.col("duration_s").is_not_null() & (pl.col("duration_s") < 3_600)


@cached_feature
def clean_clicks(clicks_path: Path) -> pl.DataFrame:
    """Drop duplicated events, impossible durations and unknown pages; sort by user and time."""
    return (
        pl.read_parquet(clicks_path)
        .unique(maintain_order=True)  # deterministic output: same inputs, same artifact
        .filter(_valid_duration() & pl.col("page").is_in(KNOWN_PAGES))
        .sort(["user_id", "ts"], maintain_order=True)
    )


@cached_feature
def sessionize(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame:
    """Split each user's events into sessions separated by more than ``gap_minutes``."""
    gap = timedelta(minutes=gap_minutes)
    observed = clicks.filter(pl.col("ts") < OBSERVATION_END)
    with_session = observed.with_columns(
        (
            (pl.col("ts").diff().over("user_id") > gap).fill_null(True).cum_sum().over("user_id")
        ).alias("session")
    )
    return with_session.group_by(["user_id", "session"], maintain_order=True).agg(
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.len().alias("events"),
        pl.col("duration_s").sum().alias("active_s"),
        (pl.col("action") == "purchase").sum().alias("purchases"),
        (pl.col("action") == "add_to_cart").sum().alias("carts"),
        pl.col("page").n_unique().alias("pages"),
    )


@cached_feature(name="user_features", version="1")
def user_features(sessions: pl.DataFrame, demographics_path: Path) -> pl.DataFrame:
    """Per-user aggregates over sessions, joined with demographics."""
    per_user = sessions.group_by("user_id").agg(
        pl.len().alias("sessions"),
        pl.col("events").sum().alias("events"),
        pl.col("active_s").mean().alias("mean_active_s"),
        pl.col("purchases").sum().alias("purchases"),
        pl.col("carts").sum().alias("carts"),
        pl.col("pages").mean().alias("mean_pages"),
        ((pl.lit(OBSERVATION_END) - pl.col("end").max()).dt.total_hours() / 24).alias(
            "days_since_last"
        ),
        ((pl.col("end").max() - pl.col("start").min()).dt.total_hours() / 24).alias("tenure_days"),
    )
    demographics = pl.read_parquet(demographics_path)
    return (
        per_user.join(demographics, on="user_id", how="left")
        .with_columns(
            pl.col("plan")
            .replace_strict({"free": 0, "basic": 1, "pro": 2}, default=0)
            .alias("plan_level"),
        )
        .sort("user_id")
    )


@cached_feature
def churn_labels(clicks: pl.DataFrame) -> pl.DataFrame:
    """1 when a user active before OBSERVATION_END has no event before LABEL_END after it."""
    before = clicks.filter(pl.col("ts") < OBSERVATION_END).select("user_id").unique()
    after = clicks.filter((pl.col("ts") >= OBSERVATION_END) & (pl.col("ts") < LABEL_END))
    active_after = (
        after.select("user_id").unique().with_columns(pl.lit(0, pl.Int8).alias("churned"))
    )
    return (
        before.join(active_after, on="user_id", how="left")
        .with_columns(pl.col("churned").fill_null(1).cast(pl.Int8))
        .sort("user_id")
    )


def build_training_table(clicks_path: Path, demographics_path: Path) -> pl.DataFrame:
    clean = clean_clicks(clicks_path)
    sessions = sessionize(clean, gap_minutes=30)
    features = user_features(sessions, demographics_path)
    labels = churn_labels(clean)
    return features.join(labels, on="user_id", how="inner")
