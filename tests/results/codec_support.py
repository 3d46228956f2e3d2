"""Round-trips of composite results through real Parquet files, written and read by the library's
own functions (``parquet.write_parquet``, as publish does, and ``read_artifact_file`` /
``read_artifact``, as a hit does), and an exact comparison of values and their types."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from polars.testing import assert_frame_equal, assert_series_equal

from featurecache.parquet import read_artifact, read_artifact_file, write_parquet
from featurecache.results import codec
from featurecache.settings import Settings, load_settings


def settings_in(folder: Path) -> Settings:
    return load_settings(environ={}, cwd=folder)


def roundtrip(value: object, *, from_bytes: bool = False) -> object:
    """``value`` split, each part written as a Parquet artifact and read back with its kind,
    the structure passed through JSON (as the catalog stores it), then joined."""
    result = codec.split(value, "feature_under_test")
    structure = json.loads(json.dumps(result.structure, allow_nan=False))
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_in(Path(folder))
        parts = []
        for i, part in enumerate(result.parts):
            path = Path(folder) / f"part-{i}.parquet"
            write_parquet(part.table, path, settings, kind=part.kind)
            if from_bytes:
                parts.append(read_artifact(path.read_bytes(), part.kind))
            else:
                parts.append(read_artifact_file(path, part.kind))
        joined = codec.join(structure, parts)
        # A lazy part scans its file: collect it while the file exists.
        return _collect_lazy(joined)


def _collect_lazy(value: object) -> object:
    if isinstance(value, pl.LazyFrame):
        return _Collected(value.collect())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_collect_lazy(v) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(_collect_lazy(v) for v in value)
    if isinstance(value, dict):
        return {k: _collect_lazy(v) for k, v in value.items()}
    return value


class _Collected:
    """A LazyFrame that came back, collected (stands for it in comparisons)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame


def assert_same(expected: object, actual: object, where: str = "result") -> None:
    """Equal values of identical types, down to every leaf (NaN equals NaN, -0.0 is not 0.0)."""
    if isinstance(expected, pl.LazyFrame):
        assert isinstance(actual, _Collected), where
        assert expected.collect().equals(actual.frame), where
        return
    assert type(actual) is type(expected), f"{where}: {type(actual)} is not {type(expected)}"
    if isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple)
        assert len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same(e, a, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert list(actual) == list(expected), where
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, np.ndarray):
        _assert_same_array(expected, actual, where)
    elif isinstance(expected, np.generic):
        assert isinstance(actual, np.generic)
        assert actual.dtype == expected.dtype, where
        assert np.asarray(actual).tobytes() == np.asarray(expected).tobytes(), where
    elif isinstance(expected, pd.Series):
        _assert_same_pandas_series(expected, actual, where)
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected, check_exact=True, check_index_type=True)
    elif isinstance(expected, pl.Series):
        assert isinstance(actual, pl.Series)
        assert actual.name == expected.name, where
        assert_series_equal(actual, expected, check_exact=True)
    elif isinstance(expected, pl.DataFrame):
        assert_frame_equal(actual, expected, check_exact=True)
    elif isinstance(expected, pa.Table):
        assert isinstance(actual, pa.Table)
        assert actual.equals(expected, check_metadata=True), where
    else:
        _assert_same_scalar(expected, actual, where)


def _assert_same_array(expected: np.ndarray, actual: object, where: str) -> None:
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} is not {expected.dtype}"
    if expected.dtype.names is not None:
        assert actual.dtype.isalignedstruct == expected.dtype.isalignedstruct, where
    assert actual.shape == expected.shape, where
    assert actual.flags.writeable, where
    if expected.ndim > 1 and expected.flags.f_contiguous and not expected.flags.c_contiguous:
        assert actual.flags.f_contiguous, where
    if expected.dtype.kind == "T":
        assert actual.tolist() == expected.tolist(), where
        return
    if expected.dtype.kind in "fcmM":
        assert np.array_equal(actual, expected, equal_nan=True), where
    # Every byte, C order: NaN payloads, -0.0, NaT and padding of fixed-width strings.
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


def _assert_same_pandas_series(expected: pd.Series, actual: object, where: str) -> None:
    assert isinstance(actual, pd.Series)
    pd.testing.assert_series_equal(
        actual,
        expected,
        check_index_type=True,
        check_series_type=True,
        check_names=True,
        check_exact=True,
        check_freq=True,
        check_categorical=True,
        check_flags=True,
    )
    assert actual.name == expected.name or (pd.isna(actual.name) and pd.isna(expected.name))
    assert type(actual.name) is type(expected.name), where
    if expected.dtype == object:
        # assert_series_equal takes None for NaN: the kind of each missing value counts here.
        assert [type(v) for v in actual] == [type(v) for v in expected], where


def _assert_same_scalar(expected: object, actual: object, where: str) -> None:
    if expected is pd.NA or expected is pd.NaT:
        assert actual is expected, where  # singletons, and == gives NA / False
    elif isinstance(expected, float):
        assert isinstance(actual, float)
        same = (math.isnan(expected) and math.isnan(actual)) or expected.hex() == actual.hex()
        assert same, f"{where}: {actual!r} is not {expected!r}"
    elif isinstance(expected, decimal.Decimal):
        assert str(actual) == str(expected), where
    elif isinstance(expected, dt.date | dt.time | dt.timedelta):
        # repr shows tzinfo, its name and fold: equal datetimes in other zones differ here.
        assert repr(actual) == repr(expected), where
        assert getattr(actual, "unit", None) == getattr(expected, "unit", None), where
        assert actual == expected, where
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
