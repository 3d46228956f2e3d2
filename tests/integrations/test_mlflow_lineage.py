"""MLflow lineage against a real tracking server: consumption edges into the user's run,
feature runs for misses, contexts, worker-thread binding, de-duplication, MLflow down, and
a hot path that never imports mlflow."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from featurecache.catalog.records import ArtifactRecord
from featurecache.errors import ConfigError
from featurecache.integrations.mlflow.lineage import (
    MlflowLineage,
    ResolvedFeature,
    Upstream,
    lineage,
    lineage_from_settings,
    mlflow_dataset,
)
from featurecache.settings import load_settings
from tests.integrations.fixtures_mlflow import _free_port, mlflow_server  # noqa: F401

CONTEXT_TAG = "mlflow.data.context"
SCHEMA = [
    {"name": "user_id", "type": "int64", "nullable": False},
    {"name": "sessions", "type": "int64", "nullable": True},
]
CODE = "def sessions(clicks, gap_minutes=30):\n    return clicks\n"


def _hex() -> str:
    return uuid.uuid4().hex


def event(feature: str, kind: str = "hit", **changes: Any) -> ResolvedFeature:
    artifact_id = changes.pop("artifact_id", _hex())
    values: dict[str, Any] = {
        "feature": feature,
        "artifact_id": artifact_id,
        "artifact_uri": f"file:///srv/fc/artifacts/{artifact_id[:2]}/{artifact_id[2:]}.parquet",
        "key_id": _hex(),
        "code_digest": _hex(),
        "code_source": "",
        "rows": 1000,
        "columns": 2,
        "schema": SCHEMA,
        "kind": kind,
    }
    values.update(changes)
    return ResolvedFeature(**values)


class Usages:
    """The on_run_usage callback: what the catalog would be told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, run_id: str, artifact_id: str, context: str, uri: str) -> None:
        self.calls.append((run_id, artifact_id, context, uri))


@pytest.fixture
def tracking(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """mlflow pointed at the server for one test, and every global it touches restored."""
    import mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)  # restored (removed) at teardown
    mlflow.set_tracking_uri(mlflow_server)
    yield mlflow_server
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it, env var too


@pytest.fixture
def experiment(tracking: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient(tracking).create_experiment(f"fc-test-{_hex()[:12]}")


@pytest.fixture
def make_lineage() -> Iterator[Any]:
    made: list[MlflowLineage] = []

    def make(uri: str, usages: Usages | None = None) -> MlflowLineage:
        lin = MlflowLineage(uri, f"featurecache-test-{_hex()[:8]}", usages, window_seconds=0.05)
        made.append(lin)
        return lin

    yield make
    for lin in made:
        lin.close(timeout=30)


def inputs_of(uri: str, run_id: str) -> dict[str, tuple[str, str | None]]:
    """digest -> (dataset name, context) of a run's dataset inputs."""
    from mlflow import MlflowClient

    return {
        i.dataset.digest: (i.dataset.name, {t.key: t.value for t in i.tags}.get(CONTEXT_TAG))
        for i in dataset_inputs(MlflowClient(uri).get_run(run_id))
    }


def dataset_inputs(run: Any) -> list[Any]:
    return [] if run.inputs is None else list(run.inputs.dataset_inputs)


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_hit_and_miss_in_a_run_log_consumption_and_a_feature_run(
    tracking: str, experiment: str, make_lineage: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    from mlflow import MlflowClient

    usages = Usages()
    lin = make_lineage(tracking, usages)
    hit = event("clicks_clean")
    file_fp = "xxh3_128:" + _hex()
    miss = event(
        "sessions",
        "miss",
        code_source=CODE,
        upstream=(
            Upstream("clicks", hit.artifact_id, hit.artifact_uri, True),
            Upstream("raw_path", file_fp, "file:///data/clicks.csv", False),
        ),
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        lin.on_resolved(hit)
        lin.on_resolved(miss)
        assert lin.flush(60)
        assert "View run" not in capsys.readouterr().out  # feature runs never print
    user_run = run.info.run_id

    assert inputs_of(tracking, user_run) == {
        hit.artifact_id: ("feature.clicks_clean", "training"),
        miss.artifact_id: ("feature.sessions", "training"),
    }
    client = MlflowClient(tracking)
    producers = client.search_runs([experiment], f"tags.`fc.artifact_id` = '{miss.artifact_id}'")
    assert len(producers) == 1
    feature_run = producers[0]
    fid = feature_run.info.run_id
    assert feature_run.info.run_name == f"feature:sessions@{miss.code_digest[:8]}"
    assert feature_run.info.status == "FINISHED" and feature_run.info.end_time
    tags = feature_run.data.tags
    assert tags["mlflow.parentRunId"] == user_run
    assert {k: tags[k] for k in tags if k.startswith("fc.")} == {
        "fc.kind": "feature",
        "fc.feature": "sessions",
        "fc.code_hash": miss.code_digest,
        "fc.cache_key": miss.key_id,
        "fc.artifact_id": miss.artifact_id,
        "fc.artifact_uri": miss.artifact_uri,
    }
    assert inputs_of(tracking, fid) == {
        hit.artifact_id: ("feature.clicks_clean", "source"),
        file_fp.split(":")[1]: ("clicks.csv", "source"),
        miss.artifact_id: ("feature.sessions", "output"),
    }
    assert mlflow.artifacts.load_text(f"runs:/{fid}/feature_code/sessions.py") == CODE
    output = next(
        i.dataset for i in dataset_inputs(feature_run) if i.dataset.digest == miss.artifact_id
    )
    assert json.loads(output.source) == {"uri": miss.artifact_uri}
    assert json.loads(str(output.profile))["cache_key"] == miss.key_id
    assert json.loads(str(output.schema))["mlflow_colspec"][0] == {
        "name": "user_id",
        "type": "int64",
        "required": True,
    }

    found = mlflow.search_runs(
        [experiment], filter_string=f"dataset.digest = '{miss.artifact_id}'", output_format="list"
    )
    assert {r.info.run_id for r in found} == {user_run, fid}
    assert sorted(usages.calls) == sorted(
        [
            (user_run, hit.artifact_id, "training", tracking),
            (user_run, miss.artifact_id, "training", tracking),
            (fid, miss.artifact_id, "output", tracking),
            (fid, hit.artifact_id, "source", tracking),
        ]
    )


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_a_miss_outside_any_run_goes_to_the_configured_experiment(
    tracking: str, make_lineage: Any
) -> None:
    from mlflow import MlflowClient

    lin = make_lineage(tracking)
    miss = event("orphan", "miss")
    lin.on_resolved(miss)
    assert lin.flush(60)
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(lin.experiment)
    assert exp is not None
    (run,) = client.search_runs(
        [exp.experiment_id], f"tags.`fc.artifact_id` = '{miss.artifact_id}'"
    )
    assert "mlflow.parentRunId" not in run.data.tags
    assert inputs_of(tracking, run.info.run_id) == {miss.artifact_id: ("feature.orphan", "output")}


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_lineage_context_and_enabled(tracking: str, experiment: str, make_lineage: Any) -> None:
    import mlflow

    lin = make_lineage(tracking)
    train, evaluation, nested, hidden = (event(f"f{i}") for i in range(4))
    with mlflow.start_run(experiment_id=experiment) as run:
        lin.on_resolved(train)
        with lineage(context="eval"):
            lin.on_resolved(evaluation)
            with lineage(run_id=run.info.run_id):  # keeps the enclosing context
                lin.on_resolved(nested)
            with lineage(enabled=False):
                lin.on_resolved(hidden)
        assert lin.flush(60)
    contexts = {d: c for d, (_, c) in inputs_of(tracking, run.info.run_id).items()}
    assert contexts == {
        train.artifact_id: "training",
        evaluation.artifact_id: "eval",
        nested.artifact_id: "eval",
    }


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_one_artifact_used_in_two_contexts_is_one_input_of_the_run(
    tracking: str, experiment: str
) -> None:
    """MLflow keeps one input per dataset and run: the run gets the artifact once, with the
    first context; the catalog hears of both uses."""
    import mlflow

    usages = Usages()
    # One batch for sure: the window only ends by flush().
    lin = MlflowLineage(tracking, f"featurecache-test-{_hex()[:8]}", usages, window_seconds=600)
    shared = event("shared")
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            lin.on_resolved(shared)
            with lineage(context="eval"):
                lin.on_resolved(shared)
            assert lin.flush(60)
    finally:
        lin.close(30)
    run_id = run.info.run_id
    assert inputs_of(tracking, run_id) == {shared.artifact_id: ("feature.shared", "training")}
    assert sorted(usages.calls) == [
        (run_id, shared.artifact_id, "eval", tracking),
        (run_id, shared.artifact_id, "training", tracking),
    ]
    assert lin._sender is not None and lin._sender.failures == 0


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_features_resolved_inside_another_feature_are_upstream(
    tracking: str, experiment: str
) -> None:
    import mlflow

    from featurecache.fingerprint import observed

    usages = Usages()
    lin = MlflowLineage(tracking, f"featurecache-test-{_hex()[:8]}", usages, window_seconds=600)
    inner, outer, both = event("inner"), event("outer"), event("both")
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            with observed.observing():  # what the engine runs a feature's body in
                lin.on_resolved(inner)
                lin.on_resolved(both)
                with lineage(context="eval"):  # an upstream, whatever the block says
                    lin.on_resolved(both)
            lin.on_resolved(outer)
            lin.on_resolved(both)  # the training code calls it too: it counts as training
            assert lin.flush(60)
    finally:
        lin.close(30)
    run_id = run.info.run_id
    assert inputs_of(tracking, run_id) == {
        inner.artifact_id: ("feature.inner", "upstream"),
        outer.artifact_id: ("feature.outer", "training"),
        both.artifact_id: ("feature.both", "training"),
    }
    assert sorted(usages.calls) == sorted(
        [
            (run_id, inner.artifact_id, "upstream", tracking),
            (run_id, outer.artifact_id, "training", tracking),
            (run_id, both.artifact_id, "training", tracking),
        ]
    )


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_feature_runs_log_scalar_arguments_and_datasets_link_their_producer(
    tracking: str, experiment: str, make_lineage: Any
) -> None:
    import mlflow
    from mlflow import MlflowClient

    lin = make_lineage(tracking)
    sessions = event(
        "sessions",
        "miss",
        inputs={
            "clicks": {"kind": "polars", "value": None, "summary": "polars DataFrame 3 × 2"},
            "gap_minutes": {"kind": "value", "value": 30, "summary": "30"},
            "columns": {"kind": "value", "value": ["a", "b"], "summary": "['a', 'b']"},
        },
    )
    users = event(
        "user_features",
        "miss",
        upstream=(Upstream("sessions", sessions.artifact_id, sessions.artifact_uri, True),),
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        lin.on_resolved(sessions)
        assert lin.flush(60)  # produced in an earlier batch than its consumer
        lin.on_resolved(users)
        assert lin.flush(60)
    client = MlflowClient(tracking)

    def feature_run(artifact_id: str) -> Any:
        (found,) = client.search_runs([experiment], f"tags.`fc.artifact_id` = '{artifact_id}'")
        return found

    producer = feature_run(sessions.artifact_id)
    assert producer.data.params == {"gap_minutes": "30", "columns": '["a","b"]'}
    assert "fc.params_left_out" not in producer.data.tags
    url = f"{tracking}/#/experiments/{experiment}/runs/{producer.info.run_id}"

    def profile(run_id: str, digest: str) -> dict[str, Any]:
        (found,) = [
            i.dataset for i in dataset_inputs(client.get_run(run_id)) if i.dataset.digest == digest
        ]
        loaded: dict[str, Any] = json.loads(str(found.profile))
        return loaded

    # The training run's dataset, the producer's own output, and a downstream feature run's
    # input all point at the run that made the artifact, by id and by its page in the UI.
    for run_id in (run.info.run_id, producer.info.run_id):
        linked = profile(run_id, sessions.artifact_id)
        assert (linked["producer_run"], linked["producer_run_url"]) == (
            producer.info.run_id,
            url,
        )
    consumer = feature_run(users.artifact_id)
    assert consumer.data.params == {}
    assert profile(consumer.info.run_id, sessions.artifact_id)["producer_run_url"] == url
    assert (
        f"produced by run [`{producer.info.run_id}`]({url})"
        in (consumer.data.tags["mlflow.note.content"])
    )


def test_lineage_rejects_an_empty_context() -> None:
    with pytest.raises(ConfigError), lineage(context=""):
        pass


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_worker_threads_need_an_explicit_run(
    tracking: str, experiment: str, make_lineage: Any
) -> None:
    import mlflow

    lin = make_lineage(tracking)
    unbound, bound = event("unbound"), event("bound")
    with mlflow.start_run(experiment_id=experiment) as run:

        def work() -> None:
            lin.on_resolved(unbound)  # MLflow's active run is thread-local: nothing here
            with lineage(run_id=run.info.run_id):
                lin.on_resolved(bound)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert lin.flush(60)
    assert inputs_of(tracking, run.info.run_id) == {
        bound.artifact_id: ("feature.bound", "training")
    }


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_repeated_hits_are_logged_once(tracking: str, experiment: str, make_lineage: Any) -> None:
    import mlflow

    usages = Usages()
    lin = make_lineage(tracking, usages)
    hit = event("popular")
    costs = []
    with mlflow.start_run(experiment_id=experiment) as run:
        for i in range(50):
            lin.on_resolved(hit)
            if i % 10 == 0:
                assert lin.flush(60)  # separate batches: only the caller-side dedupe can help
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            lin.on_resolved(hit)
            costs.append(time.perf_counter_ns() - t0)
        assert lin.flush(60)
    assert usages.calls == [(run.info.run_id, hit.artifact_id, "training", tracking)]
    assert list(inputs_of(tracking, run.info.run_id)) == [hit.artifact_id]
    print(f"on_resolved, repeated hit in an active run: median {median(costs) / 1000:.2f} µs")


class _NotMlflow(BaseHTTPRequestHandler):
    """Something that answers HTTP but is not MLflow (a wrong URL, a proxy's error page)."""

    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["refused", "not_mlflow"])
def broken_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "refused":
        yield f"http://127.0.0.1:{_free_port()}"
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_broken_server_costs_one_warning_and_never_fails_a_call(
    broken_uri: str, make_lineage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="featurecache.mlflow")
    usages = Usages()
    lin = make_lineage(broken_uri, usages)
    run_id = _hex()
    events = [event("h0"), event("m", "miss"), event("h1"), event("h2")]
    with lineage(run_id=run_id):
        lin.on_resolved(events[0])
        lin.on_resolved(events[1])
        assert lin.flush(60)
        for later in events[2:]:
            lin.on_resolved(later)
            assert lin.flush(60)
    warnings = [r for r in caplog.records if r.name == "featurecache.mlflow"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert broken_uri in warnings[0].getMessage()
    # The run's use of each artifact is still reported: only MLflow missed it.
    assert usages.calls == [(run_id, e.artifact_id, "training", broken_uri) for e in events]


def test_lineage_is_off_without_a_tracking_uri(tmp_path: Path) -> None:
    assert lineage_from_settings(load_settings(environ={}, cwd=tmp_path)) is None
    on = lineage_from_settings(
        load_settings(environ={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, cwd=tmp_path)
    )
    assert isinstance(on, MlflowLineage)
    assert on.tracking_uri == "http://127.0.0.1:9" and on.experiment == "featurecache"
    on.close()


HOT_PATH = """
import json, statistics, sys, threading, time
from pathlib import Path
from featurecache.integrations.mlflow.lineage import ResolvedFeature, lineage_from_settings
from featurecache.settings import load_settings
assert "mlflow" not in sys.modules, "importing the lineage module imported mlflow"
cwd = Path(sys.argv[1])
assert lineage_from_settings(load_settings(environ={}, cwd=cwd)) is None
lin = lineage_from_settings(load_settings(environ={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, cwd=cwd))
assert lin is not None
hit = ResolvedFeature("f", "0" * 32, "file:///a.parquet", "1" * 32, "2" * 32, "", 1, 1, [], "hit")
costs = []
for _ in range(2000):
    t0 = time.perf_counter_ns()
    lin.on_resolved(hit)
    costs.append(time.perf_counter_ns() - t0)
print(json.dumps({
    "mlflow_imported": "mlflow" in sys.modules,
    "threads": [t.name for t in threading.enumerate()],
    "median_ns": statistics.median(costs),
}))
"""


def test_a_hit_without_a_run_never_imports_mlflow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", HOT_PATH, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mlflow_imported"] is False
    assert "featurecache-mlflow" not in result["threads"]  # nothing was queued
    print(f"on_resolved, hit with no run and no mlflow: median {result['median_ns'] / 1000:.2f} µs")


SKINNY = """
import importlib.abc, json, logging, sys
import featurecache.hashing
from featurecache.integrations.mlflow.lineage import MlflowLineage, ResolvedFeature, lineage
HEAVY = {"numpy", "pandas", "pyarrow", "polars", "scipy", "sklearn"}
preloaded = sorted(HEAVY & {m.split(".")[0] for m in sys.modules})

class Block(importlib.abc.MetaPathFinder):  # what mlflow-skinny lacks
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)

sys.meta_path.insert(0, Block())
logging.basicConfig(level=logging.WARNING)
uri, experiment, run_id, artifact_id = sys.argv[1:5]
lin = MlflowLineage(uri, experiment)
schema = [{"name": "a", "type": "int64", "nullable": True}]
miss = ResolvedFeature("skinny", artifact_id, "s3://b/k", "1" * 32, "2" * 32, "x = 1", 3, 1, schema, "miss")
with lineage(run_id=run_id):
    lin.on_resolved(miss)
sent = lin.close(60)
print(json.dumps({"preloaded": preloaded, "sent": sent,
                  "heavy": sorted(HEAVY & {m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_mlflow_skinny_is_enough(tracking: str, experiment: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    run_id = client.create_run(experiment).info.run_id
    artifact_id = _hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", SKINNY, tracking, "unused", run_id, artifact_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["preloaded"]:
        pytest.skip(f"importing featurecache already imports {result['preloaded']}")
    assert result == {"preloaded": [], "sent": True, "heavy": []}
    assert "could not record" not in done.stderr, done.stderr
    assert inputs_of(tracking, run_id) == {artifact_id: ("feature.skinny", "training")}
    (producer,) = client.search_runs([experiment], f"tags.`fc.artifact_id` = '{artifact_id}'")
    assert producer.data.tags["mlflow.parentRunId"] == run_id  # found the bound run's experiment


@pytest.mark.mlflow
@pytest.mark.slow  # a real mlflow server
def test_mlflow_dataset_helper_links_metrics(tracking: str, experiment: str) -> None:
    import mlflow

    artifact = ArtifactRecord(
        artifact_id=_hex(),
        uri="s3://bucket/fc/ab/cdef.parquet",
        rows=10,
        columns=2,
        schema=SCHEMA,
        size_bytes=100,
        file_hash=_hex(),
        compute_seconds=1.0,
    )
    dataset = mlflow_dataset(artifact, feature="user_features")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_metric("auc", 0.9, dataset=dataset)
    (logged,) = dataset_inputs(mlflow.MlflowClient(tracking).get_run(run.info.run_id))
    assert (logged.dataset.name, logged.dataset.digest) == (
        "feature.user_features",
        artifact.artifact_id,
    )
    assert logged.dataset.source_type == "s3"
    assert json.loads(str(logged.dataset.profile))["num_rows"] == 10
