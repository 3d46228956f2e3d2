"""Cached predictions: ``predict_proba(model, x)`` as a cached feature, next to the bare call
and ``joblib.Memory``, for three fitted models (a scikit-learn pipeline, a 100-tree random
forest, a 200-tree LightGBM classifier) on a test set of ``--rows`` rows x 20 columns.

Run: ``python benchmarks/predictions.py [--rows N] [--repeat K]``. Per model it prints the
median seconds of: the bare call; a featurecache hit (the model and the frame fingerprinted,
the catalog looked up, the array read back); a joblib.Memory hit (joblib pickles the model and
the frame to hash them); and the model fingerprint alone (what every call pays for the model
argument, hit or miss). Each ratio is against the bare call of the same round, measured
interleaved in one process.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from timing import median_seconds

from featurecache import FeatureCache
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input


def predict_proba(model: Any, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x)[:, 1])


def _models(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(20_000, 20)), columns=[f"f{i}" for i in range(20)])
    y = (x["f0"] + rng.normal(size=len(x)) > 0).astype(int)
    return {
        "pipeline (scaler + LR)": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "random forest, 100 trees": RandomForestClassifier(100, max_depth=10, random_state=0).fit(
            x, y
        ),
        "LightGBM, 200 trees": lgb.LGBMClassifier(n_estimators=200, verbose=-1).fit(x, y),
    }


def run(rows: int = 100_000, repeat: int = 5) -> dict[str, dict[str, float]]:
    models = _models()
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"f{i}" for i in range(20)])
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        memory = joblib.Memory(root / "joblib", verbose=0)
        joblib_cached = memory.cache(predict_proba)
        files = FileFingerprinter(root / "fp-state", project_root=root)
        with FeatureCache(
            catalog=f"sqlite:///{root / 'catalog.db'}",
            store=root / "artifacts",
            state_dir=root / "state",
            background_publish=False,
        ) as cache:
            cached = cache.cached_feature(predict_proba)
            for name, model in models.items():
                cached(model, x)  # the misses, before timing hits
                joblib_cached(model, x)
                results[name] = {
                    "bare_s": median_seconds(lambda m=model: predict_proba(m, x), repeat),
                    "featurecache_hit_s": median_seconds(lambda m=model: cached(m, x), repeat),
                    "joblib_hit_s": median_seconds(lambda m=model: joblib_cached(m, x), repeat),
                    "model_fingerprint_s": median_seconds(
                        lambda m=model: fingerprint_input("model", m, files=files), repeat
                    ),
                }
        files.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = run(args.rows, args.repeat)
    print(f"cached predictions, {args.rows:,} rows x 20 (medians of {args.repeat} runs)")
    print(f"{'model':<26}{'bare':>9}{'featurecache hit':>24}{'joblib hit':>20}{'model fp':>12}")
    for name, r in results.items():
        bare = r["bare_s"]
        print(
            f"{name:<26}{bare:>7.3f} s"
            f"{r['featurecache_hit_s']:>10.3f} s ({r['featurecache_hit_s'] / bare:>5.2f}×)"
            f"{r['joblib_hit_s']:>10.3f} s ({r['joblib_hit_s'] / bare:>5.2f}×)"
            f"{r['model_fingerprint_s']:>10.3f} s"
        )


if __name__ == "__main__":
    main()
