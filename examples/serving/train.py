"""Train a tiny churn-like model on cached features and log it to MLflow with the code
digest of every feature it was trained on (``MLFLOW_TRACKING_URI`` must be set).

The last stdout line is JSON: ``{"run_id": …, "digests": {feature: digest}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shop_features.features import COLUMNS, FEATURES, features_of

import featurecache


def orders(n_users: int = 200, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, size=n_users * 5)
    amounts = np.round(rng.normal(40, 30, size=users.size), 2)  # some refunds (< 0)
    return pl.DataFrame({"user_id": users, "amount": amounts})


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with an intercept: enough for an example model."""
    design = np.column_stack([np.ones(len(x)), x])
    weights, *_ = np.linalg.lstsq(design, y, rcond=None)
    return np.asarray(weights)


def main() -> None:
    with mlflow.start_run(run_name="train") as run:
        table = features_of(orders())  # cached: a second run only fits the model
        x = table.select(COLUMNS).to_numpy().astype(float)
        y = (table["spent"] < table["spent"].median()).cast(float).to_numpy()  # "will churn"
        weights = fit(x, y)
        mlflow.log_dict({"columns": COLUMNS, "weights": weights.tolist()}, "model/model.json")
        # The pattern: log the code digest of every feature with the model ...
        digests = {feature.name: feature.code_digest() for feature in FEATURES}
        mlflow.log_params({f"feature_digest.{name}": d for name, d in digests.items()})
        # ... and the code identities behind them, so that a serving host that only reaches
        # MLflow can be told *what* changed, not only that something did.
        # (check-serving reads it from this path of the run's artifacts.)
        manifest = featurecache.serving_manifest(FEATURES)
        mlflow.log_dict(manifest, "featurecache/serving_manifest.json")
    print(json.dumps({"run_id": run.info.run_id, "digests": digests}))


if __name__ == "__main__":
    main()
