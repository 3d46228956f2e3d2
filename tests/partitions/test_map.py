"""Issue 14: a cached feature mapped over hive partitions, in fresh processes, on SQLite +
local and PostgreSQL + S3, in this process, on threads and on processes: the second run is all
hits, a new day computes alone, a code change recomputes every day; the union is one lazy
scan with the filter pushed down, and the catalog holds one composite with N parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.partitions.support import FEATURES, drive, expected_sum, generate
from tests.team_support import BACKENDS, TeamBackend, executions, team_backend


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", FEATURES)
    generate(backend, 0, 6)
    return backend


@pytest.mark.parametrize("executor", ["none", "threads", "processes"])
def test_rerun_hits_a_new_day_computes_alone_a_code_change_recomputes_all(
    team: TeamBackend, executor: str
) -> None:
    cold = drive(team, executor)
    assert (cold["hits"], cold["misses"]) == (0, 6)
    assert cold["labels"] == [f"day=2026-01-{i:02d}" for i in range(1, 7)]
    assert cold["rows"] == 60 and cold["session_sum"] == expected_sum(6)
    assert cold["picked"] == 40 and cold["days"][0] == "2026-01-03"

    warm = drive(team, executor)
    assert (warm["hits"], warm["misses"]) == (6, 0)
    assert warm["ref"] == cold["ref"] and warm["artifacts"] == cold["artifacts"]
    assert len(executions(team, "sessionize")) == 6

    generate(team, 6, 7)
    new_day = drive(team, executor)
    assert (new_day["hits"], new_day["misses"]) == (6, 1)
    assert new_day["artifacts"][:6] == cold["artifacts"]
    assert new_day["ref"] != cold["ref"]
    assert new_day["session_sum"] == expected_sum(7)
    assert len(executions(team, "sessionize")) == 7

    team.project.write("features.py", FEATURES.replace("SCALE = 2", "SCALE = 3"))
    changed = drive(team, executor)
    assert (changed["hits"], changed["misses"]) == (0, 7)
    assert changed["session_sum"] == expected_sum(7, scale=3)
    assert len(executions(team, "sessionize")) == 14


def test_the_catalog_holds_one_partitioned_composite_with_its_parts(team: TeamBackend) -> None:
    result = drive(team, "none")
    composites = [a for a in team.artifacts() if a.is_composite]
    assert [c.artifact_id for c in composites] == [result["ref"]]
    with team.catalog() as catalog:
        entries = catalog.entries_for_artifact(result["ref"])
        parts = [p.part_id for p in catalog.parts_listing(result["ref"])]
        edges = catalog.lineage_of(result["ref"])
    assert [e.feature for e in entries] == ["sessionize.partitioned"]
    assert parts == result["artifacts"]
    assert sorted(e.upstream_artifact_id or "" for e in edges) == sorted(result["artifacts"])
    shown = team.run(
        f"from featurecache.cli.main import main; main(['show', {result['ref'][:12]!r}])"
    ).stdout
    assert "6 partitions of sessionize" in shown
