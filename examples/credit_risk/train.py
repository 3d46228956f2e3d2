"""One training run: features (cached), then a logistic regression. Prints one JSON line:
the cache's hits and misses in this process and the test AUC."""

from __future__ import annotations

import json
import time

from pipeline import age_years, applications, bureau_features, labels, model_table, split

import featurecache

DATA = "data"  # a plain str, as in the notebooks


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    app = applications(DATA)
    table = model_table(app, bureau_features(DATA), age_years(app))
    X_train, X_test, y_train, y_test = split(table, labels())
    features_seconds = time.perf_counter() - t0
    model = LogisticRegression(max_iter=500).fit(X_train.fillna(0), y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test.fillna(0))[:, 1])
    engine = featurecache.default_cache().engine
    engine.flush()
    print(
        json.dumps(
            {
                "hits": engine.session.hits,
                "misses": engine.session.misses,
                "features_seconds": features_seconds,
                "rows": [len(X_train), len(X_test)],
                "auc": round(float(auc), 6),
            }
        )
    )


if __name__ == "__main__":
    main()
