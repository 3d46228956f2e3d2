"""@cached_feature end to end: a miss in one process, a hit in the next, for every frame type."""

from __future__ import annotations

import pytest

from tests.e2e import SESSION, Project

FEATURES = """
import polars as pl
import pyarrow as pa
from featurecache import cached_feature

CALLS = "calls.log"

def _count(name):
    with open(CALLS, "a") as handle:
        handle.write(name + "\\n")

@cached_feature
def polars_feature(n: int) -> pl.DataFrame:
    _count("polars")
    return pl.DataFrame({"x": list(range(n)), "y": [f"s{i}" for i in range(n)]})

@cached_feature
def lazy_feature(n: int) -> pl.LazyFrame:
    _count("lazy")
    return pl.LazyFrame({"x": list(range(n)), "g": [i % 3 for i in range(n)]})

@cached_feature
def arrow_feature(n: int) -> pa.Table:
    _count("arrow")
    return pa.table({"x": list(range(n)), "z": [float(i) / 2 for i in range(n)]})

@cached_feature
def pandas_feature(n: int):
    import pandas as pd
    _count("pandas")
    idx = pd.Index([f"k{i}" for i in range(n)], name="key")
    return pd.DataFrame(
        {
            "a": pd.array(list(range(n)), dtype="Int64"),
            "b": pd.Categorical(["u", "v"] * (n // 2)),
            "t": pd.date_range("2026-01-01", periods=n, freq="h", tz="Europe/Berlin"),
        },
        index=idx,
    )

@cached_feature
def chained(df: pl.DataFrame) -> pl.DataFrame:
    _count("chained")
    return df.with_columns((pl.col("x") * 2).alias("x2"))
"""

DESCRIBE = (
    SESSION
    + """
import polars as pl, pyarrow as pa
from features import *
out = {}
p = polars_feature(10)
out["polars"] = [type(p).__name__, p.to_dicts()[:2]]
l = lazy_feature(12)
out["lazy"] = [type(l).__name__, l.filter(pl.col("g") == 1).collect().height]
a = arrow_feature(8)
out["arrow"] = [type(a).__name__, a.column("z").to_pylist()[:3]]
d = pandas_feature(6)
out["pandas"] = [type(d).__name__, d.index.name, [str(t) for t in d.dtypes], list(d.index[:2]), str(d["t"].iloc[1])]
c = chained(p)
out["chained"] = [type(c).__name__, c["x2"].to_list()[:3]]
out["session"] = _session()
out["calls"] = sorted(open("calls.log").read().split())
print(json.dumps(out))
"""
)


def test_miss_then_hit_in_fresh_processes_for_every_frame_type(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write("features.py", FEATURES)
    first = project.run_json(DESCRIBE)
    second = project.run_json(DESCRIBE)
    assert first["session"] == {"hits": 0, "misses": 5}
    assert second["session"] == {"hits": 5, "misses": 0}
    # Nothing ran again in the second process.
    assert (
        second["calls"]
        == first["calls"]
        == sorted(["polars", "lazy", "arrow", "pandas", "chained"])
    )
    for kind in ("polars", "lazy", "arrow", "pandas", "chained"):
        assert first[kind] == second[kind], kind
    assert first["polars"][0] == "DataFrame"
    assert first["lazy"] == ["LazyFrame", 4]
    assert first["arrow"][0] == "Table"
    assert first["pandas"][0:2] == ["DataFrame", "key"]
    assert first["pandas"][2][:2] == ["Int64", "category"]
    assert first["pandas"][3] == ["k0", "k1"]


def test_changed_argument_is_a_miss_and_defaults_bind(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write(
        "feat.py",
        """
        import polars as pl
        from featurecache import cached_feature

        @cached_feature
        def scaled(n: int, factor: int = 2) -> pl.DataFrame:
            with open("calls.log", "a") as h:
                h.write(f"{n},{factor}\\n")
            return pl.DataFrame({"v": [i * factor for i in range(n)]})
        """,
    )
    script = (
        SESSION
        + """
from feat import scaled
import sys
scaled(3); scaled(3, 2); scaled(n=3, factor=2); scaled(3, factor=3); scaled(4)
print(json.dumps(_session()))
"""
    )
    assert project.run_json(script) == {"hits": 2, "misses": 3}
    assert project.run_json(script) == {"hits": 5, "misses": 0}


def test_function_that_raises_stores_nothing_and_exception_is_unchanged(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write(
        "feat.py",
        """
        import polars as pl
        from featurecache import cached_feature

        class Boom(Exception):
            pass

        @cached_feature
        def explode(n: int) -> pl.DataFrame:
            raise Boom(f"no {n}")
        """,
    )
    result = project.run_json(
        SESSION
        + """
from feat import explode, Boom
try:
    explode(1)
except Boom as exc:
    caught = [type(exc).__name__, str(exc)]
from featurecache.cli.commands.ls import list_artifacts
print(json.dumps({"caught": caught, "artifacts": len(list_artifacts()), "session": _session()}))
"""
    )
    assert result == {
        "caught": ["Boom", "no 1"],
        "artifacts": 0,
        "session": {"hits": 0, "misses": 0},
    }


def test_unsupported_return_type_is_a_typed_error_and_stores_nothing(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write(
        "feat.py",
        """
        from featurecache import cached_feature

        import threading

        @cached_feature
        def not_a_frame(n: int):
            # Dicts, tuples and scalars are stored (composite results); a lock is not.
            return {"n": n, "guard": threading.Lock()}
        """,
    )
    result = project.run_json(
        SESSION
        + """
from feat import not_a_frame
from featurecache import UnsupportedOutputError
try:
    not_a_frame(1)
except TypeError as exc:
    err = [isinstance(exc, UnsupportedOutputError), str(exc)]
from featurecache.cli.commands.ls import list_artifacts
print(json.dumps({"err": err, "artifacts": len(list_artifacts())}))
"""
    )
    assert result["err"][0] is True
    assert "not_a_frame" in result["err"][1] and "['guard']" in result["err"][1]
    assert result["artifacts"] == 0


def test_unsupported_argument_type_names_the_argument(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write(
        "feat.py",
        """
        import polars as pl
        from featurecache import cached_feature

        @cached_feature
        def takes_object(frame: pl.DataFrame, thing: object) -> pl.DataFrame:
            return frame
        """,
    )
    result = project.run_json(
        SESSION
        + """
import polars as pl
from feat import takes_object
from featurecache import UnsupportedInputError
import threading
class Thing:  # a user object holding live state (an empty one would be accepted)
    def __init__(self): self.lock = threading.Lock()
try:
    takes_object(pl.DataFrame({"a": [1]}), Thing())
except TypeError as exc:
    err = [isinstance(exc, UnsupportedInputError), exc.argument, str(exc)]
print(json.dumps({"err": err}))
"""
    )
    assert result["err"][0] is True
    assert result["err"][1] == "thing"
    assert "Thing" in result["err"][2] and "Supported" in result["err"][2]


@pytest.mark.slow  # three fresh processes per case, six cases
@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize(
    ("feature", "total"),
    [
        ("polars_feature", "int(value['x'].sum())"),
        ("pandas_feature", "int(value['a'].sum())"),
        ("arrow_feature", "int(pc.sum(value['x']).as_py())"),
    ],
)
def test_corrupted_artifact_is_quarantined_and_recomputed(tmp_path, damage, feature, total):
    project = Project.create(tmp_path / "proj")
    project.write("features.py", FEATURES)
    script = (
        SESSION
        + f"""
import pyarrow.compute as pc
from features import {feature}
value = {feature}(50)
print(json.dumps({{"sum": {total}, "session": _session()}}))
"""
    )
    first = project.run_json(script)
    files = [
        p
        for p in (project.root / "cache" / "artifacts").rglob("*.parquet")
        if "quarantine" not in p.parts
    ]
    assert len(files) == 1
    path = files[0]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    second = project.run_json(script)
    assert second["sum"] == first["sum"]
    assert second["session"] == {"hits": 0, "misses": 1}
    quarantined = list((project.root / "cache" / "artifacts" / "quarantine").glob("*.parquet"))
    assert len(quarantined) == 1
    third = project.run_json(script)
    assert third["session"] == {"hits": 1, "misses": 0}


def test_artifact_deleted_behind_the_catalogs_back_is_recomputed(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write("features.py", FEATURES)
    script = (
        SESSION
        + """
from features import arrow_feature
t = arrow_feature(20)
print(json.dumps({"rows": t.num_rows, "session": _session()}))
"""
    )
    project.run_json(script)
    for path in (project.root / "cache" / "artifacts").rglob("*.parquet"):
        path.chmod(0o644)
        path.unlink()
    again = project.run_json(script)
    assert again == {"rows": 20, "session": {"hits": 0, "misses": 1}}


# Where a publishing child is killed: half-way through writing a file (a result over
# parquet.SMALL_TABLE_BYTES), or with a small result's temp file written from memory and not
# yet made durable.
_KILLED_WHILE = {
    "writing": (
        5000,
        """
import featurecache.parquet as aio
real = aio.write_parquet
def crash_midway(table, path, settings, **kw):
    real(table, path, settings, **kw)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    open(MARKER, "w").close()
    time.sleep(600)
aio.write_parquet = crash_midway
""",
    ),
    "sealing": (
        1000,
        """
import featurecache.store.local as local
def crash_before_sealing(temp):
    open(MARKER, "w").close()
    time.sleep(600)
local._seal = crash_before_sealing
""",
    ),
}


@pytest.mark.slow  # SIGKILLs a publishing process
@pytest.mark.parametrize("phase", sorted(_KILLED_WHILE))
def test_sigkill_while_publishing_leaves_no_artifact_and_no_row(tmp_path, phase):
    import os
    import signal
    import subprocess
    import sys
    import time

    project = Project.create(tmp_path / "proj")
    project.write("features.py", FEATURES)
    marker = tmp_path / "writing"
    rows, hook = _KILLED_WHILE[phase]
    script = f"""
import time
MARKER = {str(marker)!r}
{hook}
from features import polars_feature
polars_feature({rows})
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=project.root,
        env=project.env(
            FEATURECACHE_BACKGROUND_PUBLISH="0",
            FEATURECACHE_LEASE_SECONDS="2",
            FEATURECACHE_HEARTBEAT_SECONDS="0.5",
        ),
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, "the child exited before writing"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = project.root / "cache" / "artifacts"
    visible = [p for p in store.rglob("*.parquet") if not p.name.startswith(".")]
    assert visible == []
    state = project.run_json(
        SESSION
        + """
from featurecache.cli.commands.ls import list_artifacts
print(json.dumps({"artifacts": len(list_artifacts())}))
"""
    )
    assert state == {"artifacts": 0}
    again = project.run_json(
        SESSION
        + f"""
from features import polars_feature
df = polars_feature({rows})
print(json.dumps({{"rows": df.height, "session": _session()}}))
""",
        FEATURECACHE_LEASE_SECONDS="2",
        FEATURECACHE_HEARTBEAT_SECONDS="0.5",
    )
    assert again == {"rows": rows, "session": {"hits": 0, "misses": 1}}


# -- methods: ``self`` is an argument, static methods never bind ----------------------------

METHODS = """
import enum
import os
from dataclasses import dataclass

import polars as pl
from featurecache import cached_feature

def _count(name):
    # The counter's path comes from the environment: it is no input of the features.
    with open(os.environ["CALLS_FILE"], "a") as handle:
        handle.write(name + "\\n")

@dataclass(frozen=True)
class Config:
    factor: int

    def _scale(self, df):
        return df.with_columns(pl.col("x") * self.factor)

    @cached_feature
    def scaled(self, df: pl.DataFrame) -> pl.DataFrame:
        _count(f"scaled{self.factor}")
        return self._scale(df)

class Region(enum.Enum):
    EU = "eu"
    US = "us"

    def _rate(self):
        return 2 if self is Region.EU else 3

    @cached_feature
    def taxed(self, df: pl.DataFrame) -> pl.DataFrame:
        _count(f"taxed-{self.value}")
        return df.with_columns(pl.col("x") * self._rate())

class Pipeline:
    # polars pipelines group features as static methods of a class, in either order.
    @staticmethod
    @cached_feature
    def plus_one(df: pl.DataFrame) -> pl.DataFrame:
        _count("plus_one")
        return df.with_columns(pl.col("x") + 1)

    @cached_feature
    @staticmethod
    def minus_one(df: pl.DataFrame) -> pl.DataFrame:
        _count("minus_one")
        return df.with_columns(pl.col("x") - 1)
"""

CALL_METHODS = (
    SESSION
    + """
import inspect, os, pickle
import polars as pl
from featurecache import Feature
from methods import Config, Pipeline, Region

df = pl.DataFrame({"x": [1, 2, 3]})
out = {
    "scaled": Config(2).scaled(df)["x"].to_list(),
    "scaled3": Config(3).scaled(df)["x"].to_list(),
    "taxed": Region.EU.taxed(df)["x"].to_list(),
    "plus": [Pipeline.plus_one(df)["x"].to_list(), Pipeline().plus_one(df)["x"].to_list()],
    "minus": [Pipeline.minus_one(df)["x"].to_list(), Pipeline().minus_one(df)["x"].to_list()],
    "names": [Config.scaled.name, Region.taxed.name, Pipeline.plus_one.name,
              Pipeline.minus_one.name],
    "features": [isinstance(f, Feature) for f in (Config.scaled, Pipeline.minus_one)],
    "bound_signature": str(inspect.signature(Config(2).scaled)),
    "pickled": [
        pickle.loads(pickle.dumps(Pipeline.minus_one)) is Pipeline.minus_one,
        pickle.loads(pickle.dumps(Config(2).scaled))(df)["x"].to_list(),
    ],
    "calls": sorted(open(os.environ["CALLS_FILE"]).read().split()),
    "session": _session(),
}
print(json.dumps(out))
"""
)


def test_methods_and_static_methods_hit_in_a_fresh_process(tmp_path):
    project = Project.create(tmp_path / "proj")
    project.write("methods.py", METHODS)
    calls = str(tmp_path / "calls.log")
    first = project.run_json(CALL_METHODS, CALLS_FILE=calls)
    second = project.run_json(CALL_METHODS, CALLS_FILE=calls)
    computed = sorted(["scaled2", "scaled3", "taxed-eu", "plus_one", "minus_one"])
    assert first["calls"] == computed
    # Config(2) and Config(3) are two keys: ``self`` is fingerprinted like any argument. The
    # pickled bound method is Config(2).scaled again: a hit in the same process.
    assert first["session"] == {"hits": 3, "misses": 5}
    assert second["calls"] == computed  # nothing ran in the second process
    assert second["session"] == {"hits": 8, "misses": 0}
    for field in ("scaled", "scaled3", "taxed", "plus", "minus", "pickled"):
        assert second[field] == first[field], field
    assert first["scaled"] == [2, 4, 6] and first["scaled3"] == [3, 6, 9]
    assert first["taxed"] == [2, 4, 6]
    assert first["plus"] == [[2, 3, 4]] * 2 and first["minus"] == [[0, 1, 2]] * 2
    assert first["names"] == [
        "Config.scaled",
        "Region.taxed",
        "Pipeline.plus_one",
        "Pipeline.minus_one",
    ]
    assert first["features"] == [True, True]
    # Bound like a function's method: ``self`` is no longer a parameter.
    assert first["bound_signature"] == (
        "(df: polars.dataframe.frame.DataFrame) -> polars.dataframe.frame.DataFrame"
    )
    assert first["pickled"] == [True, [2, 4, 6]]


CALL_TAXED = (
    SESSION
    + """
import polars as pl
from methods import Region
print(json.dumps({
    "taxed": Region.EU.taxed(pl.DataFrame({"x": [1, 2, 3]}))["x"].to_list(),
    "session": _session(),
}))
"""
)


def test_editing_a_method_the_feature_reaches_through_self_is_a_miss(tmp_path):
    """``self._rate()`` is no global name the code walker can follow: the class's code is part
    of the method's identity. An Enum ``self`` is fingerprinted by its value only, so without
    that the edit below was a stale hit."""
    project = Project.create(tmp_path / "proj")
    project.write("methods.py", METHODS)
    calls = str(tmp_path / "calls.log")
    first = project.run_json(CALL_TAXED, CALLS_FILE=calls)
    assert first == {"taxed": [2, 4, 6], "session": {"hits": 0, "misses": 1}}
    project.write("methods.py", METHODS.replace("return 2 if self", "return 5 if self"))
    second = project.run_json(CALL_TAXED, CALLS_FILE=calls)
    assert second == {"taxed": [5, 10, 15], "session": {"hits": 0, "misses": 1}}
    third = project.run_json(CALL_TAXED, CALLS_FILE=calls)
    assert third == {"taxed": [5, 10, 15], "session": {"hits": 1, "misses": 0}}


def _click_rate(clicks: int, days: int = 7) -> float:
    return clicks / days


def _cached_click_rate():
    """A module-level feature, decorated on first use (decorating opens no cache)."""
    from featurecache import cached_feature

    global _click_rate
    if not hasattr(_click_rate, "func"):
        _click_rate = cached_feature(_click_rate)
    return _click_rate


def test_a_feature_passes_for_its_function_and_stays_a_feature():
    """What Hamilton and other function collectors read, in-process: a function, with the
    wrapped function's code, signature and hints; still a Feature, pickled by reference."""
    import copy
    import functools
    import inspect
    import pickle
    import types
    import typing

    from featurecache import Feature

    rate = _cached_click_rate()
    plain = rate.func
    assert inspect.isfunction(rate) and isinstance(rate, types.FunctionType)
    assert type(rate) is Feature and isinstance(rate, Feature)
    assert rate.__wrapped__ is plain
    assert rate.__code__ is plain.__code__ and rate.__globals__ is plain.__globals__
    assert rate.__defaults__ == (7,) and rate.__kwdefaults__ is None and rate.__closure__ is None
    assert inspect.getsource(rate) == inspect.getsource(plain)
    assert str(inspect.signature(rate)) == "(clicks: 'int', days: 'int' = 7) -> 'float'"
    assert typing.get_type_hints(rate) == {"clicks": int, "days": int, "return": float}
    assert copy.copy(rate) is rate and copy.deepcopy(rate) is rate
    assert pickle.loads(pickle.dumps(rate)) is rate  # by reference: module and qualname

    @functools.wraps(rate)
    def logged(*args: int) -> float:
        return rate(*args)

    assert logged.__wrapped__ is rate and logged.__name__ == "_click_rate"
    assert str(inspect.signature(logged)) == str(inspect.signature(rate))
