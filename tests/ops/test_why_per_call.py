"""``featurecache why`` per call, end to end in fresh processes.

A feature called with several argument sets, then edited: its latest miss must be explained
by the code change, against the earlier key of the *same* call, not by the other call's
arguments ("param `depth`: 1 → 2"). The same through ``--args`` and through the Python API
``why(feature, *args, **kwargs)`` (cached or not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e import Project

FEATURES = """
import polars as pl

from featurecache import cached_feature


@cached_feature
def deep(depth: int) -> pl.DataFrame:
    return pl.DataFrame({"d": [depth] * 3})


@cached_feature
def scaled(df: pl.DataFrame, factor: int) -> pl.DataFrame:
    return df.with_columns(pl.col("v") * factor)
"""

# Both depths, in this order, each run: after a code edit the depth=2 miss comes right after
# the depth=1 miss, which is what made the old `why` compare depth=2 with depth=1.
RUN = """
import json, featurecache
from pipeline.features import deep
deep(1)
deep(2)
engine = featurecache.default_cache().engine
engine.flush()
print(json.dumps({"misses": engine.session.misses, "hits": engine.session.hits}))
"""

WHY_LATEST = """
import json
from featurecache import why
report = why("deep")
print(json.dumps(report.to_json()))
"""


def messages(report: dict[str, Any]) -> list[str]:
    return [change["message"] for change in report["explanation"]["changes"]]


def edit_body(project: Project) -> None:
    """The code change: same signature, another body (a new code identity for `deep`)."""
    path = project.root / "pipeline" / "features.py"
    project.write("pipeline/features.py", path.read_text().replace("* 3", "* 4"))


def two_depths_then_edit(project: Project) -> None:
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    assert project.run_json(RUN) == {"misses": 2, "hits": 0}
    edit_body(project)


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    if request.param == "sqlite":
        return Project.create(tmp_path / "proj")
    url: str = request.getfixturevalue("pg_catalog_url")
    return Project.create(tmp_path / "proj", catalog_url=url)


def test_latest_miss_is_explained_by_the_code_change_not_the_other_call(project: Project) -> None:
    two_depths_then_edit(project)
    assert project.run_json(RUN) == {"misses": 2, "hits": 0}

    report = project.run_json(WHY_LATEST)  # a third, fresh process

    said = messages(report)
    assert any("function body of `deep` changed" in m for m in said), said
    assert not any("depth" in m for m in said), said
    # The key compared with is the depth=2 key of the first run, which shares `depth`.
    assert report["shared_inputs"] == 1 and report["compared_key"] is not None
    assert report["cached"] is True and report["selected_by"] == "latest"
    assert report["explanation"]["previous_key"] == report["compared_key"]
    assert report["scanned_keys"] == 4 and report["scan_limit"] == 200


def test_args_select_the_call_explained(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    two_depths_then_edit(project)
    assert project.run_json(RUN) == {"misses": 2, "hits": 0}

    report = project.run_json(
        """
        import json, featurecache
        from featurecache.ops.why import why_in_catalog
        catalog = featurecache.default_cache().engine.catalog
        print(json.dumps(why_in_catalog(catalog, "deep", {"depth": 1}).to_json()))
        """
    )
    assert report["selected_by"] == "args" and report["args"] == {"depth": 1}
    params = [r for r in report["components"] if r["kind"] == "param"]
    assert [(r["name"], r["value"]) for r in params] == [("depth", "1")]
    said = messages(report)
    assert any("function body of `deep` changed" in m for m in said), said
    assert not any("depth" in m for m in said), said


API_CALLS = """
import json
import polars as pl
from featurecache import why
from pipeline.features import deep, scaled

def summary(report):
    return {
        "cached": report.cached,
        "key_id": report.latest.key_id,
        "artifact_id": report.artifact_id,
        "compared": report.compared.key_id if report.compared else None,
        "messages": report.explanation.messages(),
    }

df = pl.DataFrame({"v": [1, 2, 3]})
print(json.dumps({
    "deep_2": summary(why(deep, 2)),
    "deep_9": summary(why(deep, depth=9)),
    "scaled_edited_df": summary(why(scaled, df.with_columns(pl.col("v") + 1), factor=3)),
    "scaled_same": summary(why(scaled, df, 3)),
}))
"""

# Each call's row committed before the next call, 2 ms apart: "earlier" is creation order,
# and the catalog's clock has millisecond steps (a batch of background publishes, or two
# quick misses, can share one creation time).
API_RUN = """
import json, time, featurecache
import polars as pl
from pipeline.features import deep, scaled
engine = featurecache.default_cache().engine
def settled(value):
    engine.flush()
    time.sleep(0.002)
settled(deep(1))
settled(deep(2))
df = pl.DataFrame({"v": [1, 2, 3]})
settled(scaled(df, 2))
settled(scaled(df, 3))
settled(scaled(df, 4))
print(json.dumps({"misses": engine.session.misses, "hits": engine.session.hits}))
"""


def test_python_api_explains_one_exact_call(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    assert project.run_json(API_RUN) == {"misses": 5, "hits": 0}
    edit_body(project)  # `deep` changes; `scaled` does not

    # A fresh process that calls nothing: why would these calls hit or miss?
    result = project.run_json(API_CALLS)

    deep_2 = result["deep_2"]
    assert deep_2["cached"] is False and deep_2["artifact_id"] is None
    assert any("function body of `deep` changed" in m for m in deep_2["messages"])
    assert not any("depth" in m for m in deep_2["messages"]), deep_2

    # No earlier call shares `depth`=9: compared with the most recent key, the param differs.
    deep_9 = result["deep_9"]
    assert deep_9["cached"] is False
    assert any("param `depth`: 2 → 9" in m for m in deep_9["messages"]), deep_9

    # Another frame with factor=3: the nearest key is the factor=3 call (most recent: 4).
    edited = result["scaled_edited_df"]
    assert edited["cached"] is False
    assert edited["messages"] and all(m.startswith("input `df`") for m in edited["messages"])

    same = result["scaled_same"]
    assert same["cached"] is True and same["artifact_id"] is not None
    # Explained against the nearest earlier key: factor=2 shares `df` (the factor=4 key is
    # newer than the factor=3 one, so it is not earlier).
    assert same["messages"] == ["param `factor`: 2 → 3"], same


def test_python_api_without_arguments_explains_the_latest_key(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    project.run_json(RUN)
    result = project.run_json(
        """
        import json
        from featurecache import why
        from pipeline.features import deep
        by_function, by_name = why(deep), why("deep")
        print(json.dumps([by_function.to_json(), by_name.to_json()]))
        """
    )
    assert result[0] == result[1]
    assert result[0]["selected_by"] == "latest" and messages(result[0]) == ["param `depth`: 1 → 2"]


def test_a_name_with_arguments_is_a_type_error(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    project.run_json(RUN)
    proc = project.run(
        """
        from featurecache import why
        try:
            why("deep", 2)
        except TypeError as error:
            print(error)
        """
    )
    assert "pass the function itself" in proc.stdout, proc.stdout


def test_an_argument_called_cache_is_an_argument_and_a_first_call_has_a_report(
    tmp_path: Path,
) -> None:
    import polars as pl

    from featurecache import FeatureCache, why

    fc = FeatureCache(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "a")

    @fc.cached_feature
    def windowed(n: int, cache: int = 0) -> pl.DataFrame:
        return pl.DataFrame({"n": [n + cache]})

    try:
        # Never called: the call's key is not cached and there is nothing to compare with.
        first = why(windowed, 1, cache=5)
        assert first.cached is False and first.compared is None
        assert first.explanation.first_call and first.artifact_id is None

        windowed(1, cache=5)
        report = why(windowed, 1, cache=5)  # `cache` is the function's own argument here
        assert report.cached is True and report.latest.key_id == first.latest.key_id
        assert why(windowed, 1, cache=6).cached is False
    finally:
        fc.close()
