"""The composite codec's law, checked by hypothesis: any nesting of tuples, lists, NamedTuples
and str-keyed dicts over frames, Series, numpy arrays and scalars, split into parts, each part
written as a real Parquet artifact and read back with its kind, the structure through JSON,
joins back to a value of the same structure, the same types and the same values; and splitting
it again gives the same structure and the same part ids (the composite id is a function of the
value)."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from polars.testing.parametric import series as polars_series

from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.results import codec
from tests.results.codec_support import assert_same, roundtrip

ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), ZoneInfo("Europe/Paris")]
zones = st.none() | st.sampled_from(ZONES)

python_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.text(st.characters(codec="utf-8", categories=["Cs", "Cc", "L"])),  # NUL, surrogates
    st.binary(),
    st.dates(),
    st.datetimes(timezones=zones),
    st.times(timezones=zones),
    st.timedeltas(),
    st.decimals(),
)

pandas_scalars = st.one_of(
    st.just(pd.NaT),
    st.just(pd.NA),
    st.datetimes(timezones=zones).map(pd.Timestamp),
    st.timedeltas(dt.timedelta(days=-99_999), dt.timedelta(days=99_999)).map(pd.Timedelta),
)

# datetime64/timedelta64 of every unit, complex, float16, S and U strings, structured ones.
numpy_dtypes = st.one_of(
    hnp.scalar_dtypes(),
    hnp.byte_string_dtypes(max_len=4),
    hnp.unicode_string_dtypes(max_len=4),
    hnp.nested_dtypes(max_itemsize=64),
)
numpy_arrays = st.tuples(
    hnp.arrays(numpy_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    st.booleans(),
).map(lambda pair: np.asfortranarray(pair[0]) if pair[1] and pair[0].ndim > 1 else pair[0])
numpy_scalars = hnp.arrays(hnp.scalar_dtypes(), ()).map(lambda a: a[()])

_PANDAS_DTYPES = {
    "int64": (st.integers(-(2**63), 2**63 - 1), "int64"),
    "float64": (st.floats(), "float64"),
    "bool": (st.booleans(), "bool"),
    "Int64": (st.none() | st.integers(-(2**63), 2**63 - 1), "Int64"),
    "category": (st.none() | st.sampled_from(["lo", "mid", "hi"]), "category"),
    "string": (st.none() | st.text(max_size=5), "string"),
    "str": (st.text(max_size=5), "str"),
    "object": (st.none() | st.text(max_size=5), "object"),
    "datetime tz": (st.datetimes(timezones=st.just(dt.UTC)), "datetime64[us, UTC]"),
}


@st.composite
def pandas_series(draw: st.DrawFn) -> pd.Series:
    elements, dtype = _PANDAS_DTYPES[draw(st.sampled_from(sorted(_PANDAS_DTYPES)))]
    values = draw(st.lists(elements, max_size=6))
    index_kind = draw(st.sampled_from(["range", "offset range", "str", "int", "multi"]))
    n = len(values)
    if index_kind == "range":
        index: pd.Index = pd.RangeIndex(n)
    elif index_kind == "offset range":
        index = pd.RangeIndex(5, 5 + 3 * n, 3, name="r")
    elif index_kind == "str":
        index = pd.Index(draw(st.lists(st.text(max_size=3), min_size=n, max_size=n)), dtype=str)
    elif index_kind == "int":
        index = pd.Index(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)), name="i")
    else:
        index = pd.MultiIndex.from_arrays([[str(i % 2) for i in range(n)], list(range(n))])
    name = draw(st.none() | st.text(max_size=4) | st.integers(-5, 5))
    return pd.Series(pd.array(values, dtype=dtype), index=index, name=name)


_POLARS_DTYPES = [
    pl.Int64,
    pl.UInt8,
    pl.Float64,
    pl.Boolean,
    pl.String,
    pl.Date,
    pl.Datetime("us"),
    pl.Categorical,
    pl.List(pl.Int32),
]
polars_series_ = polars_series(allowed_dtypes=_POLARS_DTYPES, max_size=5)


@st.composite
def frames(draw: st.DrawFn) -> Any:
    values = draw(st.lists(st.integers(-5, 5), max_size=5))
    words = [str(v) for v in values]
    kind = draw(st.sampled_from(["pandas", "polars", "lazy", "arrow"]))
    if kind == "pandas":
        return pd.DataFrame({"v": values, "w": words}, index=pd.Index(values, name="k"))
    if kind == "arrow":
        return pa.table({"v": pa.array(values, pa.int64()), "w": words})
    frame = pl.DataFrame({"v": values, "w": words}, schema={"v": pl.Int64, "w": pl.String})
    return frame.lazy() if kind == "lazy" else frame


class Pair(NamedTuple):
    first: Any
    second: Any


leaves = st.one_of(
    python_scalars,
    pandas_scalars,
    numpy_scalars,
    numpy_arrays,
    pandas_series(),
    polars_series_,
    frames(),
)
composites = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
        st.builds(Pair, children, children),
    ),
    max_leaves=8,
)


@settings(
    max_examples=150,
    deadline=None,  # Parquet writes: no wall-clock limits in unit tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(composites)
def test_composite_results_round_trip_through_parquet_with_their_types(value: object) -> None:
    assert_same(value, roundtrip(value))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(composites)
def test_splitting_the_same_value_again_gives_the_same_composite_id(value: object) -> None:
    first, again = codec.split(value, "f"), codec.split(value, "f")
    first_ids = [fingerprint_table(part.table) for part in first.parts]
    assert [fingerprint_table(part.table) for part in again.parts] == first_ids
    assert codec.composite_id(first.structure, first_ids) == codec.composite_id(
        again.structure, first_ids
    )
    assert isinstance(codec.describe(first.structure), str)
