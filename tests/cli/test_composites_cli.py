"""``ls``, ``show``, ``stats`` and ``lineage`` over a composite result, on a real cache (SQLite
and PostgreSQL catalog, local store): ``split`` returns ``(train, test, y_train, y_test)`` and
``score`` is computed from ``train`` (a part), both run in a fresh process first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from featurecache.catalog.records import Hit
from tests.ops.composite_support import (  # noqa: F401 (fixtures)
    CliResult,
    CompositeProject,
    cli_fixture,
    composite_project_fixture,
)


@pytest.fixture
def split_hit(composite_project: CompositeProject) -> Hit:
    """split(40) and score(train) computed in a fresh process; the composite's Hit."""
    assert composite_project.run(40, with_score=True)["misses"] == 2
    with composite_project.catalog() as catalog:
        [entry] = catalog.recent_entries("split", 1)
        hit = catalog.lookup(entry.key_id)
    assert hit is not None and hit.complete and len(hit.parts) == 4
    return hit


def _by_feature(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["feature"]: row for row in rows}


def test_ls_lists_a_composite_as_one_result_and_hides_its_parts(
    split_hit: Hit, cli: Callable[..., CliResult]
) -> None:
    rows = cli("ls", "--json").json()
    assert len(rows) == 2  # split's composite and score's frame; no part on its own
    split = _by_feature(rows)["split"]
    assert split["artifact_id"] == split_hit.artifact.artifact_id
    assert split["kind"] == "composite" and split["columns"] == 4
    assert split["summary"].startswith("tuple(") and "pandas.DataFrame 30×2" in split["summary"]
    assert split["size_bytes"] == sum(p.size_bytes for p in split_hit.parts)
    assert _by_feature(rows)["score"]["kind"] == "file"
    table = cli("ls")
    assert table.code == 0 and "4 parts" in table.out and "composite" in table.out
    assert split_hit.parts[0].artifact_id[:12] not in table.out


def test_show_of_a_composite_lists_its_parts_and_a_part_names_its_composite(
    split_hit: Hit, cli: Callable[..., CliResult]
) -> None:
    composite_id = split_hit.artifact.artifact_id
    detail = cli("show", composite_id[:10], "--json").json()
    assert detail["kind"] == "composite"
    assert [(p["artifact_id"], p["rows"], p["live"]) for p in detail["parts"]] == [
        (p.artifact_id, p.rows, True) for p in split_hit.parts
    ]
    text = cli("show", composite_id)
    assert text.code == 0, text.err
    assert "composite tuple(" in text.out and "4 parts" in text.out
    for part in split_hit.parts:
        assert part.artifact_id[:12] in text.out
    part = split_hit.parts[2]
    part_detail = cli("show", part.artifact_id, "--json").json()
    assert part_detail["part_of"] == [composite_id] and part_detail["kind"] == "file"
    assert f"part of   {composite_id[:12]} (composite)" in cli("show", part.artifact_id).out


def test_stats_count_a_composite_once(split_hit: Hit, cli: Callable[..., CliResult]) -> None:
    stats = cli("stats", "--json").json()
    split = _by_feature(stats["features"])["split"]
    total = stats["total"]
    assert split["artifacts"] == 1
    assert total["artifacts"] == 2  # split and score, not the four parts
    score_bytes = _by_feature(stats["features"])["score"]["bytes_stored"]
    assert total["bytes_stored"] == split["bytes_stored"] + score_bytes


def test_lineage_draws_the_composite_as_the_upstream_of_a_feature_given_a_part(
    split_hit: Hit, cli: Callable[..., CliResult]
) -> None:
    composite_id = split_hit.artifact.artifact_id
    train = split_hit.parts[0].artifact_id
    up = cli("lineage", "score", "--upstream", "--json").json()
    nodes = {node["id"]: node for node in up["nodes"]}
    assert train not in nodes  # the part is drawn as its composite
    assert nodes[composite_id]["summary"].startswith("tuple(")
    assert [p["id"] for p in nodes[composite_id]["parts"]] == [
        p.artifact_id for p in split_hit.parts
    ]
    [edge] = [e for e in up["edges"] if e["to"] == up["root"]]
    assert (edge["from"], edge["argument"], edge["via_part"]) == (composite_id, "train", train)

    down = cli("lineage", "split", "--downstream", "--json").json()
    assert down["root"] == composite_id
    [edge] = down["edges"]
    assert edge["from"] == composite_id and edge["via_part"] == train
    # A part given as REF is its composite's node; the tree lists the parts under it.
    assert cli("lineage", train, "--json").json()["root"] == composite_id
    tree = cli("lineage", "split")
    assert tree.code == 0 and "part 0:" in tree.out and "via part 0" in tree.out
    for output_format in ("dot", "mermaid"):
        assert "composite of 4 parts" in cli("lineage", "split", "--format", output_format).out
