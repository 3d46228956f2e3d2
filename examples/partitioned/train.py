"""Sessionize every day on a 2-worker Dask cluster (each day an ordinary cached call), then
train a churn model on a date range the scan pushes down to the files.

    python train.py        # prints one JSON line: timings, hits, misses, the model's AUC

Features: a user's sessions in the 150 days before the last 30; label: no session in the
last 30 days.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import polars as pl
from data import CLICKS
from pipeline import sessionize

from featurecache.partitions import hive


def features_and_labels(sessions: pl.LazyFrame) -> pl.DataFrame:
    """Features from the 150 days before the last 30; label: no session in the last 30. Each
    filter on ``day`` is pushed down to the partitions' files (row-group statistics)."""
    last = sessions.select(pl.col("day").max()).collect().item()
    cutoff = last - timedelta(days=30)
    history = (
        sessions.filter(pl.col("day").is_between(cutoff - timedelta(days=150), cutoff))
        .group_by("user_id")
        .agg(
            sessions=pl.len(),
            clicks=pl.col("clicks").sum(),
            minutes=pl.col("minutes").mean(),
            last_day=pl.col("day").max(),
        )
        .with_columns(idle_days=(pl.lit(cutoff) - pl.col("last_day")).dt.total_days())
    )
    recent = (
        sessions.filter(pl.col("day") > cutoff)
        .select("user_id")
        .unique()
        .with_columns(active=pl.lit(True))
    )
    return (
        history.join(recent, on="user_id", how="left")
        .with_columns(churned=pl.col("active").is_null())
        .drop("active", "last_day")
        .sort("user_id")  # group_by's order varies: the split must not
        .collect()
    )


def main() -> None:
    from distributed import Client, LocalCluster
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster_up = time.perf_counter()
        result = sessionize.map(hive(CLICKS, key="day"), executor=client)
        mapped = time.perf_counter()
    table = features_and_labels(result.lazy())
    x = table.select("sessions", "clicks", "minutes", "idle_days").to_numpy()
    y = table["churned"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    print(
        json.dumps(
            {
                "partitions": len(result),
                "hits": result.hits,
                "misses": result.misses,
                "cluster_seconds": round(cluster_up - started, 2),
                "map_seconds": round(mapped - cluster_up, 2),
                "train_seconds": round(time.perf_counter() - mapped, 2),
                "users": table.height,
                "auc": round(float(auc), 3),
                "ref": result.ref[:12],
            }
        )
    )


if __name__ == "__main__":
    main()
