"""MLflow model URIs as feature inputs, against the real tracking server: scikit-learn models
trained here, registered, resolved through an alias; a cached prediction function hits while
the alias stays and misses once it moves, and ``why`` says which version it moved to."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurecache import FeatureCache, ModelUriError, why
from tests.integrations.fixtures_mlflow import mlflow_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
ran_with: list[str] = []  # the URIs the prediction bodies ran with (ignored by the keys)


@pytest.fixture
def tracking(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    ran_with.clear()
    yield mlflow_server
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[FeatureCache]:
    with FeatureCache(
        catalog=f"sqlite:///{tmp_path / 'catalog.db'}",
        store=tmp_path / "artifacts",
        state_dir=tmp_path / "state",
        background_publish=False,
    ) as fc:
        yield fc


def register(name: str, seed: int) -> Any:
    """A logistic regression fitted on seed-dependent data, logged and registered."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3))
    y = (x[:, seed % 3] > 0).astype(int)
    with mlflow.start_run():
        return mlflow.sklearn.log_model(
            LogisticRegression().fit(x, y),
            name="model",
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )


def predict_with(model_uri: str, x: np.ndarray) -> np.ndarray:
    """The prediction function the tests cache: loads the model the URI names."""
    import mlflow

    ran_with.append(model_uri)
    return np.asarray(mlflow.pyfunc.load_model(model_uri).predict(x))


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server, models logged and downloaded
def test_a_moved_alias_misses_and_why_names_the_new_version(
    tracking: str, cache: FeatureCache
) -> None:
    from mlflow import MlflowClient

    name = f"churn-{uuid.uuid4().hex[:8]}"
    register(name, 0)
    register(name, 1)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")

    predict = cache.cached_feature(ignore=["ran_with"])(predict_with)
    x = np.random.default_rng(9).normal(size=(50, 3))
    alias = f"models:/{name}@champion"
    first = predict(alias, x)
    assert np.array_equal(predict(alias, x), first)
    assert np.array_equal(predict(f"models:/{name}/1", x), first)  # the same version
    assert ran_with == [alias]

    client.set_registered_model_alias(name, "champion", "2")
    second = predict(alias, x)
    assert ran_with == [alias, alias]
    assert not np.array_equal(second, first)
    assert np.array_equal(predict(f"models:/{name}/2", x), second)
    assert np.array_equal(predict(f"models:/{name}/latest", x), second)
    assert len(ran_with) == 2

    report = why(predict, alias, x).to_json()
    messages = [c["message"] for c in report["explanation"]["changes"]]
    assert len(messages) == 1, messages
    assert messages[0].startswith(
        f"input `model_uri`: model {alias} now version 2 (was 1); content changed"
    ), messages


@pytest.mark.mlflow
@pytest.mark.slow
def test_runs_and_logged_model_uris_are_keyed_by_content(
    tracking: str, cache: FeatureCache
) -> None:

    info = register(f"runs-{uuid.uuid4().hex[:8]}", 2)
    other = register(f"runs-{uuid.uuid4().hex[:8]}", 2)  # the same fit, logged again

    predict = cache.cached_feature(ignore=["ran_with"])(predict_with)
    x = np.random.default_rng(3).normal(size=(20, 3))
    by_run = f"runs:/{info.run_id}/model"
    predict(by_run, x)
    predict(by_run, x)
    # MLflow 3's logged model (models:/m-…) of that run: the same files, so the same key.
    predict(info.model_uri, x)
    predict(other.model_uri, x)  # another logging: its MLmodel differs (run id, uuid)
    predict(other.model_uri, x)
    assert ran_with == [by_run, other.model_uri]


@pytest.mark.mlflow
@pytest.mark.slow
def test_an_unknown_model_is_an_error_not_a_hash_of_its_text(
    tracking: str, cache: FeatureCache
) -> None:
    @cache.cached_feature
    def predict(model_uri: str) -> int:
        return len(model_uri)

    with pytest.raises(ModelUriError) as caught:
        predict("models:/no-such-model-anywhere@champion")
    assert caught.value.argument == "model_uri"
    assert "MLFLOW_TRACKING_URI" in str(caught.value)
    with pytest.raises(ModelUriError, match="not a model URI MLflow accepts"):
        predict("models:/a/b/c")

    @cache.cached_feature(values=["model_uri"])
    def as_text(model_uri: str) -> int:
        return len(model_uri)

    assert as_text("models:/no-such-model-anywhere@champion") == 39


NO_MLFLOW = """
import sys
sys.modules["mlflow"] = None  # as if not installed
from featurecache.errors import MissingDependencyError
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
try:
    fingerprint_input("model_uri", "models:/churn@champion", files=FileFingerprinter(sys.argv[1]))
except MissingDependencyError as exc:
    print("refused:", exc)
"""


def test_without_mlflow_a_model_uri_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("refused:"), out
    assert "featurecache[mlflow]" in out
