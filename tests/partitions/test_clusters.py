"""Issue 14 on real engines: a partitioned feature on a Dask ``LocalCluster`` with process
workers and on a local Ray, each on SQLite + local and on PostgreSQL + S3 (moto). 30 daily
partitions: the second run is all hits, a new day computes alone, a code change recomputes
every day, and a worker killed (SIGKILL) in the middle of a task still yields a complete,
correct result: the engine retries the task in another worker process, which takes over the
dead worker's lease at once (same host) and computes the day.

The driver is a script in a user project (workers import the feature module) and reads the
parts back through ``.lazy()`` and through ``.to_dask()`` / ``.to_ray()``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.partitions.support import FEATURES, drive, expected_sum, generate
from tests.team_support import BACKENDS, TeamBackend, executions, team_backend

pytestmark = pytest.mark.slow  # starts a Dask cluster or a local Ray, several times

DAYS = 30
PACKAGES = {"dask": ("distributed", "dask[distributed]"), "ray": ("ray", "ray")}


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", FEATURES)
    generate(backend, 0, DAYS)
    return backend


@pytest.mark.parametrize("cluster", ["dask", "ray"])
def test_partitions_on_a_cluster_rerun_new_day_code_change_and_a_killed_worker(
    team: TeamBackend, cluster: str
) -> None:
    module, requirement = PACKAGES[cluster]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install '{requirement}' (in the dev extra)")
    cold = drive(team, cluster)
    assert (cold["hits"], cold["misses"]) == (0, DAYS)
    assert cold["rows"] == DAYS * 10 and cold["reader_rows"] == DAYS * 10
    assert cold["session_sum"] == expected_sum(DAYS)
    assert cold["picked"] == (DAYS - 2) * 10
    # Worker processes computed them: more than one took part.
    assert len(set(executions(team, "sessionize"))) >= 2

    warm = drive(team, cluster)
    assert (warm["hits"], warm["misses"]) == (DAYS, 0)
    assert warm["artifacts"] == cold["artifacts"] and warm["ref"] == cold["ref"]

    generate(team, DAYS, DAYS + 1)
    new_day = drive(team, cluster)
    assert (new_day["hits"], new_day["misses"]) == (DAYS, 1)
    assert len(executions(team, "sessionize")) == DAYS + 1

    team.project.write("features.py", FEATURES.replace("SCALE = 2", "SCALE = 3"))
    changed = drive(team, cluster)
    assert (changed["hits"], changed["misses"]) == (0, DAYS + 1)
    assert changed["session_sum"] == expected_sum(DAYS + 1, scale=3)

    # A worker killed mid-task: the day's task is retried elsewhere and the result is whole.
    team.project.write("features.py", FEATURES.replace("SCALE = 2", "SCALE = 4"))
    before = len(executions(team, "sessionize"))
    killed = drive(team, cluster, BLOCK_DAY="2026-01-05")
    assert (team.project.root / "killed_flag").exists()
    # Days the killed worker had finished are resolved again by the engine (their task's
    # results died with it): hits now, as their artifacts were stored before the tasks returned.
    assert killed["hits"] + killed["misses"] == DAYS + 1 and killed["misses"] >= DAYS - 5
    assert killed["rows"] == (DAYS + 1) * 10 and killed["reader_rows"] == (DAYS + 1) * 10
    assert killed["session_sum"] == expected_sum(DAYS + 1, scale=4)
    # The killed attempt and its retry both ran the body; every other day ran once.
    assert len(executions(team, "sessionize")) == before + DAYS + 2
    assert team.leases() == []
