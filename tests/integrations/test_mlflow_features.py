"""MLflow lineage of real cached features, in a fresh process, against the real tracking
server: a feature that calls another inside its body makes that one an ``upstream`` input of
the training run (the one the training code called stays ``training``), and each feature run
logs the call's scalar arguments as params."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import Project
from tests.integrations.fixtures_mlflow import mlflow_server  # noqa: F401

CONTEXT_TAG = "mlflow.data.context"

FEATURES = """
from dataclasses import dataclass

import polars as pl
from featurecache import cached_feature


@dataclass(frozen=True)
class Window:
    days: int = 7
    label: str = "week"


@cached_feature
def sessionize(clicks: pl.DataFrame, gap_minutes: int = 30) -> pl.DataFrame:
    return clicks.with_columns(session=(pl.col("t").diff().fill_null(0) > gap_minutes).cum_sum())


@cached_feature
def user_features(clicks: pl.DataFrame, window: Window = Window()) -> pl.DataFrame:
    sessions = sessionize(clicks, gap_minutes=45)
    return sessions.group_by("user").agg(pl.col("session").n_unique().alias("n")).sort("user")
"""

TRAIN = """
import json
import mlflow
import polars as pl
import featurecache
from feats import user_features
mlflow.set_tracking_uri(TRACKING)
with mlflow.start_run(experiment_id=EXPERIMENT) as run:
    user_features(pl.DataFrame({"user": [1, 1, 2], "t": [0, 90, 5]}))
    engine = featurecache.default_cache().engine
    engine.flush()
    assert all(listener.flush(60) for listener in engine.listeners)
print(json.dumps({"run_id": run.info.run_id}))
"""


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server, a fresh process
def test_nested_features_are_upstream_and_feature_runs_have_params(
    mlflow_server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"fc-nested-{uuid.uuid4().hex[:12]}")
    project = Project.create(tmp_path / "proj")
    project.write("feats.py", FEATURES)
    script = TRAIN.replace("TRACKING", repr(mlflow_server)).replace("EXPERIMENT", repr(experiment))
    run_id = project.run_json(script, MLFLOW_TRACKING_URI=mlflow_server)["run_id"]

    run = client.get_run(run_id)
    contexts = {
        i.dataset.name: {t.key: t.value for t in i.tags}[CONTEXT_TAG]
        for i in (run.inputs.dataset_inputs if run.inputs else [])
    }
    assert contexts == {"feature.user_features": "training", "feature.sessionize": "upstream"}

    def feature_run(feature: str) -> Any:
        (found,) = client.search_runs([experiment], f"tags.`fc.feature` = '{feature}'")
        return found

    sessionize, users = feature_run("sessionize"), feature_run("user_features")
    assert sessionize.data.params == {"gap_minutes": "45"}
    assert users.data.params == {"window.days": "7", "window.label": "week"}
    assert sessionize.data.tags["mlflow.parentRunId"] == run_id
    # Both datasets link the run that produced them, by its page in the UI.
    for i in run.inputs.dataset_inputs if run.inputs else []:
        profile = json.loads(str(i.dataset.profile))
        producer = sessionize if i.dataset.name == "feature.sessionize" else users
        assert profile["producer_run_url"] == (
            f"{mlflow_server}/#/experiments/{experiment}/runs/{producer.info.run_id}"
        )
