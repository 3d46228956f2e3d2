"""The skew guard's library half: which code a run used (from the catalog's records), the
features this process defines (a weak registry), the comparison and its verdicts, the
serving manifest, and ``check_serving`` over a real SQLite catalog in this process."""

from __future__ import annotations

import copy
import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import featurecache
from featurecache import FeatureCache, ServingFeatureMissingError, TrainServeSkewError
from featurecache.catalog.queries import RunUsage
from featurecache.catalog.records import EntryRecord
from featurecache.catalog.runs import RunArtifactUse
from featurecache.feature import defined_features
from featurecache.ops.skew import (
    TrainedFeature,
    compare,
    manifest_code,
    serving_features,
    serving_manifest,
    trained_from_uses,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _helper(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("v") * 2)


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "store")


@pytest.fixture
def doubled(cache: FeatureCache) -> Any:
    @cache.cached_feature(name="skew_doubled")
    def doubled(frame: pl.DataFrame) -> pl.DataFrame:
        return _helper(frame)

    return doubled


def _entry(feature: str, digest: str, artifact: str, created: datetime) -> EntryRecord:
    return EntryRecord(
        key_id=f"k-{feature}-{digest}",
        feature=feature,
        code_digest=digest,
        artifact_id=artifact,
        return_kind="polars",
        components={"code": {"digest": digest}},
        created_at=created,
    )


def _use(artifact: str, at: datetime, *entries: EntryRecord, context: str = "training") -> Any:
    return RunArtifactUse(RunUsage("run", artifact, context, "http://mlflow", at), entries)


def test_the_catalog_record_gives_one_trained_feature_per_feature_and_code() -> None:
    a1, a2 = "a" * 32, "b" * 32
    uses = [
        _use(a1, T0, _entry("f", "d1", a1, T0 - timedelta(hours=1))),
        _use(a1, T0, _entry("f", "d1", a1, T0 - timedelta(hours=1)), context="eval"),
        _use(a2, T0, _entry("g", "d2", a2, T0 - timedelta(hours=1))),
        _use("c" * 32, T0),  # collected: its entries are gone
    ]
    trained, unknown = trained_from_uses(uses)
    by_name = {item.feature: item for item in trained}
    assert by_name["f"].code_digest == "d1" and by_name["f"].contexts == ("training", "eval")
    assert by_name["f"].code == {"digest": "d1"}
    assert by_name["g"].artifact_ids == (a2,)
    assert unknown == ["c" * 32]


def test_of_several_keys_of_one_artifact_the_run_used_one_that_existed_then() -> None:
    artifact = "a" * 32
    older = _entry("f", "old", artifact, T0 - timedelta(hours=2))
    newer = _entry("f", "new", artifact, T0 - timedelta(hours=1))
    later = _entry("f", "later", artifact, T0 + timedelta(hours=1))  # made after the run
    (item,), _ = trained_from_uses([_use(artifact, T0, later, newer, older)])
    assert item.code_digest == "new"
    assert item.alternatives == ("old",)  # "later" did not exist when the run used it
    # Identical output of two features: the one this process defines is the one checked.
    other = _entry("g", "g1", artifact, T0 - timedelta(minutes=1))
    (item,), _ = trained_from_uses([_use(artifact, T0, other, newer)], serving_names={"f"})
    assert item.feature == "f"


def test_defined_features_are_found_by_name_newest_last_and_held_weakly(
    cache: FeatureCache,
) -> None:
    def make() -> Any:
        @cache.cached_feature(name="skew_weak")
        def weak(frame: pl.DataFrame) -> pl.DataFrame:
            return frame

        return weak

    first, second = make(), make()
    assert defined_features("skew_weak") == [first, second]
    assert serving_features(["skew_weak"])["skew_weak"] is second
    assert serving_features(["skew_weak"], [first])["skew_weak"] is first
    del second
    gc.collect()
    assert defined_features("skew_weak") == [first]
    assert serving_features(["nowhere"]) == {"nowhere": None}


def test_the_verdicts_and_their_exit_codes(doubled: Any) -> None:
    identity = doubled.code_identity(doubled.cache.settings.track_library_versions)
    same = TrainedFeature("skew_doubled", identity.digest, identity.components, "catalog")
    report = compare("run", [same], serving_features(["skew_doubled"], [doubled]), source="catalog")
    assert report.ok and report.exit_code == 0
    assert report.rows[0].defined_in is not None
    report.raise_for_skew()
    # The catalog could not tell which of two code versions the run used: the row says so.
    unsure = TrainedFeature(
        "skew_doubled", identity.digest, identity.components, "catalog", alternatives=("9" * 32,)
    )
    (row,) = compare("run", [unsure], {"skew_doubled": doubled}, source="catalog").rows
    assert row.status == "same" and row.explanation.startswith("(assumed: ")

    # The run's record of the same feature with another helper body.
    trained_code = copy.deepcopy(identity.components)
    (helper_key,) = [k for k in trained_code["dependencies"] if k.endswith(":_helper")]
    trained_code["dependencies"][helper_key]["digest"] = "0" * 32
    trained_code["dependencies"][helper_key]["body"] = "another body"
    differs = TrainedFeature("skew_doubled", "1" * 32, trained_code, "mlflow")
    report = compare("run", [differs], {"skew_doubled": doubled}, source="mlflow")
    (row,) = report.rows
    assert (row.status, report.exit_code) == ("differs", 1)
    assert row.explanation == "helper `_helper` in `tests/ops/test_skew.py` changed"
    assert row.to_json()["changes"][0]["kind"] == "dependency"
    with pytest.raises(TrainServeSkewError, match="helper `_helper`"):
        report.raise_for_skew()

    # No components recorded: it still differs, and says how to get the explanation.
    bare = TrainedFeature("skew_doubled", "1" * 32, None, "mlflow")
    (row,) = compare("run", [bare], {"skew_doubled": doubled}, source="mlflow").rows
    assert row.status == "differs" and "serving_manifest" in row.explanation

    missing = TrainedFeature("gone", "2" * 32, None, "catalog")
    report = compare("run", [missing, differs], {"skew_doubled": doubled}, source="catalog")
    assert report.exit_code == 2  # cannot check beats differs
    with pytest.raises(ServingFeatureMissingError, match="`gone`"):
        report.raise_for_skew()
    report = compare("run", [], {}, source="catalog", unknown_artifacts=["c" * 32])
    assert report.rows[0].status == "unknown" and report.exit_code == 2
    with pytest.raises(featurecache.RunRecordIncompleteError, match="cccccccccccc"):
        report.raise_for_skew()


def test_code_digest_follows_the_caches_library_tracking(tmp_path: Path) -> None:
    untracked = FeatureCache(
        f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "s", track_library_versions=False
    )

    def body(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("v") + 1)

    plain = untracked.cached_feature(name="skew_libs")(body)
    assert plain.code_digest() == plain.code_identity(False).digest
    assert plain.code_digest() != plain.code_identity(True).digest  # polars' version counts


def test_the_manifest_explains_only_the_digest_it_recorded(doubled: Any) -> None:
    manifest = serving_manifest([doubled])
    record = manifest["features"]["skew_doubled"]
    assert record["code_digest"] == doubled.code_digest()
    assert manifest_code(manifest, "skew_doubled", doubled.code_digest()) == record["code"]
    assert manifest_code(manifest, "skew_doubled", "0" * 32) is None
    assert manifest_code(manifest, "other", doubled.code_digest()) is None
    assert manifest_code(None, "skew_doubled", doubled.code_digest()) is None


def test_check_serving_reads_the_catalog_in_this_process(cache: FeatureCache, doubled: Any) -> None:
    doubled(pl.DataFrame({"v": [1, 2, 3]}))
    engine = cache.engine
    engine.flush()
    (entry,) = engine.catalog.recent_entries("skew_doubled", limit=1)
    engine.catalog.record_run_usage("run-a", entry.artifact_id, "training", "http://mlflow")
    report = featurecache.check_serving("run-a", features=[doubled], cache=cache)
    assert report.source == "catalog"
    assert [(row.feature, row.status) for row in report.rows] == [("skew_doubled", "same")]
    assert report.rows[0].trained_digest == entry.code_digest == doubled.code_digest()
    with pytest.raises(featurecache.UnknownRunError, match="'run-b'"):
        featurecache.check_serving("run-b", features=[doubled], cache=cache, source="catalog")
    with pytest.raises(featurecache.ConfigError, match="run_id"):
        featurecache.check_serving("", cache=cache)
    # One feature on its own is accepted; a plain function is not a feature.
    assert featurecache.check_serving("run-a", features=doubled, cache=cache).ok
    with pytest.raises(featurecache.ConfigError, match="not a @cached_feature"):
        featurecache.check_serving("run-a", features=[_helper], cache=cache)
