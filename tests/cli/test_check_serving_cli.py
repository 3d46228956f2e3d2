"""``featurecache check-serving RUN_ID --module M`` against a catalog filled by a fresh
"training" process (its run's use of each artifact recorded as the MLflow lineage records it),
checked by fresh "serving" processes: the same code passes, an edited helper fails naming it,
a feature the serving process does not define or an unknown run cannot be checked (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e import Project

HELPERS = """
import polars as pl


def clean_ts(ts: pl.Expr) -> pl.Expr:
    return ts.clip(0, None)
"""

FEATURES = """
import polars as pl

from featurecache import cached_feature
from shop.helpers import clean_ts


@cached_feature
def sessionize(clicks: pl.DataFrame, gap: int = 30) -> pl.DataFrame:
    clean = clicks.with_columns(clean_ts(pl.col("t")).alias("t"))
    return clean.with_columns(session=(pl.col("t").diff().fill_null(0) > gap).cum_sum())


@cached_feature(name="user_features")
def per_user(sessions: pl.DataFrame) -> pl.DataFrame:
    return sessions.group_by("user").agg(pl.col("session").n_unique().alias("n")).sort("user")
"""

# A training run without an MLflow server: the run's uses are recorded the way the MLflow
# lineage records them (Catalog.record_run_usage, one row per artifact and context).
TRAIN = """
import json
import polars as pl
import featurecache
from shop.features import per_user, sessionize

sessions = sessionize(pl.DataFrame({"user": [1, 1, 2], "t": [0, 90, -5]}))
table = per_user(sessions)
engine = featurecache.default_cache().engine
engine.flush()
used = {}
for feature in (sessionize, per_user):
    entry = engine.catalog.recent_entries(feature.name, limit=1)[0]
    engine.catalog.record_run_usage("run-1", entry.artifact_id, "training", "http://mlflow")
    used[feature.name] = {"catalog": entry.code_digest, "code_digest": feature.code_digest()}
print(json.dumps(used))
"""


def check(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(project, "check-serving", *args)


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "featurecache", *args],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, Any]]:
    project = Project.create(tmp_path_factory.mktemp("check_serving") / "proj")
    project.write("shop/__init__.py", "")
    project.write("shop/helpers.py", HELPERS)
    project.write("shop/features.py", FEATURES)
    return project, project.run_json(TRAIN)


def test_code_digest_is_the_digest_the_catalog_recorded(
    trained: tuple[Project, dict[str, Any]],
) -> None:
    project, used = trained
    for digests in used.values():
        assert digests["code_digest"] == digests["catalog"]
    # In another process, with the same code: the same digest.
    again = project.run_json(
        "import json\nfrom shop.features import per_user, sessionize\n"
        "print(json.dumps({f.name: f.code_digest() for f in (sessionize, per_user)}))"
    )
    assert again == {name: d["catalog"] for name, d in used.items()}


def test_the_same_code_passes(trained: tuple[Project, dict[str, Any]]) -> None:
    project, used = trained
    proc = check(project, "run-1", "--module", "shop.features")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cache: ")
    assert "features read from catalog" in proc.stdout
    assert "2 same" in proc.stdout
    assert all(len(line) <= 80 for line in lines[1:])  # the header names paths in full
    report = json.loads(check(project, "run-1", "-m", "shop.features", "--json").stdout)
    assert report["exit_code"] == 0 and report["source"] == "catalog"
    assert {f["feature"]: f["trained_digest"] for f in report["features"]} == {
        name: d["catalog"] for name, d in used.items()
    }
    assert {f["status"] for f in report["features"]} == {"same"}


def test_an_edited_helper_fails_naming_the_helper_then_passes_once_reverted(
    trained: tuple[Project, dict[str, Any]],
) -> None:
    project, _ = trained
    project.write("shop/helpers.py", HELPERS.replace("clip(0, None)", "clip(1, None)"))
    try:
        proc = check(project, "run-1", "--module", "shop.features")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "helper `clean_ts`" in proc.stdout
        report = json.loads(check(project, "run-1", "-m", "shop.features", "--json").stdout)
        rows = {f["feature"]: f for f in report["features"]}
        assert rows["sessionize"]["status"] == "differs"
        assert "helper `clean_ts`" in rows["sessionize"]["explanation"]
        assert [c["kind"] for c in rows["sessionize"]["changes"]] == ["dependency"]
        assert rows["user_features"]["status"] == "same"  # it does not use the helper
        assert report["exit_code"] == 1
    finally:
        project.write("shop/helpers.py", HELPERS)
    assert check(project, "run-1", "--module", "shop.features").returncode == 0


def test_a_feature_the_serving_process_does_not_define_cannot_pass(
    trained: tuple[Project, dict[str, Any]],
) -> None:
    project, _ = trained
    proc = check(project, "run-1")  # no --module: nothing defines the features
    assert proc.returncode == 2
    assert proc.stderr.startswith("featurecache: error: run 'run-1' used ")
    assert "`sessionize`" in proc.stderr and "--module" in proc.stderr
    assert "missing" in proc.stdout


def test_an_unknown_run_or_module_is_an_error(trained: tuple[Project, dict[str, Any]]) -> None:
    project, _ = trained
    proc = check(project, "no-such-run", "--module", "shop.features")
    assert proc.returncode == 2
    assert "no cached feature used by run 'no-such-run'" in proc.stderr
    proc = check(project, "run-1", "--module", "shop.nope")
    assert proc.returncode == 2
    assert "cannot import 'shop.nope'" in proc.stderr
    proc = check(project, "run-1", "--source", "elsewhere")
    assert proc.returncode == 2 and "--source" in proc.stderr


def test_an_artifact_whose_entries_are_gone_cannot_pass_without_mlflow(tmp_path: Any) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("shop/__init__.py", "")
    project.write("shop/helpers.py", HELPERS)
    project.write("shop/features.py", FEATURES)
    project.run_json(TRAIN)
    cleared = cli(project, "clear", "sessionize")
    assert cleared.returncode == 0, cleared.stderr
    proc = check(project, "run-1", "--module", "shop.features", "--json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert sorted(f["status"] for f in report["features"]) == ["same", "unknown"]
    assert "--source mlflow" in proc.stdout
    assert proc.stderr.startswith(
        "featurecache: error: run 'run-1' used artifacts the catalog no longer attributes"
    )
