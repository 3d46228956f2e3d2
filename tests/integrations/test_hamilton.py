"""``@cached_feature`` functions as nodes of a Hamilton DAG (apache-hamilton).

Hamilton builds its graph from the plain functions of a module (``inspect.isfunction``), reads
their signatures and type hints, and calls each node with keyword arguments. A cached feature
must be such a node: same name, parameters and types as the function it wraps; and a second
process executing the same DAG must get hits, with no body run (the bodies append to a
counter file whose path comes from the environment, so it is no input of theirs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import SESSION
from tests.team_support import BACKENDS, TeamBackend, team_backend

pytest.importorskip("hamilton", reason="apache-hamilton is in the dev extra")

PIPELINE = '''
"""A Hamilton module: each function is a node, each parameter the node of the same name."""

from __future__ import annotations

import os

import pandas as pd
import polars as pl

from featurecache import cached_feature


def _count(name: str) -> None:
    with open(os.environ["CALLS_FILE"], "a") as handle:
        handle.write(name + "\\n")


@cached_feature
def clicks(n_users: int) -> pd.DataFrame:
    """Raw clicks per user."""
    _count("clicks")
    return pd.DataFrame({"user": list(range(n_users)), "clicks": [i * 3 for i in range(n_users)]})


@cached_feature
def click_rate(clicks: pd.DataFrame, days: int = 7) -> pd.DataFrame:
    """Depends on the ``clicks`` node."""
    _count("click_rate")
    return clicks.assign(rate=clicks["clicks"] / days)


@cached_feature(name="active_users")
def active(click_rate: pd.DataFrame, threshold: float) -> pl.DataFrame:
    _count("active")
    return pl.from_pandas(click_rate[click_rate["rate"] >= threshold].reset_index(drop=True))


def report(active: pl.DataFrame) -> int:
    """A plain (uncached) node downstream of the cached ones."""
    return active.height
'''

DRIVER = (
    SESSION
    + """
import inspect, os, sys
import pipeline
from hamilton import driver

dr = driver.Builder().with_modules(pipeline).build()
variables = {
    v.name: [v.type.__name__ if isinstance(v.type, type) else str(v.type), v.is_external_input]
    for v in dr.list_available_variables()
}
inputs = {"n_users": int(os.environ["N_USERS"]), "threshold": 1.0}
result = dr.execute(["click_rate", "active", "report"], inputs=inputs)
calls = open(os.environ["CALLS_FILE"]).read().split() if os.path.exists(os.environ["CALLS_FILE"]) else []
print(json.dumps({
    "variables": variables,
    "signature": str(inspect.signature(pipeline.click_rate)),
    "rate": [float(x) for x in result["click_rate"]["rate"]],
    "active": [type(result["active"]).__name__, result["active"].height],
    "report": result["report"],
    "calls": calls,
    "session": _session(),
}))
"""
)


def run(team: TeamBackend, calls: Path, n_users: int) -> dict[str, object]:
    out: dict[str, object] = team.run_json(DRIVER, CALLS_FILE=str(calls), N_USERS=str(n_users))
    return out


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    return team_backend(request, tmp_path)


def test_cached_features_are_hamilton_nodes_and_hit_in_a_fresh_process(
    team: TeamBackend, tmp_path: Path
) -> None:
    project = team.project
    project.write("pipeline.py", PIPELINE)
    calls = tmp_path / "calls.log"

    first = run(team, calls, n_users=5)
    # Hamilton kept every cached feature as a node, with the wrapped function's parameters
    # (``days`` has a default, so it is an optional external input) and return types.
    assert first["variables"] == {
        "n_users": ["int", True],
        "threshold": ["float", True],
        "days": ["int", True],
        "clicks": ["DataFrame", False],
        "click_rate": ["DataFrame", False],
        "active": ["DataFrame", False],
        "report": ["int", False],
    }
    assert first["signature"] == "(clicks: 'pd.DataFrame', days: 'int' = 7) -> 'pd.DataFrame'"
    assert first["calls"] == ["clicks", "click_rate", "active"]
    assert first["session"] == {"hits": 0, "misses": 3}
    assert first["rate"] == [i * 3 / 7 for i in range(5)]
    assert first["active"] == ["DataFrame", 2]
    assert first["report"] == 2

    # A second process executing the same DAG: every cached node hits, no body runs.
    second = run(team, calls, n_users=5)
    assert second["calls"] == ["clicks", "click_rate", "active"]
    assert second["session"] == {"hits": 3, "misses": 0}
    for field in ("rate", "active", "report"):
        assert second[field] == first[field], field

    # Other inputs: the nodes that depend on them recompute, and only those.
    third = run(team, calls, n_users=6)
    assert third["calls"] == ["clicks", "click_rate", "active"] * 2
    assert third["session"] == {"hits": 0, "misses": 3}
    assert third["report"] == 3
