"""``featurecache why FEATURE [--args JSON]`` through ``featurecache.cli.main.main`` against a
cache filled by fresh processes: a feature called with depth=1 and depth=2, then edited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.cli_support import cli_invoker
from tests.e2e import Project

FEATURES = """
import polars as pl

from featurecache import cached_feature


@cached_feature
def deep(depth: int, label: str = "x") -> pl.DataFrame:
    return pl.DataFrame({"d": [depth] * 3, "label": [label] * 3})
"""

RUN = """
import json, featurecache
from pipeline.features import deep
deep(1)
deep(2)
engine = featurecache.default_cache().engine
engine.flush()
print(json.dumps({"misses": engine.session.misses}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Two runs in fresh processes, the feature's body edited in between (read-only after)."""
    project = Project.create(tmp_path_factory.mktemp("why_cli") / "proj")
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    assert project.run_json(RUN) == {"misses": 2}
    project.write("pipeline/features.py", FEATURES.replace("* 3", "* 4"))
    assert project.run_json(RUN) == {"misses": 2}
    return project


@pytest.fixture
def run(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("FEATURECACHE_CATALOG", project.catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", project.store_url)
    monkeypatch.setenv("COLUMNS", "200")

    return cli_invoker(capsys)


def one_line_error(result: tuple[int, str, str]) -> str:
    code, _, err = result
    assert code != 0 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featurecache: error: "), err
    return lines[0]


def test_why_explains_the_latest_miss_by_the_code_change(run: Any) -> None:
    code, out, _ = run("why", "deep", "--json")
    assert code == 0
    report = json.loads(out)
    said = [c["message"] for c in report["explanation"]["changes"]]
    assert any("function body of `deep` changed" in m for m in said), said
    assert not any("depth" in m for m in said), said
    # The fields of before stay; the new ones say what was compared.
    for field in ("feature", "key_id", "artifact_id", "code_digest", "components"):
        assert field in report
    assert report["selected_by"] == "latest" and report["args"] is None
    assert report["shared_inputs"] == 2 and report["scanned_keys"] == 4

    code, out, _ = run("why", "deep")
    assert code == 0
    assert "function body of `deep` changed" in out
    assert "the nearest earlier key (2 of 2 inputs the same)" in out
    assert "param `depth`" not in out


def test_args_pick_the_call(run: Any) -> None:
    code, out, _ = run("why", "deep", "--args", '{"depth": 1}', "--json")
    assert code == 0
    report = json.loads(out)
    assert report["selected_by"] == "args" and report["args"] == {"depth": 1}
    params = {r["name"]: r["value"] for r in report["components"] if r["kind"] == "param"}
    assert params == {"depth": "1", "label": "'x'"}
    said = [c["message"] for c in report["explanation"]["changes"]]
    assert any("function body of `deep` changed" in m for m in said), said
    assert not any("depth" in m for m in said), said

    both = json.loads(run("why", "deep", "--args", '{"depth": 2, "label": "x"}', "--json")[1])
    assert both["key_id"] != report["key_id"] and both["args"] == {"depth": 2, "label": "x"}

    code, out, _ = run("why", "deep", "--args", '{"depth": 2}')
    assert code == 0 and "(latest call with depth=2)" in out


def test_bad_args_are_one_line_errors_naming_the_option(run: Any) -> None:
    not_json = one_line_error(run("why", "deep", "--args", "{depth: 1}"))
    assert "--args" in not_json and "is not JSON" in not_json
    assert "--args" in one_line_error(run("why", "deep", "--args", "[1, 2]"))

    unknown = one_line_error(run("why", "deep", "--args", '{"dpth": 1}'))
    assert "--args" in unknown and "no argument 'dpth'" in unknown
    assert "depth (2, 1)" in unknown and 'label ("x")' in unknown

    no_match = one_line_error(run("why", "deep", "--args", '{"depth": 7}'))
    assert "--args" in no_match and "has depth=7" in no_match and "depth (2, 1)" in no_match
    # true is not 1: a flag never matches a count.
    assert "has depth=true" in one_line_error(run("why", "deep", "--args", '{"depth": true}'))


def test_unknown_feature(run: Any) -> None:
    assert "no call of feature 'nope'" in one_line_error(run("why", "nope"))
