"""One training run of the churn model: build the feature table (cached), fit a logistic
regression, print a JSON summary as the last line.

Run it twice: the second run only pays for the model, not for the preprocessing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import build_training_table

import featurecache

FEATURES = [
    "sessions",
    "events",
    "mean_active_s",
    "purchases",
    "carts",
    "mean_pages",
    "days_since_last",
    "tenure_days",
    "age",
    "signup_days_ago",
    "plan_level",
]


def fit_logistic(x: np.ndarray, y: np.ndarray, learning_rate: float, epochs: int) -> np.ndarray:
    """Plain batch gradient descent; enough for a demo model."""
    w = np.zeros(x.shape[1])
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w)))
        w -= learning_rate * x.T @ (p - y) / len(y)
    return w


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--run-name", default="train")
    args = parser.parse_args()

    with mlflow_run(args) as log_metrics:
        summary = train(args)
        log_metrics(summary)
    print(json.dumps(summary))


@contextlib.contextmanager
def mlflow_run(args: argparse.Namespace) -> Iterator[Callable[[dict[str, Any]], None]]:
    """With MLFLOW_TRACKING_URI set, train inside an MLflow run: featurecache then logs every
    feature the run used as a dataset input, and the runs that produced them."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        yield lambda summary: None
        return
    import mlflow

    mlflow.set_experiment("churn-demo")
    with mlflow.start_run(run_name=args.run_name):
        mlflow.log_params({"learning_rate": args.learning_rate, "epochs": args.epochs})
        yield lambda summary: mlflow.log_metrics(
            {k: float(v) for k, v in summary.items() if isinstance(v, int | float)}
        )
        featurecache.default_cache().engine.flush()


def train(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    table = build_training_table(args.data / "clicks.parquet", args.data / "demographics.parquet")
    preprocessing = time.perf_counter() - t0

    t1 = time.perf_counter()
    matrix = table.select(FEATURES).fill_null(0).cast(pl.Float64).to_numpy()
    matrix = (matrix - matrix.mean(axis=0)) / (matrix.std(axis=0) + 1e-9)
    matrix = np.hstack([matrix, np.ones((len(matrix), 1))])
    labels = table["churned"].to_numpy().astype(np.float64)
    split = int(len(labels) * 0.8)
    weights = fit_logistic(matrix[:split], labels[:split], args.learning_rate, args.epochs)
    test_auc = auc(matrix[split:] @ weights, labels[split:])
    training = time.perf_counter() - t1

    featurecache.default_cache().engine.flush()
    session = featurecache.default_cache().engine.session
    return {
        "users": len(table),
        "churn_rate": float(labels.mean()),
        "test_auc": round(test_auc, 4),
        "preprocessing_seconds": round(preprocessing, 3),
        "training_seconds": round(training, 3),
        "hits": session.hits,
        "misses": session.misses,
        "seconds_avoided": round(session.seconds_avoided, 3),
    }


if __name__ == "__main__":
    main()
