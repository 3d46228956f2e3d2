"""Issue 12: a feature may return a Series, an array, a scalar, or tuples / lists / dicts of
them and of frames. Through the decorator, in fresh processes, on SQLite + local and on
PostgreSQL + S3: the second process gets the same structure of the same types without running
the body; each frame part is its own artifact (shared with the same frame returned alone); a
lost part makes the composite recompute, never a half-served result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import SESSION
from tests.team_support import (
    BACKENDS,
    COUNTER,
    TeamBackend,
    clean_stderr,
    executions,
    team_backend,
)

FEATURES = (
    COUNTER
    + """
import numpy as np
import pandas as pd
import polars as pl
from featurecache import cached_feature

def _frame(n):
    return pd.DataFrame({"x": np.arange(n, dtype="int64"), "g": ["a", "b"] * (n // 2)})

@cached_feature
def split(n: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    _count("split")
    df = _frame(n)
    y = pd.Series(np.arange(n) % 3, name="label", index=pd.RangeIndex(n))
    cut = n * 3 // 4
    return df.iloc[:cut], df.iloc[cut:], y.iloc[:cut], y.iloc[cut:]

@cached_feature
def whole(n: int) -> pd.DataFrame:
    _count("whole")
    return _frame(n).iloc[: n * 3 // 4]

@cached_feature
def year(n: int) -> pd.Series:
    _count("year")
    return pd.Series(pd.date_range("2024-01-01", periods=n, freq="D").year, name="year")

@cached_feature
def arrays(n: int) -> dict[str, np.ndarray]:
    _count("arrays")
    return {"matrix": np.arange(n * 2, dtype="float32").reshape(n, 2), "mask": np.arange(n) > 2}

@cached_feature
def summary(n: int):
    _count("summary")
    return {"columns": ["x", "g"], "rows": n, "mean": 1.5, "frames": [pl.DataFrame({"n": [n]})]}
"""
)

RUN = (
    SESSION
    + """
import numpy as np
import pandas as pd
import polars as pl
from features import arrays, split, summary, whole, year

Xtr, Xte, ytr, yte = split(8)
w = whole(8)
s = year(5)
a = arrays(4)
d = summary(4)
print(json.dumps({
    "split": [type(v).__name__ for v in (Xtr, Xte, ytr, yte)],
    "shapes": [list(Xtr.shape), list(Xte.shape), len(ytr), len(yte)],
    "y_name": ytr.name,
    "y_index": [int(i) for i in yte.index],
    "y_values": [int(v) for v in yte],
    "same_as_whole": bool(Xtr.reset_index(drop=True).equals(w.reset_index(drop=True))),
    "year": [type(s).__name__, s.name, str(s.dtype), [int(v) for v in s]],
    "arrays": {k: [type(v).__name__, str(v.dtype), list(v.shape), v.tolist()] for k, v in a.items()},
    "summary": [d["columns"], d["rows"], d["mean"], type(d["frames"][0]).__name__, d["frames"][0].to_dicts()],
    "types": [type(d).__name__, type(d["columns"]).__name__, type(d["rows"]).__name__],
    "session": _session(),
}))
"""
)


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    backend.project.write("features.py", FEATURES)
    return backend


def _run(team: TeamBackend) -> dict[str, object]:
    proc = team.run(RUN)
    assert proc.returncode == 0, proc.stderr
    clean_stderr(proc.stderr)
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_composite_results_round_trip_in_a_fresh_process(team: TeamBackend) -> None:
    first = _run(team)
    assert first["session"] == {"hits": 0, "misses": 5}
    second = _run(team)
    assert second["session"] == {"hits": 5, "misses": 0}
    assert {k: v for k, v in second.items() if k != "session"} == {
        k: v for k, v in first.items() if k != "session"
    }
    assert second["split"] == ["DataFrame", "DataFrame", "Series", "Series"]
    assert second["shapes"] == [[6, 2], [2, 2], 6, 2]
    assert second["y_name"] == "label"
    assert second["y_index"] == [6, 7]
    assert second["year"] == ["Series", "year", "int32", [2024] * 5]
    assert second["arrays"] == {
        "matrix": ["ndarray", "float32", [4, 2], [[0, 1], [2, 3], [4, 5], [6, 7]]],
        "mask": ["ndarray", "bool", [4], [False, False, False, True]],
    }
    assert second["summary"] == [["x", "g"], 4, 1.5, "DataFrame", [{"n": 4}]]
    assert second["types"] == ["dict", "list", "int"]
    names = ["arrays", "split", "summary", "whole", "year"]
    assert [len(executions(team, name)) for name in names] == [1] * 5  # the first process only
    assert len(executions(team)) == 5


def test_a_frame_part_is_the_artifact_of_the_same_frame_returned_alone(team: TeamBackend) -> None:
    _run(team)
    live = {record.artifact_id: record for record in team.artifacts()}
    composites = [record for record in live.values() if record.is_composite]
    assert len(composites) == 4  # split, year, arrays, summary
    with team.catalog() as catalog:
        whole_entries = [e for e in catalog.recent_entries("whole", limit=5)]
        split_entries = catalog.recent_entries("split", limit=5)
        split_hit = catalog.lookup(split_entries[0].key_id)
    assert split_hit is not None and split_hit.complete
    assert len(split_hit.parts) == 4
    # X_train inside the tuple and whole() alone hold the same rows: one artifact, stored once.
    assert split_hit.parts[0].artifact_id == whole_entries[0].artifact_id
    assert split_entries[0].return_kind == "composite"


def test_a_lost_part_recomputes_the_composite_never_half_serves_it(team: TeamBackend) -> None:
    first = _run(team)
    with team.catalog() as catalog:
        hit = catalog.lookup(catalog.recent_entries("arrays", limit=1)[0].key_id)
    assert hit is not None
    team.store().delete(hit.parts[1].artifact_id)  # the mask's file, behind the catalog's back
    third = _run(team)
    assert third["arrays"] == first["arrays"]
    assert len(executions(team, "arrays")) == 2  # recomputed once, then served again
    fourth = _run(team)
    assert fourth["session"] == {"hits": 5, "misses": 0}
