"""MLflow lineage of a partitioned feature against the real tracking server: mapped inside a
training run, the set is ONE dataset of the run (digest = the composite's id, its parts in
the profile), and its feature run names every partition's artifact as an input; in a fresh
process (all hits) the run logs the same one dataset."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import Project
from tests.integrations.fixtures_mlflow import mlflow_server  # noqa: F401
from tests.integrations.test_mlflow_composites import _inputs

FEATURES = """
import polars as pl
from featurecache import cached_feature

@cached_feature
def daily(day: str) -> pl.DataFrame:
    return pl.DataFrame({"day": [day] * 3, "v": [1, 2, 3]})
"""

IN_A_RUN = """
import json
import mlflow
import featurecache
from feats import daily
mlflow.set_tracking_uri(TRACKING)
with mlflow.start_run(experiment_id=EXPERIMENT) as run:
    result = daily.map([{"day": f"2026-01-0{i}"} for i in range(1, 4)])
    cache = featurecache.default_cache().engine
    cache.flush()
    assert all(listener.flush(60) for listener in cache.listeners)
print(json.dumps({"run_id": run.info.run_id, "ref": result.ref, "parts": list(result.artifact_ids),
                  "hits": result.hits}))
"""


def _run(project: Project, tracking: str, experiment: str) -> dict[str, Any]:
    script = IN_A_RUN.replace("TRACKING", repr(tracking)).replace("EXPERIMENT", repr(experiment))
    return dict(project.run_json(script, MLFLOW_TRACKING_URI=tracking))


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server, fresh processes
def test_a_partitioned_feature_is_one_dataset_with_its_parts(
    mlflow_server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"fc-partitioned-{uuid.uuid4().hex[:12]}")
    project = Project.create(tmp_path / "proj")
    project.write("feats.py", FEATURES)

    cold = _run(project, mlflow_server, experiment)
    consumed = _inputs(mlflow_server, cold["run_id"])
    dataset = consumed[cold["ref"]].dataset
    assert dataset.name == "feature.daily.partitioned"
    profile = json.loads(str(dataset.profile))
    assert profile["num_parts"] == 3 and profile["parts"] == cold["parts"]
    assert "3 partitions of daily" in profile["structure"]
    [producer] = client.search_runs([experiment], f"tags.`fc.artifact_id` = '{cold['ref']}'")
    produced_from = _inputs(mlflow_server, producer.info.run_id)
    assert set(cold["parts"]) <= set(produced_from)

    warm = _run(project, mlflow_server, experiment)
    assert warm["hits"] == 3 and warm["ref"] == cold["ref"]
    assert cold["ref"] in _inputs(mlflow_server, warm["run_id"])
