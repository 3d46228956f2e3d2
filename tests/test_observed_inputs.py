"""Files a feature's body reads, end to end in fresh processes, on SQLite + a local folder and
on PostgreSQL + S3: a path literal in the code (``pd.read_csv("data/labels.csv")``), a path
built at run time and read by a native reader (polars), and a plain ``open()``. Editing the
file between two runs recomputes the feature, also when the edit keeps the size and the
mtime is set back; an untouched file is a hit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import SESSION
from tests.team_support import BACKENDS, TeamBackend, team_backend

pytestmark = pytest.mark.slow  # a fresh process per step

FEATURES = """
import os

import pandas as pd
import polars as pl

from featurecache import cached_feature

BASE = "data"
EVENTS = "events"


@cached_feature
def labels() -> pd.DataFrame:
    return pd.read_csv("data/labels.csv")


@cached_feature
def events() -> pl.DataFrame:
    # Neither an argument nor a literal: a path built at run time, read natively by polars.
    return pl.read_parquet(os.path.join(BASE, EVENTS + ".parquet"))


@cached_feature
def notes() -> pl.DataFrame:
    with open(os.path.join(BASE, "notes" + ".txt")) as handle:
        return pl.DataFrame({"line": handle.read().splitlines()})
"""

RUN = (
    SESSION
    + """
import warnings
warnings.simplefilter("error")  # no warning about files it could not attribute
from features import events, labels, notes
values = {
    "labels": labels()["y"].tolist(),
    "events": events()["v"].to_list(),
    "notes": notes()["line"].to_list(),
}
print(json.dumps({**values, **_session()}))
"""
)


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    backend = team_backend(request, tmp_path)
    project = backend.project
    project.write("features.py", FEATURES)
    project.write("data/labels.csv", "y\n1\n2\n")
    project.write("data/notes.txt", "alpha\nbeta\n")
    _write_events(project.root / "data" / "events.parquet", [1, 2, 3])
    return backend


def _write_events(path: Path, values: list[int]) -> None:
    import polars as pl

    pl.DataFrame({"v": values}).write_parquet(path)


def _rewrite_keeping_stat(path: Path, text: str) -> None:
    """Same size, and the mtime set back: only the content (and the ctime) differ."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _run(team: TeamBackend) -> dict[str, Any]:
    result: dict[str, Any] = team.run_json(RUN)
    return result


EDITS = {
    # a path literal in the code, read by pandas
    "labels": (lambda root: _rewrite_keeping_stat(root / "labels.csv", "y\n7\n8\n"), [7, 8]),
    # open() of a path built at run time
    "notes": (
        lambda root: _rewrite_keeping_stat(root / "notes.txt", "ALPHA\nBETA\n"),
        ["ALPHA", "BETA"],
    ),
    # a path built at run time, read natively by polars
    "events": (lambda root: _write_events(root / "events.parquet", [4, 5, 6]), [4, 5, 6]),
}
FIRST = {"labels": [1, 2], "events": [1, 2, 3], "notes": ["alpha", "beta"]}


@pytest.mark.parametrize("edited", sorted(EDITS))
def test_an_edited_file_read_by_the_body_recomputes_and_the_others_hit(
    team: TeamBackend, edited: str
) -> None:
    assert _run(team) == {**FIRST, "hits": 0, "misses": 3}
    assert _run(team) == {**FIRST, "hits": 3, "misses": 0}  # nothing changed: all hits

    edit, expected = EDITS[edited]
    edit(team.project.root / "data")
    after = _run(team)
    assert after == {**FIRST, edited: expected, "hits": 2, "misses": 1}

    assert _run(team) == {**FIRST, edited: expected, "hits": 3, "misses": 0}


WHY = """
import json
from featurecache.ops.observed_diff import observed_changes
import featurecache
catalog = featurecache.default_cache().engine.catalog
entries = catalog.recent_entries("notes", limit=1)
print(json.dumps(observed_changes(entries[0].components)))
"""


def test_a_replaced_entry_remembers_what_changed(team: TeamBackend) -> None:
    _run(team)
    _rewrite_keeping_stat(team.project.root / "data" / "notes.txt", "ALPHA\nBETA\n")
    _run(team)
    assert team.run_json(WHY) == ["file data/notes.txt changed"]


VANISH = (
    SESSION
    + """
import os
from features import notes
first = notes()["line"].to_list()
os.rename("data/notes.txt", "data/notes.bak")
try:
    notes()
    raised = None
except FileNotFoundError as exc:
    raised = type(exc).__name__
print(json.dumps({"first": first, "raised": raised, **_session()}))
"""
)


def test_a_vanished_file_is_never_served_from_the_cache(team: TeamBackend) -> None:
    _run(team)
    # The second call finds the entry stale (its file is gone), so it runs the body, which
    # raises as it would without a cache.
    result = team.run_json(VANISH)
    assert result == {
        "first": ["alpha", "beta"],
        "raised": "FileNotFoundError",
        "hits": 1,
        "misses": 0,
    }
