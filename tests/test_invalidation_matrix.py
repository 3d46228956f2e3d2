"""The invalidation matrix of the code-identity issue, end to end through @cached_feature.

One user project on disk; each step edits a real source file, then runs the pipeline in a
fresh process. Every "must recompute" step must miss (and ``featurecache why`` must name the
cause); every "must stay a hit" step must hit. Steps run in order against one cache, so each
one is compared with the state the previous step left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import SESSION, Project

UTIL = """
import polars as pl

GAP = 30
UNRELATED = 1


def helper_inner(x):
    return x + 0


def clean_ts(df):
    return df.with_columns(pl.col("v") + helper_inner(0))


def unrelated():
    return UNRELATED


class Scaler:
    def __init__(self, k):
        self.k = k

    def apply(self, df):
        return df.with_columns(pl.col("v") * self.k)
"""

OTHER = """
import polars as pl


def other_helper(df):
    return df.with_columns(pl.col("v") + 0)


def from_helper(df):
    return df.with_columns(pl.col("v") - 0)
"""

FEATURES = '''
import polars as pl

from featurecache import cached_feature
from pipeline import other
from pipeline.other import from_helper
from pipeline.util import GAP, Scaler, clean_ts


@cached_feature(version="1")
def base(n: int, scale: int = 2) -> pl.DataFrame:
    """Base table."""
    df = pl.DataFrame({"v": list(range(n))})
    df = clean_ts(df)
    df = other.other_helper(df)
    df = from_helper(df)
    df = Scaler(scale).apply(df)

    def nested(d):
        return d.with_columns(pl.col("v") + 0)

    shift = lambda d: d.with_columns(pl.col("v") + 0)  # noqa: E731
    df = shift(nested(df))
    return df.with_columns((pl.col("v") * 0 + GAP).alias("gap"))


@cached_feature(depends_on=["d1"])
def downstream(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns((pl.col("v") * 10).alias("w"))


def make_filter(threshold):
    @cached_feature(name="factory_filter")
    def factory_filter(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("v") > threshold)

    return factory_filter


factory_filter = make_filter(3)
'''

RUN = (
    SESSION
    + """
import os
from featurecache import why
from featurecache.fingerprint.code import libraries
fake = json.loads(os.environ.get("FAKE_VERSIONS", "{}"))
if fake:
    real = libraries.distribution_version
    libraries.distribution_version = lambda name: fake.get(name) or real(name)
from pipeline.features import base, downstream, factory_filter
b = base(8)
d = downstream(b)
f = factory_filter(b)
engine = __import__("featurecache").default_cache().engine
engine.publisher.flush()
events = {}
for (feature, kind), count in engine.session.by_feature.items():
    if count and (kind == "miss" or feature not in events):
        events[feature] = kind
reasons = {}
for name in ("base", "downstream", "factory_filter"):
    if events.get(name) == "miss":
        reasons[name] = why(name).explanation.messages()
print(json.dumps({"events": events, "reasons": reasons, "sums": [int(d["w"].sum()), f.height]}))
"""
)


def edit(project: Project, relative: str, old: str, new: str) -> None:
    path = project.root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    project.write(relative, text.replace(old, new, 1))


# (step name, file, old, new, expected events, a phrase `why` must say for each miss)
MATRIX: list[tuple[str, str, str, str, dict[str, str], dict[str, str]]] = [
    (
        "comment added",
        "pipeline/features.py",
        "    df = clean_ts(df)\n",
        "    df = clean_ts(df)  # tidy timestamps\n",
        {"base": "hit", "downstream": "hit", "factory_filter": "hit"},
        {},
    ),
    (
        "docstring changed",
        "pipeline/features.py",
        '"""Base table."""',
        '"""The base table, documented."""',
        {"base": "hit", "downstream": "hit", "factory_filter": "hit"},
        {},
    ),
    (
        "code reformatted",
        "pipeline/features.py",
        "    df = Scaler(scale).apply(df)\n",
        "    df = Scaler(\n        scale,\n    ).apply(\n        df\n    )\n",
        {"base": "hit", "downstream": "hit", "factory_filter": "hit"},
        {},
    ),
    (
        "unrelated function changed",
        "pipeline/util.py",
        "    return UNRELATED\n",
        "    return UNRELATED + 1\n",
        {"base": "hit", "downstream": "hit", "factory_filter": "hit"},
        {},
    ),
    (
        "unrelated constant changed",
        "pipeline/util.py",
        "UNRELATED = 1\n",
        "UNRELATED = 2\n",
        {"base": "hit", "downstream": "hit", "factory_filter": "hit"},
        {},
    ),
    (
        "upstream code changed, output did not (early cutoff)",
        "pipeline/features.py",
        'pl.col("v") + 0)\n\n    shift',
        'pl.col("v") - 0)\n\n    shift',
        {"base": "miss", "downstream": "hit", "factory_filter": "hit"},
        {"base": "function body of `base`"},
    ),
    (
        "body literal changed",
        "pipeline/features.py",
        'pl.DataFrame({"v": list(range(n))})',
        'pl.DataFrame({"v": list(range(n + 1))})',
        {"base": "miss", "downstream": "miss", "factory_filter": "miss"},
        {"base": "base", "downstream": "input `df`"},
    ),
    (
        "helper in the same module changed",
        "pipeline/util.py",
        'pl.col("v") + helper_inner(0)',
        'pl.col("v") + helper_inner(1)',
        {"base": "miss"},
        {"base": "clean_ts"},
    ),
    (
        "a helper's helper changed",
        "pipeline/util.py",
        "    return x + 0\n",
        "    return x + 1\n",
        {"base": "miss"},
        {"base": "helper_inner"},
    ),
    (
        "helper in another module changed (import m)",
        "pipeline/other.py",
        'pl.col("v") + 0',
        'pl.col("v") + 1',
        {"base": "miss"},
        {"base": "other_helper"},
    ),
    (
        "helper in another module changed (from m import f)",
        "pipeline/other.py",
        'pl.col("v") - 0',
        'pl.col("v") - 1',
        {"base": "miss"},
        {"base": "from_helper"},
    ),
    (
        "module constant changed",
        "pipeline/util.py",
        "GAP = 30\n",
        "GAP = 45\n",
        {"base": "miss"},
        {"base": "GAP"},
    ),
    (
        "default argument changed",
        "pipeline/features.py",
        "scale: int = 2",
        "scale: int = 3",
        {"base": "miss"},
        {"base": "scale"},
    ),
    (
        "closure value changed (factory)",
        "pipeline/features.py",
        "make_filter(3)",
        "make_filter(4)",
        {"base": "hit", "downstream": "hit", "factory_filter": "miss"},
        {"factory_filter": "threshold"},
    ),
    (
        "method of a project class changed",
        "pipeline/util.py",
        'pl.col("v") * self.k',
        'pl.col("v") * self.k * 1',
        {"base": "miss"},
        {"base": "Scaler"},
    ),
    (
        "nested function changed",
        "pipeline/features.py",
        '        return d.with_columns(pl.col("v") - 0)',
        '        return d.with_columns(pl.col("v") * 1)',
        {"base": "miss"},
        {"base": "function body of `base`"},
    ),
    (
        "lambda changed",
        "pipeline/features.py",
        'shift = lambda d: d.with_columns(pl.col("v") + 0)',
        'shift = lambda d: d.with_columns(pl.col("v") + 1)',
        {"base": "miss"},
        {"base": "base"},
    ),
    (
        "decorator option changed",
        "pipeline/features.py",
        'depends_on=["d1"]',
        'depends_on=["d2"]',
        {"base": "hit", "downstream": "miss"},
        {"downstream": "d"},
    ),
    (
        "version bumped",
        "pipeline/features.py",
        'version="1"',
        'version="2"',
        {"base": "miss"},
        {"base": "version"},
    ),
]


@pytest.mark.slow
def test_invalidation_matrix_through_the_decorator(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "proj")
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/util.py", UTIL)
    project.write("pipeline/other.py", OTHER)
    project.write("pipeline/features.py", FEATURES)

    first = project.run_json(RUN)
    assert first["events"] == {"base": "miss", "downstream": "miss", "factory_filter": "miss"}
    assert project.run_json(RUN)["events"] == {
        "base": "hit",
        "downstream": "hit",
        "factory_filter": "hit",
    }

    report = []
    for name, relative, old, new, expected, because in MATRIX:
        edit(project, relative, old, new)
        result = project.run_json(RUN)
        for feature, kind in expected.items():
            assert result["events"][feature] == kind, (name, feature, result)
        for feature, phrase in because.items():
            text = " | ".join(result["reasons"][feature])
            assert phrase in text, (name, feature, text)
        report.append((name, result["events"], result["reasons"]))

    # A referenced distribution upgraded (simulated through the metadata lookup).
    upgraded = project.run_json(RUN, FAKE_VERSIONS=json.dumps({"polars": "99.0.0"}))
    assert upgraded["events"]["base"] == "miss"
    assert "polars" in " ".join(upgraded["reasons"]["base"]) and "99.0.0" in " ".join(
        upgraded["reasons"]["base"]
    )
    report.append(("polars upgraded", upgraded["events"], upgraded["reasons"]))
    (tmp_path / "matrix.json").write_text(json.dumps(report, indent=1))
