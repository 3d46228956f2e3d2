"""The composite-result codec, leaf type by leaf type: every value goes through real Parquet
files (``tests.results.codec_support.roundtrip``: the library's writer and readers, the structure
through JSON) and must come back with the same types and values. Refusals name the feature,
where in the result the bad leaf is and what to return instead."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurecache.errors import UnsupportedOutputError
from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.frames import to_arrow
from featurecache.results import codec
from featurecache.results.codec import CompositeStructureError, UnsupportedResultPartError
from tests.results.codec_support import assert_same, roundtrip


class Point(NamedTuple):
    x: int
    y: pd.Series


class Pair(tuple[int, int]):
    """A tuple subclass that is not a NamedTuple: a hit could only hand back a plain tuple."""


def check(value: object, *, from_bytes: bool = False) -> None:
    assert_same(value, roundtrip(value, from_bytes=from_bytes))


# --- Python scalars ------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**100,
    -(2**200),
    1.0,
    -0.0,
    0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    5e-324,
    "",
    "1",
    "é ∑ 😀",
    "a\x00b",  # PostgreSQL's JSONB refuses NUL: spelled in base64 in the structure
    "\ud800",  # an unpaired surrogate
    b"",
    b"\x00\xff",
    dt.date(2024, 2, 29),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6),  # noqa: DTZ001 - a naive datetime must stay naive
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),  # the second 02:30 that night
    dt.time(12, 30, 1, 5),
    dt.time(12, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    decimal.Decimal("1.10"),
    decimal.Decimal("-0"),
    decimal.Decimal("1E+3"),
    decimal.Decimal("NaN"),
    decimal.Decimal("-Infinity"),
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_python_scalars_round_trip_with_their_types(value: object) -> None:
    check(value)
    check([value])


def test_one_one_point_zero_true_and_the_string_one_stay_distinct() -> None:
    value = [1, 1.0, True, "1", b"1", decimal.Decimal(1)]
    back = roundtrip(value)
    assert_same(value, back)
    assert [type(v) for v in back] == [int, float, bool, str, bytes, decimal.Decimal]  # type: ignore[attr-defined]
    ids = {codec.composite_id(codec.split(v, "f").structure, []) for v in value}
    assert len(ids) == len(value)


NUMPY_SCALARS: list[Any] = [
    np.float64(1.5),
    np.float32(-0.0),
    np.float16(np.nan),
    np.longdouble(1) / 3,
    np.int8(-5),
    np.uint64(2**64 - 1),
    np.bool_(True),
    np.complex128(1 - 2j),
    np.datetime64("2024-01-02", "D"),
    np.datetime64("NaT", "ns"),
    np.timedelta64(5, "ms"),
    np.str_("héllo"),
    np.bytes_(b"ab\x00"),
    np.zeros(1, dtype=[("a", "<i4"), ("b", "<f8", (2,))])[0],
]


@pytest.mark.parametrize("value", NUMPY_SCALARS, ids=repr)
def test_numpy_scalars_come_back_as_numpy_scalars(value: object) -> None:
    check(value)
    check({"v": value})


class Count(int):
    """An int subclass: a hit could only hand back a plain int."""


PANDAS_SCALARS: list[Any] = [
    pd.Timestamp("2024-01-01 00:00:00.123456789"),
    pd.Timestamp("1000-01-01").as_unit("s"),  # no nanosecond value: kept in its own unit
    pd.Timestamp("2024-10-27 02:30").tz_localize("Europe/Paris", ambiguous=False),
    pd.Timestamp("2024-01-01", tz="UTC"),
    pd.Timedelta("1 day 3ns"),
    pd.Timedelta(3, unit="s"),
    pd.NaT,
    pd.NA,
]


@pytest.mark.parametrize("value", PANDAS_SCALARS, ids=repr)
def test_pandas_scalars_keep_their_unit_and_zone(value: object) -> None:
    back = roundtrip([value])
    assert isinstance(back, list)
    assert type(back[0]) is type(value)
    assert repr(back[0]) == repr(value)
    assert getattr(back[0], "unit", None) == getattr(value, "unit", None)


@pytest.mark.parametrize(
    "value",
    [Count(3), Pair((1, 2)), collections.Counter("ab")],
    ids=["int-subclass", "tuple-subclass-instance", "Counter"],
)
def test_subclasses_of_supported_types_are_refused_not_coerced(value: object) -> None:
    with pytest.raises(UnsupportedOutputError):
        codec.split([value], "f")


def test_a_tzinfo_that_cannot_be_named_again_is_refused() -> None:
    class Fixed(dt.tzinfo):
        def utcoffset(self, _: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(hours=1)

    with pytest.raises(UnsupportedResultPartError) as caught:
        codec.split({"when": dt.datetime(2024, 1, 1, tzinfo=Fixed())}, "f")
    assert caught.value.where == "result['when']"
    assert "zoneinfo.ZoneInfo" in str(caught.value)


# --- numpy arrays --------------------------------------------------------------------------

ALIGNED = np.dtype([("a", "<i2"), ("b", "<f8")], align=True)
TITLED = np.dtype({"names": ["a", "b"], "formats": ["<i4", ("<f8", (2,))], "titles": ["A", None]})
ARRAYS: dict[str, Any] = {
    "0-d": np.array(3.5),
    "empty 2-d": np.empty((0, 3), dtype="int32"),
    "fortran": np.asfortranarray(np.arange(12, dtype="int64").reshape(3, 4)),
    "3-d": np.arange(24, dtype="uint16").reshape(2, 3, 4),
    "bool": np.array([[True, False], [False, True]]),
    "int8": np.array([-128, 0, 127], dtype="int8"),
    "uint64": np.array([0, 2**64 - 1], dtype="uint64"),
    "float16": np.array([1.5, np.nan, -0.0, np.inf], dtype="float16"),
    "float32 nan": np.array([np.nan, -0.0, 1e-45], dtype="float32"),
    "longdouble": np.array([1, 2], dtype=np.longdouble) / 3,
    "complex64": np.array([1 + 2j, np.nan], dtype="complex64"),
    "complex128": np.array([[1 - 1j]], dtype="complex128"),
    "datetime ns NaT": np.array(["2024-01-01T00:00:00.000000001", "NaT"], dtype="M8[ns]"),
    "datetime D": np.array(["2024-01-01", "NaT"], dtype="M8[D]"),
    "datetime 15m": np.array(["2024-01-01T00:15"], dtype="M8[15m]"),
    "datetime generic": np.array(["NaT"], dtype="M8"),
    "timedelta ms": np.array([1, -2, "NaT"], dtype="m8[ms]"),
    "timedelta Y": np.array([1], dtype="m8[Y]"),
    "bytes S": np.array([b"ab", b"a\x00b", b"", b"abc\x00"], dtype="S5"),
    "unicode U": np.array(["ab", "a\x00b", "", "é😀"], dtype="U4"),
    "unicode surrogate": np.array(["\ud800x"], dtype="U2"),
    "big-endian": np.array([1, 256, -1], dtype=">i4"),
    "big-endian float": np.array([1.5, np.nan], dtype=">f8"),
    "void": np.array([b"\x00\x01", b"\xff\xfe"], dtype="V2"),
    "structured": np.array([(1, 2.5), (3, np.nan)], dtype=[("a", "<i4"), ("b", "<f8")]),
    "structured aligned": np.zeros(3, dtype=ALIGNED),
    "structured nested titled": np.ones(2, dtype=TITLED),
    "structured empty": np.zeros(4, dtype=np.dtype([])),
    "StringDType": np.array(["a", "", "long string " * 4], dtype=np.dtypes.StringDType()),
    "one million floats": np.linspace(0, 1, 1_000_000),
}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_numpy_arrays_of_any_dtype_and_shape_round_trip(name: str) -> None:
    check(ARRAYS[name])


def test_a_numpy_array_comes_back_writable_from_bytes_too() -> None:
    back = roundtrip((np.arange(5),), from_bytes=True)
    assert isinstance(back, tuple)
    back[0][0] = 7  # a hit's array takes writes like the computed one


def test_an_object_array_is_refused_saying_to_convert_it() -> None:
    with pytest.raises(UnsupportedResultPartError) as caught:
        codec.split((1, [np.array(["a", 1], dtype=object)]), "labels")
    message = str(caught.value)
    assert caught.value.feature == "labels"
    assert caught.value.where == "result[1][0]"
    assert "numpy.ndarray of dtype object at result[1][0]" in message
    assert "astype(str)" in message


# --- pandas Series -------------------------------------------------------------------------

SERIES: dict[str, Any] = {
    "int named": pd.Series([1, 2, 3], name="y"),
    "unnamed": pd.Series([1.5, np.nan]),
    "name 0": pd.Series([1.5, np.nan], name=0),
    "name tuple": pd.Series([1], name=("a", 1)),
    "name numpy int": pd.Series([1], name=np.int64(3)),
    "name same as index": pd.Series([1, 2], name="k", index=pd.Index([5, 6], name="k")),
    "range index": pd.Series([1, 2, 3], index=pd.RangeIndex(10, 16, 2)),
    "str index": pd.Series([1, 2], index=["a", "b"]),
    "object index": pd.Series([1, 2], index=pd.Index(["a", "b"], dtype=object)),
    "duplicate index": pd.Series([1, 2], index=pd.Index(["a", "a"], name="k")),
    "multiindex": pd.Series(
        [1, 2, 3],
        index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", None]),
    ),
    "multiindex object level": pd.Series(
        [1, 2],
        index=pd.MultiIndex.from_arrays([pd.Index(["a", "b"], dtype=object), [1, 2]]),
    ),
    "datetime index freq": pd.Series([1, 2, 3], index=pd.date_range("2024", periods=3, freq="D")),
    "categorical index": pd.Series([1, 2], index=pd.CategoricalIndex(["x", "y"])),
    "categorical": pd.Series(["a", "b", None, "a"], dtype="category"),
    "ordered categorical": pd.Series(pd.Categorical(["lo", "hi"], ["lo", "hi"], ordered=True)),
    "nullable Int64": pd.Series([1, None, 3], dtype="Int64"),
    "nullable boolean": pd.Series([True, None], dtype="boolean"),
    "datetime tz": pd.Series(pd.date_range("2024", periods=3, tz="Europe/Paris")),
    "timedelta": pd.Series(pd.to_timedelta([1, 2], unit="s")),
    "string": pd.Series(["a", None, "c"], dtype="string"),
    "str": pd.Series(["a", None, "c"], dtype="str"),
    "object strings": pd.Series(["a", "b"], dtype=object),
    "object strings with None": pd.Series(["a", None], dtype=object),
    "object strings with nan": pd.Series(["a", np.nan, None, pd.NA], dtype=object),
    "bool": pd.Series([True, False]),
    "empty": pd.Series([], dtype="float64"),
    "uint8": pd.Series([1, 255], dtype="uint8"),
    "period": pd.Series(pd.period_range("2024-01", periods=2, freq="M")),
}


@pytest.mark.parametrize("name", list(SERIES))
def test_pandas_series_keep_name_index_and_dtype(name: str) -> None:
    check(SERIES[name])


def test_a_pandas_series_arrow_cannot_hold_names_its_place() -> None:
    with pytest.raises(UnsupportedResultPartError) as caught:
        codec.split({"y": pd.Series([1, "a"], dtype=object)}, "f")
    assert caught.value.where == "result['y']"
    assert "astype(str)" in str(caught.value)


POLARS_SERIES: dict[str, Any] = {
    "int": pl.Series("a", [1, None, 3]),
    "unnamed": pl.Series([1.5, float("nan")]),
    "string": pl.Series("s", ["x", None]),
    "categorical": pl.Series("c", ["x", "y", "x"], dtype=pl.Categorical),
    "enum": pl.Series("e", ["lo", "hi"], dtype=pl.Enum(["lo", "hi"])),
    "datetime tz": pl.Series("t", [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]).dt.convert_time_zone(
        "Asia/Tokyo"
    ),
    "list": pl.Series("l", [[1, 2], [], None]),
    "struct": pl.Series("st", [{"a": 1, "b": "x"}]),
    "decimal": pl.Series("d", [decimal.Decimal("1.10")]),
    "uint8": pl.Series("u", [1, 2], dtype=pl.UInt8),
}


@pytest.mark.parametrize("name", list(POLARS_SERIES))
def test_polars_series_keep_name_and_dtype(name: str) -> None:
    check(POLARS_SERIES[name])


# --- frames inside composites --------------------------------------------------------------


def frames() -> dict[str, Any]:
    return {
        "pandas": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=pd.Index([3, 4], name="i")),
        "polars": pl.DataFrame({"a": [1, 2], "c": pl.Series(["x", "y"], dtype=pl.Categorical)}),
        "arrow": pa.table({"a": [1, 2]}),
    }


def test_frames_inside_a_tuple_round_trip_and_a_lazy_frame_comes_back_lazy() -> None:
    parts = frames()
    value = (parts["pandas"], [parts["polars"]], {"t": parts["arrow"]}, parts["polars"].lazy())
    check(value)
    check(value, from_bytes=True)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_a_frame_in_a_tuple_is_the_same_artifact_as_the_frame_alone(kind: str) -> None:
    frame = frames()[kind]
    alone, _ = to_arrow(frame, "f")
    parts = codec.split((frame, 1), "f").parts
    assert fingerprint_table(parts[0].table) == fingerprint_table(alone)
    assert parts[0].kind == kind


def test_a_train_test_split_is_described_in_one_line() -> None:
    x = pd.DataFrame(np.zeros((1000, 12)), columns=[f"c{i}" for i in range(12)])
    y = pd.Series(np.arange(1000), dtype="int64")
    split = codec.split((x.iloc[:800], x.iloc[800:], y.iloc[:800], y.iloc[800:]), "split")
    assert codec.describe(split.structure) == (
        "tuple(pandas.DataFrame 800×12, pandas.DataFrame 200×12, pandas.Series int64 ×800, "
        "pandas.Series int64 ×200)"
    )
    assert [part.kind for part in split.parts] == ["pandas"] * 4


def test_describe_counts_repeats_and_cuts_long_containers() -> None:
    names = [f"col{i}" for i in range(50)]
    assert codec.describe(codec.split(names, "f").structure) == "list(50 × str)"
    mixed = codec.split({"n": 3, "arr": np.zeros((2, 3), "float32"), "l": [*range(20), "x"]}, "f")
    assert codec.describe(mixed.structure) == (
        "dict(n: int, arr: numpy.ndarray float32 2×3, l: list(20 × int, str))"
    )
    assert len(codec.describe(codec.split([[i, str(i)] for i in range(500)], "f").structure)) <= 200


# --- containers ----------------------------------------------------------------------------


def test_tuples_lists_and_dict_order_are_kept_and_empty_containers_are_fine() -> None:
    value = {"z": (), "a": [], "m": {}, "nested": [(1, [{"k": ((),)}])], "": None}
    back = roundtrip(value)
    assert_same(value, back)
    assert isinstance(back, dict)
    assert list(back) == ["z", "a", "m", "nested", ""]


def test_dict_keys_with_nul_and_the_structure_json_is_standard() -> None:
    value = {"a\x00b": 1.5, "é": float("nan")}
    structure = codec.split(value, "f").structure
    text = json.dumps(structure, allow_nan=False)  # NaN is not JSON: PostgreSQL refuses it
    assert "\\u0000" not in text
    check(value)


def test_a_module_level_named_tuple_comes_back_as_itself() -> None:
    check(Point(1, pd.Series([1.0], name="p")))


def test_a_named_tuple_defined_in_a_function_is_refused() -> None:
    class Local(NamedTuple):
        a: int

    with pytest.raises(UnsupportedResultPartError, match="module level"):
        codec.split([Local(1)], "f")


def test_a_named_tuple_class_whose_fields_changed_cannot_be_joined() -> None:
    structure = codec.split(Point(1, pd.Series([1.0])), "f").structure
    structure["root"]["fields"] = ["x", "z"]
    with pytest.raises(CompositeStructureError, match="no longer has fields"):
        codec.join(structure, [pd.DataFrame({"values": [1.0]})])


@pytest.mark.parametrize(
    ("value", "where", "says"),
    [
        ({1: "a"}, "result key 1", "str keys"),
        ({"a": collections.OrderedDict(b=1)}, "result['a']", "plain dict"),
        ({"a": {1, 2}}, "result['a']", "sorted list"),
        ([pd.Index([1, 2])], "result[0]", "to_series"),
        ([object()], "result[0]", "convert other objects"),
        ((np.ma.masked_array([1, 2], mask=[True, False]),), "result[0]", "value.filled"),
        ([np.asmatrix(np.eye(2))], "result[0]", "np.asarray(value)"),
        ((1, pd.DataFrame({"a": [1, "x"]})), "result[1]", "one data type"),
        ({"s": pl.Series([object()], dtype=pl.Object)}, "result['s']", "series.cast("),
    ],
)
def test_refusals_say_where_and_what_to_return(value: object, where: str, says: str) -> None:
    with pytest.raises(UnsupportedOutputError) as caught:
        codec.split(value, "my_feature")
    assert isinstance(caught.value, UnsupportedResultPartError)
    assert caught.value.where == where
    message = str(caught.value)
    assert message.startswith("feature 'my_feature' returned ")
    assert says in message
    assert isinstance(caught.value, TypeError)


def test_an_unstorable_result_itself_is_named_without_a_place() -> None:
    with pytest.raises(UnsupportedResultPartError) as caught:
        codec.split(object(), "model")
    assert caught.value.where == "result"
    assert str(caught.value).startswith("feature 'model' returned builtins.object, which ")


def test_a_result_that_contains_itself_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UnsupportedResultPartError, match="contains itself"):
        codec.split(loop, "f")
    shared = [1]
    check([shared, shared])  # the same list twice is no cycle


def test_a_structure_nested_too_deeply_is_refused() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit()):
        deep = [deep]
    with pytest.raises(UnsupportedResultPartError, match="nested too deeply"):
        codec.split(deep, "f")


def test_too_many_inline_items_say_to_return_an_array() -> None:
    with pytest.raises(UnsupportedResultPartError, match="numpy array"):
        codec.split(list(range(codec.MAX_NODES + 1)), "f")


def test_an_unknown_codec_version_is_not_joined() -> None:
    with pytest.raises(CompositeStructureError):
        codec.join({"codec": "featurecache.composite/999", "root": {"t": "none"}}, [])


# --- what is and is not a composite; ids ---------------------------------------------------


def test_single_frames_keep_the_frame_path() -> None:
    for frame in [*frames().values(), pl.LazyFrame({"a": [1]})]:
        assert not codec.is_composite(frame)
    for other in [pd.Series([1]), pl.Series([1]), np.zeros(2), 1, None, (), [pd.DataFrame()]]:
        assert codec.is_composite(other)


def test_composite_id_survives_json_and_follows_parts_and_structure() -> None:
    structure = codec.split((pd.Series([1, 2]), 1), "f").structure
    ids = ["0" * 32]
    same = codec.composite_id(json.loads(json.dumps(structure)), ids)
    assert codec.composite_id(structure, ids) == same
    assert codec.composite_id(structure, ["1" * 32]) != same
    other = codec.split((pd.Series([1, 2]), 1.0), "f").structure
    assert codec.composite_id(other, ids) != same


_ID_SCRIPT = """
import decimal, numpy as np, pandas as pd
from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.results import codec
split = codec.split(
    {"b": (pd.Series([1.5], name="y"), np.arange(3)), "a": [1, 2.5, "x", decimal.Decimal("1.1")]},
    "f",
)
print(codec.composite_id(split.structure, [fingerprint_table(p.table) for p in split.parts]))
"""


def test_composite_ids_are_the_same_in_fresh_processes_with_other_hash_seeds() -> None:
    seen = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _ID_SCRIPT], capture_output=True, text=True, env=env, check=True
        )
        seen.add(done.stdout.strip())
    assert len(seen) == 1
