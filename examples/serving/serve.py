"""The online service: refuse to start when the feature code differs from the code the model
was trained with, then score one request with the undecorated feature functions.

    python serve.py RUN_ID '[{"user_id": 1, "amount": 12.5}, {"user_id": 1, "amount": -3}]'

Exit code 0 and a JSON line with the score; 1 on train/serve skew (the error names what
changed); 2 when the run's features cannot be checked here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shop_features.features import COLUMNS, FEATURES, features_online

import featurecache


def start(run_id: str) -> np.ndarray:
    """Check the code at start-up, then load the model."""
    # 1. Every digest logged with the model must be the digest of the code imported now.
    logged = mlflow.get_run(run_id).data.params
    for feature in FEATURES:
        expected = logged.get(f"feature_digest.{feature.name}")
        if expected != feature.code_digest():
            # 2. Say what changed, component by component, as `featurecache why` would.
            featurecache.check_serving(run_id, features=FEATURES).raise_for_skew()
            raise featurecache.TrainServeSkewError(run_id, [f"{feature.name}: code differs"])
    model = mlflow.artifacts.load_dict(f"runs:/{run_id}/model/model.json")
    return np.asarray(model["weights"])


def score(weights: np.ndarray, rows: list[dict[str, object]]) -> float:
    """Online: the plain functions (``.func``) on the request's rows, no cache involved."""
    orders = pl.DataFrame(rows, schema={"user_id": pl.Int64, "amount": pl.Float64})
    x = features_online(orders).select(COLUMNS).to_numpy().astype(float)
    return float(weights[0] + x[0] @ weights[1:])


def main() -> int:
    run_id, request = sys.argv[1], json.loads(sys.argv[2])
    try:
        weights = start(run_id)
    except featurecache.TrainServeSkewError as exc:
        print(f"serve: refusing to start: {exc}", file=sys.stderr)
        return 1
    except featurecache.ServingFeatureMissingError as exc:
        print(f"serve: cannot check the features: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"score": score(weights, request)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
