"""Five metrics from one cached prediction run, for two models: a scikit-learn pipeline and a
LightGBM classifier, both trained here on synthetic data (the same data and seeds in every
process, so every process trains the same models).

``predict_proba`` is a cached feature taking the *model itself* as an argument: featurecache
keys it by the model's class, parameters, fitted state and library versions (never by
pickle). The five metrics read that one cached array; a second evaluation, in this process or
in a new one, does no inference at all. ``INFERENCES`` counts the rows the models actually
scored (``ignore=`` keeps the counter out of the key).

    python evaluate.py            # prints one JSON line: inferences, hits, misses, metrics
    python evaluate.py --C 0.5    # another regularisation for the pipeline: it alone recomputes
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import featurecache
from featurecache import cached_feature

INFERENCES = {"models": 0, "rows": 0}


def synthetic(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, 8)), columns=[f"f{i}" for i in range(8)])
    logit = 1.5 * x["f0"] - x["f1"] + 0.5 * x["f2"] * x["f3"] + rng.normal(size=rows)
    return x, (logit > 0).to_numpy(dtype=int)


@cached_feature(ignore=["INFERENCES"])
def predict_proba(model: Any, x: pd.DataFrame) -> np.ndarray:
    """The positive-class probability of every row: the expensive part of an evaluation."""
    INFERENCES["models"] += 1
    INFERENCES["rows"] += len(x)
    return np.asarray(model.predict_proba(x)[:, 1])


def evaluate(model: Any, x: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Five metrics from one (cached) prediction run."""
    proba = predict_proba(model, x)
    predicted = (proba >= 0.5).astype(int)
    return {
        "auc": round(float(roc_auc_score(y, proba)), 4),
        "log_loss": round(float(log_loss(y, proba)), 4),
        "brier": round(float(brier_score_loss(y, proba)), 4),
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "f1": round(float(f1_score(y, predicted)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0, help="the pipeline's regularisation")
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    x_train, y_train = synthetic(args.rows, seed=0)
    x_test, y_test = synthetic(args.rows // 2, seed=1)
    models = {
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(C=args.C)),
        "lightgbm": lgb.LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1),
    }
    for model in models.values():
        model.fit(x_train, y_train)

    metrics = {name: evaluate(model, x_test, y_test) for name, model in models.items()}
    first = dict(INFERENCES)
    again = {name: evaluate(model, x_test, y_test) for name, model in models.items()}
    assert again == metrics, "the second evaluation gave other metrics"
    assert first == INFERENCES, "the second evaluation ran a model"

    engine = featurecache.default_cache().engine
    engine.flush()
    # What this process's pipeline call differs by from the nearest earlier one.
    why = featurecache.why(predict_proba, models["pipeline"], x_test).to_json()
    changes = why["explanation"]["changes"]
    print(
        json.dumps(
            {
                "inferences": INFERENCES["models"],
                "rows_scored": INFERENCES["rows"],
                "hits": engine.session.hits,
                "misses": engine.session.misses,
                "metrics": metrics,
                "why": [change["message"] for change in changes],
            }
        )
    )


if __name__ == "__main__":
    main()
