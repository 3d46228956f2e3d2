"""Fitted models as inputs: real scikit-learn and LightGBM models, trained here on small data,
fingerprinted by class, parameters, fitted state and library versions; never by pickle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurecache.errors import CodeIdentityWarning, UnsupportedInputError
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.models import model_changes
from featurecache.fingerprint.types import InputFingerprint

lgb = pytest.importorskip("lightgbm")
sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileFingerprinter]:
    fingerprinter = FileFingerprinter(tmp_path / "state", project_root=tmp_path)
    yield fingerprinter
    fingerprinter.close()


def fp(value: object, files: FileFingerprinter) -> InputFingerprint:
    return fingerprint_input("model", value, files=files)


def data(seed: int, rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    y = (x[:, 0] + rng.normal(size=rows) > 0).astype(int)
    return x, y


def test_the_same_fit_on_the_same_data_has_the_same_fingerprint(files: FileFingerprinter) -> None:
    x, y = data(0)
    first = fp(LogisticRegression().fit(x, y), files)
    second = fp(LogisticRegression().fit(x, y), files)
    assert first.fingerprint == second.fingerprint
    assert first.kind == "model"
    assert first.summary.startswith("model LogisticRegression (scikit-learn ")


def test_fits_on_different_data_differ(files: FileFingerprinter) -> None:
    for make in (LogisticRegression, lambda: RandomForestClassifier(5, random_state=0)):
        a = fp(make().fit(*data(0)), files)
        b = fp(make().fit(*data(1)), files)
        assert a.fingerprint != b.fingerprint


def test_private_fitted_state_counts(files: FileFingerprinter) -> None:
    """KNeighborsClassifier keeps its training data in ``_fit_X``: two fits of the same size
    and classes agree on every public fitted attribute, yet predict differently."""
    a, b = KNeighborsClassifier().fit(*data(0)), KNeighborsClassifier().fit(*data(1))
    public = [k for k in vars(a) if k.endswith("_") and not k.startswith("_")]
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in public)
    assert fp(a, files).fingerprint != fp(b, files).fingerprint


def test_parameters_and_unfitted_models_count(files: FileFingerprinter) -> None:
    x, y = data(0)
    assert (
        fp(LogisticRegression(C=1.0), files).fingerprint
        != fp(LogisticRegression(C=0.5), files).fingerprint
    )
    assert (
        fp(LogisticRegression(), files).fingerprint
        != fp(LogisticRegression().fit(x, y), files).fingerprint
    )


def test_pipelines_and_column_transformers_count_their_fitted_steps(
    files: FileFingerprinter,
) -> None:
    import pandas as pd

    def fitted(seed: int) -> Any:
        x, y = data(seed)
        frame = pd.DataFrame(x, columns=list("abcd")).assign(c=np.where(x[:, 1] > 0, "x", "y"))
        columns = ColumnTransformer(
            [("num", StandardScaler(), list("abd")), ("cat", OneHotEncoder(), ["c"])]
        )
        return make_pipeline(columns, LogisticRegression()).fit(frame, y)

    assert fp(fitted(0), files).fingerprint == fp(fitted(0), files).fingerprint
    assert fp(fitted(0), files).fingerprint != fp(fitted(1), files).fingerprint
    # The scaler is the only step that differs: its fitted mean_ changes the key.
    x, y = data(0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    before = fp(pipe, files).fingerprint
    pipe.steps[0][1].mean_ = pipe.steps[0][1].mean_ + 1.0
    assert fp(pipe, files).fingerprint != before


def test_functions_in_parameters_count_by_name(files: FileFingerprinter) -> None:
    log = fp(FunctionTransformer(np.log1p), files).fingerprint
    assert log == fp(FunctionTransformer(np.log1p), files).fingerprint
    assert log != fp(FunctionTransformer(np.sqrt), files).fingerprint


def test_lightgbm_models_by_their_model_text(files: FileFingerprinter) -> None:
    x, y = data(0, rows=400)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7}
    booster = lgb.train(params, lgb.Dataset(x, y), 10)
    same = lgb.train(params, lgb.Dataset(x, y), 10)
    other = lgb.train(params, lgb.Dataset(*data(1, rows=400)), 10)
    assert fp(booster, files).fingerprint == fp(same, files).fingerprint
    assert fp(booster, files).fingerprint != fp(other, files).fingerprint
    assert fp(booster, files).summary == f"model Booster (lightgbm {lgb.__version__})"
    wrapped = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, y)
    again = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, y)
    assert fp(wrapped, files).fingerprint == fp(again, files).fingerprint
    assert "lightgbm" in fp(wrapped, files).value["libraries"]
    assert "scikit-learn" in fp(wrapped, files).value["libraries"]


FINGERPRINTS = """
import json, sys
import numpy as np, lightgbm as lgb, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input

rng = np.random.default_rng(0)
x = rng.normal(size=(300, 4))
y = (x[:, 0] + rng.normal(size=300) > 0).astype(int)
frame = pd.DataFrame(x, columns=list("abcd")).assign(c=np.where(x[:, 1] > 0, "x", "y"))
columns = ColumnTransformer([("n", StandardScaler(), list("abd")), ("c", OneHotEncoder(), ["c"])])
models = {
    "pipeline": make_pipeline(columns, LogisticRegression()).fit(frame, y),
    "forest": RandomForestClassifier(5, random_state=0).fit(x, y),
    "hist": HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y),
    "lgbm": lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, y),
    "booster": lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 10),
}
files = FileFingerprinter(sys.argv[1], project_root=sys.argv[1])
print(json.dumps({k: fingerprint_input("m", m, files=files).fingerprint for k, m in models.items()}))
"""


def test_fingerprints_are_stable_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    """The same fits in two fresh processes with different PYTHONHASHSEED (and thread counts
    for LightGBM) agree on every fingerprint."""
    found = []
    for seed, threads in (("1", "1"), ("2", "2")):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "OMP_NUM_THREADS": threads,
            "PYTHONPATH": str(REPO),
        }
        out = subprocess.run(
            [sys.executable, "-c", FINGERPRINTS, str(tmp_path / seed)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        found.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert found[0] == found[1]
    assert len(set(found[0].values())) == len(found[0])


class Holder(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """A user estimator holding an object no canonical form exists for."""

    def __init__(self, lock: object = None) -> None:
        self.lock = lock


def test_a_model_holding_a_pickle_only_object_is_refused_with_what_to_do(
    files: FileFingerprinter,
) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        fp(Holder(lock=threading.Lock()), files)
    message = str(caught.value)
    assert "_thread.lock at model.lock" in message
    assert "register_fingerprint" in message
    assert "pass its path" in message
    assert "models:/name/version" in message
    assert caught.value.argument == "model"


def test_a_user_estimator_counts_its_class_code(files: FileFingerprinter) -> None:
    with warnings.catch_warnings():
        # scikit-learn's set_score_request is made from the class's code: no live object.
        warnings.simplefilter("error", CodeIdentityWarning)
        assert fp(Holder(lock=3), files).fingerprint != fp(Holder(lock=4), files).fingerprint
    assert fp(Holder(lock=3), files).value["params"] == {"lock": 3}


def test_why_names_the_parameter_or_the_refit() -> None:
    base = {"type": "sklearn.x.LR", "libraries": {"scikit-learn": "1.9.1"}, "params": {"C": 1.0}}
    assert model_changes({**base, "state": "a"}, {**base, "params": {"C": 0.5}, "state": "b"}) == [
        "model LR: param `C`: 1.0 → 0.5"
    ]
    assert model_changes({**base, "state": "a"}, {**base, "state": "b"}) == [
        "model LR: fitted state changed (same class and parameters: refitted)"
    ]
    upgraded = {**base, "libraries": {"scikit-learn": "1.9.2"}, "state": "a"}
    assert model_changes({**base, "state": "a"}, upgraded) == [
        "model LR: scikit-learn 1.9.1 → 1.9.2"
    ]


def test_models_inside_containers_and_configs_count(files: FileFingerprinter) -> None:
    """An ensemble passed as a list, or a model inside a config dataclass, counts by the
    models' fitted state like a model argument does."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Scoring:
        model: Any
        threshold: float = 0.5

    a, b = LogisticRegression().fit(*data(0)), LogisticRegression().fit(*data(1))
    assert fp([a, b], files).kind == "container"
    assert fp([a, b], files).fingerprint != fp([a, a], files).fingerprint
    assert fp(Scoring(a), files).fingerprint != fp(Scoring(b), files).fingerprint
    assert (
        fp(Scoring(a), files).fingerprint
        == fp(Scoring(LogisticRegression().fit(*data(0))), files).fingerprint
    )
