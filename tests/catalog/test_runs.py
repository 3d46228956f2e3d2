"""``Catalog.artifacts_of_run``: what an MLflow run used, with the entries that name each
artifact (on SQLite and the real PostgreSQL, like every catalog test)."""

from __future__ import annotations

from featurecache.catalog import Catalog
from tests.catalog.factories import artifact_id, publication


def test_a_runs_artifacts_come_with_every_entry_that_names_them(catalog: Catalog) -> None:
    first, second = publication(1, feature="sessions"), publication(2, feature="users")
    shared = publication(3, artifact=1, feature="sessions")  # another key, same artifact
    for pub in (first, second, shared):
        catalog.publish(*pub.args())
    catalog.record_run_usage("run-1", first.artifact.artifact_id, "training", "http://mlflow")
    catalog.record_run_usage("run-1", first.artifact.artifact_id, "eval", "http://mlflow")
    catalog.record_run_usage("run-1", second.artifact.artifact_id, "upstream", "http://mlflow")
    catalog.record_run_usage("run-1", artifact_id("gone"), "training", "http://mlflow")
    catalog.record_run_usage("run-2", second.artifact.artifact_id, "training", "http://mlflow")

    uses = catalog.artifacts_of_run("run-1")
    assert sorted((u.usage.artifact_id, u.usage.context) for u in uses) == sorted(
        [
            (first.artifact.artifact_id, "training"),
            (first.artifact.artifact_id, "eval"),
            (second.artifact.artifact_id, "upstream"),
            (artifact_id("gone"), "training"),
        ]
    )
    by_artifact = {u.usage.artifact_id: u for u in uses}
    assert {e.key_id for e in by_artifact[first.artifact.artifact_id].entries} == {
        first.entry.key_id,
        shared.entry.key_id,
    }
    assert [e.feature for e in by_artifact[second.artifact.artifact_id].entries] == ["users"]
    assert by_artifact[artifact_id("gone")].entries == ()
    assert all(u.usage.at.tzinfo is not None for u in uses)
    assert catalog.artifacts_of_run("run-unknown") == []
