"""MLflow lineage of a composite result against the real tracking server: a feature returning
``(train, test, y_train, y_test)`` is logged as ONE dataset of the training run (digest = the
composite's id, its parts in the profile, no schema), on the miss and, in a fresh process, on
the hit; its feature run records it as the output; a feature computed from one of its parts
names the composite's feature as that input; ``mlflow_dataset(hit)`` works for a composite."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from featurecache.catalog import Catalog
from featurecache.integrations.mlflow.lineage import mlflow_dataset
from tests.e2e import Project
from tests.integrations.fixtures_mlflow import mlflow_server  # noqa: F401
from tests.ops.composite_support import FEATURES

CONTEXT_TAG = "mlflow.data.context"

# split(40) and score(train) inside a run of the given experiment; prints the run id.
IN_A_RUN = """
import json, sys
import mlflow
import featurecache
from feats import score, split
mlflow.set_tracking_uri(sys.argv[1])
with mlflow.start_run(experiment_id=sys.argv[2]) as run:
    train, test, y_train, y_test = split(40)
    if sys.argv[3] == "1":
        score(train)
    cache = featurecache.default_cache().engine
    cache.flush()
    assert all(listener.flush(60) for listener in cache.listeners)
print(json.dumps({"run_id": run.info.run_id, "hits": cache.session.hits}))
"""


def _run(project: Project, tracking: str, experiment: str, with_score: bool) -> dict[str, Any]:
    script = (
        IN_A_RUN.replace("sys.argv[1]", repr(tracking))
        .replace("sys.argv[2]", repr(experiment))
        .replace('sys.argv[3] == "1"', repr(with_score))
    )
    return dict(project.run_json(script, MLFLOW_TRACKING_URI=tracking))


def _inputs(tracking: str, run_id: str) -> dict[str, Any]:
    """digest -> dataset input of a run."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking).get_run(run_id)
    return {i.dataset.digest: i for i in run.inputs.dataset_inputs} if run.inputs else {}


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server, fresh processes
def test_a_composite_is_one_dataset_of_the_training_run(
    mlflow_server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"fc-composite-{uuid.uuid4().hex[:12]}")
    project = Project.create(tmp_path / "proj")
    project.write("feats.py", FEATURES)

    cold = _run(project, mlflow_server, experiment, with_score=True)
    with Catalog.open(project.catalog_url) as catalog:
        [entry] = catalog.recent_entries("split", 1)
        hit = catalog.lookup(entry.key_id)
    assert hit is not None and len(hit.parts) == 4
    composite_id, train_id = hit.artifact.artifact_id, hit.parts[0].artifact_id

    consumed = _inputs(mlflow_server, cold["run_id"])
    dataset = consumed[composite_id].dataset
    assert dataset.name == "feature.split"
    assert {t.key: t.value for t in consumed[composite_id].tags}[CONTEXT_TAG] == "training"
    assert dataset.source_type == "featurecache"
    assert json.loads(dataset.source) == {"uri": f"composite:{composite_id}"}
    assert not dataset.schema  # each part has its own schema
    profile = json.loads(str(dataset.profile))
    assert profile["composite"] is True and profile["num_parts"] == 4
    assert profile["parts"] == [p.artifact_id for p in hit.parts]
    assert profile["structure"].startswith("tuple(")
    assert not set(consumed) & {p.artifact_id for p in hit.parts}  # one dataset, not four

    # The feature run of split has the composite as its output; score's names its input
    # after the composite's feature, with the part's digest.
    # (a miss inside a run makes a child run in the same experiment)
    [producer] = client.search_runs([experiment], f"tags.`fc.artifact_id` = '{composite_id}'")
    outputs = _inputs(mlflow_server, producer.info.run_id)
    assert {t.key: t.value for t in outputs[composite_id].tags}[CONTEXT_TAG] == "output"
    assert "a composite of 4 parts" in producer.data.tags["mlflow.note.content"]
    [scorer] = client.search_runs([experiment], "tags.`fc.feature` = 'score'")
    assert _inputs(mlflow_server, scorer.info.run_id)[train_id].dataset.name == "feature.split"

    # A fresh process: the composite is a hit, logged the same way in the new run.
    warm = _run(project, mlflow_server, experiment, with_score=False)
    assert warm["hits"] == 1
    again = _inputs(mlflow_server, warm["run_id"])
    assert set(again) == {composite_id}
    assert json.loads(str(again[composite_id].dataset.profile))["num_parts"] == 4

    # The user-facing helper, from a catalog Hit.
    helper = mlflow_dataset(hit)
    assert (helper.name, helper.digest) == ("feature.split", composite_id)
    assert helper.profile["parts"] == profile["parts"]
