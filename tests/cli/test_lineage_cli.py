"""``featurecache lineage`` on the churn demo's pipeline: the real decorated features of
``examples/churn`` run on a small generated clickstream in a fresh process, then the command
reads the multi-hop chain back from the catalog as JSON, a tree, dot and mermaid."""

from __future__ import annotations

import json
from typing import Any

import pytest

from featurecache.cli.main import main
from tests.e2e import REPO, Project

CHURN = REPO / "examples" / "churn"

RUN_PIPELINE = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(CHURN)!r})
import featurecache
from data import generate
from pipeline import build_training_table, clean_clicks, sessionize, user_features

clicks, demographics = generate(Path("data"), events=20_000, users=400, seed=3)
build_training_table(clicks, demographics)
featurecache.default_cache().engine.publisher.flush()
print(json.dumps({{"hits": featurecache.default_cache().engine.session.hits}}))
"""


@pytest.fixture(scope="module")
def churn_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.create(tmp_path_factory.mktemp("churn"))
    assert project.run_json(RUN_PIPELINE) == {"hits": 0}
    return project


@pytest.fixture
def run(
    churn_project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.chdir(churn_project.root)
    monkeypatch.setenv("FEATURECACHE_CATALOG", churn_project.catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", churn_project.store_url)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def features_of(data: dict[str, Any]) -> dict[str, str]:
    """feature name -> artifact id, over the graph's artifact nodes."""
    return {n["features"][0]: n["id"] for n in data["nodes"] if n["kind"] == "artifact"}


def test_upstream_json_is_the_multi_hop_chain(run: Any) -> None:
    code, out, err = run("lineage", "user_features", "--upstream", "--json")
    assert code == 0, err
    data = json.loads(out)  # stdout holds the JSON and nothing else
    ids = features_of(data)
    assert set(ids) == {"user_features", "sessionize", "clean_clicks"}
    assert data["root"] == ids["user_features"] and data["direction"] == "upstream"
    hops = {(e["from"], e["to"], e["argument"]) for e in data["edges"]}
    assert (ids["sessionize"], ids["user_features"], "sessions") in hops
    assert (ids["clean_clicks"], ids["sessionize"], "clicks") in hops
    sources = {n["uri"].rsplit("/", 1)[-1] for n in data["nodes"] if n["kind"] == "source"}
    assert sources == {"clicks.parquet", "demographics.parquet"}
    # by id prefix, the same graph; --depth 1 stops after one hop
    code, out, _ = run("lineage", ids["user_features"][:10], "--upstream", "--depth", "1", "--json")
    shallow = json.loads(out)
    assert code == 0 and set(features_of(shallow)) == {"user_features", "sessionize"}
    assert shallow["truncated"]["upstream"] == [ids["sessionize"]]


def test_downstream_of_the_cleaned_clicks_fans_out(run: Any) -> None:
    code, out, err = run("lineage", "clean_clicks", "--downstream", "--format", "json")
    assert code == 0, err
    assert set(features_of(json.loads(out))) == {
        "clean_clicks",
        "sessionize",
        "user_features",
        "churn_labels",
    }


def test_tree_dot_and_mermaid(run: Any) -> None:
    code, tree, err = run("lineage", "sessionize")
    assert code == 0, err
    upstream, _, downstream = tree.partition("downstream")
    assert "clicks ← clean_clicks" in upstream and "clicks_path ← " in upstream
    assert "sessions → user_features" in downstream

    code, dot, _ = run("lineage", "user_features", "--upstream", "--format", "dot")
    assert code == 0 and dot.startswith("digraph lineage {")
    assert dot.count(" -> ") == 4  # clicks.parquet, clicks, sessions, demographics.parquet
    assert '[label="sessions"]' in dot and '[label="demographics_path"]' in dot

    code, mermaid, _ = run("lineage", "user_features", "--format", "mermaid")
    assert code == 0 and mermaid.startswith("flowchart LR") and "-->|sessions|" in mermaid


def test_bad_references_and_options_are_one_line_errors(run: Any) -> None:
    for argv in (
        ("lineage", "no_such_feature"),
        ("lineage", "user_features", "--upstream", "--downstream"),
        ("lineage", "user_features", "--format", "png"),
        ("lineage", "user_features", "--depth", "-1"),
    ):
        code, out, err = run(*argv)
        assert code == 2 and out == "", argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("featurecache: error: "), err
