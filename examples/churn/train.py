"""One training run of the churn model: build the feature table (cached), fit a logistic
regression, print a JSON summary as the last line.

Run it twice: the second run only pays for the model, not for the preprocessing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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
    args = parser.parse_args()

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

    featurecache.default_cache().engine.publisher.flush()
    session = featurecache.default_cache().engine.session
    print(
        json.dumps(
            {
                "users": len(table),
                "churn_rate": float(labels.mean()),
                "test_auc": round(test_auc, 4),
                "preprocessing_seconds": round(preprocessing, 3),
                "training_seconds": round(training, 3),
                "hits": session.hits,
                "misses": session.misses,
                "seconds_avoided": round(session.seconds_avoided, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
