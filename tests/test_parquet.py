"""Round-trips through Parquet artifacts for every return kind, and the conversion contract:
the artifact id of an output equals the fingerprint of what a hit hands back."""

from __future__ import annotations

import datetime as dt
import mmap
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurecache.errors import UnsupportedOutputError
from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.frames import describe_schema, to_arrow
from featurecache.parquet import (
    SMALL_TABLE_BYTES,
    _pyarrow_writable,
    encode_small,
    read_artifact,
    read_artifact_file,
    scan_artifact,
    write_parquet,
)
from featurecache.settings import Settings, load_settings, with_overrides
from featurecache.store.base import ScanTarget


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, cwd=tmp_path)


def polars_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": [1, None, 3, 4],
            "u8": pl.Series([1, 2, 3, 4], dtype=pl.UInt8),
            "f": [1.5, None, float("nan"), -0.0],
            "b": [True, None, False, True],
            "s": ["a", None, "a string longer than twelve bytes", "é"],
            "bin": [b"x", None, b"y" * 30, b""],
            "cat": pl.Series(["x", "y", None, "x"], dtype=pl.Categorical),
            "enum": pl.Series(["b", "a", None, "b"], dtype=pl.Enum(["b", "a", "z"])),
            "list": [[1], [2, 3], None, []],
            "list_cat": pl.Series([["x"], ["y", "x"], None, []], dtype=pl.List(pl.Categorical)),
            "struct": [{"a": 1, "t": "p"}, {"a": None, "t": None}, None, {"a": 4, "t": "q"}],
            "arr": pl.Series([[1, 2], [3, 4], None, [5, 6]], dtype=pl.Array(pl.Int64, 2)),
            "date": [dt.date(2020, 1, 1), None, dt.date(1970, 1, 1), dt.date(2099, 12, 31)],
            "ts": pl.Series([dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)] * 4).dt.convert_time_zone(
                "Asia/Tokyo"
            ),
            "dur": [dt.timedelta(seconds=1), None, dt.timedelta(days=-1), dt.timedelta(0)],
            "dec": pl.Series(["1.50", "2.25", None, "-3"]).cast(pl.Decimal(10, 2)),
        }
    )


def pandas_frames() -> dict[str, pd.DataFrame]:
    base = {
        "nullable_int": pd.array([1, None, 3], dtype="Int64"),
        "float": [1.0, np.nan, 2.5],
        "string": pd.array(["a", None, "c"], dtype="string"),
        "str": ["x", None, "z"],
        "category": pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"], ordered=True),
        "tz": pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Paris"),
        "naive": pd.to_datetime(["2020-01-01", None, "2021-06-30"]),
        "bool": [True, False, True],
        "int8": np.array([1, -2, 3], np.int8),
    }
    return {
        "range_index": pd.DataFrame(base),
        "shifted_range": pd.DataFrame(base, index=pd.RangeIndex(10, 16, 2)),
        "named_index": pd.DataFrame(base, index=pd.Index(["a", "b", "c"], name="key")),
        "multi_index": pd.DataFrame(
            base,
            index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k1", "k2"]),
        ),
        "datetime_index": pd.DataFrame(base, index=pd.date_range("2020", periods=3, tz="UTC")),
        "int_column_names": pd.DataFrame({0: [1, 2], 1: ["a", "b"]}),
    }


def roundtrip(
    obj: object, tmp_path: Path, settings: Settings, *, pass_kind: bool
) -> tuple[Any, str, str]:
    table, kind = to_arrow(obj, "feature")
    artifact_id = fingerprint_table(table)
    path = tmp_path / f"{artifact_id}.parquet"
    write_parquet(table, path, settings, kind=kind if pass_kind else None)
    back = read_artifact(path.read_bytes(), kind)
    return back, kind, artifact_id


@pytest.mark.parametrize("codec", ["none", "lz4", "zstd", "snappy"])
@pytest.mark.parametrize("pass_kind", [True, False], ids=["polars-writer", "pyarrow-writer"])
@pytest.mark.parametrize("copies", [1, 2_000], ids=["small", "large"])
def test_polars_roundtrip(
    tmp_path: Path, settings: Settings, codec: str, pass_kind: bool, copies: int
) -> None:
    frame = pl.concat([polars_frame()] * copies)
    # "large" goes through the configured writer and codec, "small" through _write_small.
    small = to_arrow(frame, "f")[0].get_total_buffer_size() < SMALL_TABLE_BYTES
    assert small == (copies == 1)
    config = with_overrides(settings, compression=codec, compression_level=None)
    back, kind, artifact_id = roundtrip(frame, tmp_path, config, pass_kind=pass_kind)
    assert kind == "polars"
    assert isinstance(back, pl.DataFrame)
    assert back.schema == frame.schema
    assert back.equals(frame)
    assert fingerprint_table(to_arrow(back, "feature")[0]) == artifact_id


def test_lazy_output_is_collected_and_comes_back_lazy(tmp_path: Path, settings: Settings) -> None:
    frame = polars_frame()
    back, kind, artifact_id = roundtrip(
        frame.lazy().filter(pl.col("u8") > 1), tmp_path, settings, pass_kind=True
    )
    assert kind == "lazy"
    assert isinstance(back, pl.LazyFrame)
    assert back.collect().equals(frame.filter(pl.col("u8") > 1))
    assert artifact_id == fingerprint_table(to_arrow(frame.filter(pl.col("u8") > 1), "f")[0])


@pytest.mark.parametrize("name", list(pandas_frames()))
def test_pandas_roundtrip_keeps_index_and_dtypes(
    tmp_path: Path, settings: Settings, name: str
) -> None:
    frame = pandas_frames()[name]
    back, kind, artifact_id = roundtrip(frame, tmp_path, settings, pass_kind=True)
    assert kind == "pandas"
    pd.testing.assert_frame_equal(back, frame, check_index_type=True, check_column_type=True)
    assert type(back.index) is type(frame.index)
    assert fingerprint_table(to_arrow(back, "feature")[0]) == artifact_id


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_pandas_frame_read_back_can_be_written_to(
    tmp_path: Path, settings: Settings, source: str
) -> None:
    """A hit's frame takes in-place writes like any other: pyarrow's zero-copy (split_blocks)
    conversion would hand out read-only numpy views of Arrow memory."""
    frame = pd.DataFrame({"i": np.arange(100), "f": np.linspace(0, 1, 100), "b": [True] * 100})
    table, kind = to_arrow(frame, "feature")
    path = tmp_path / "p.parquet"
    write_parquet(table, path, settings, kind=kind)
    back = (
        read_artifact(path.read_bytes(), kind)
        if source == "bytes"
        else read_artifact_file(path, kind)
    )
    assert isinstance(back, pd.DataFrame)
    back.loc[0, "i"] = -1
    back.loc[1, "f"] = 9.5
    back.iloc[2, 2] = False
    assert (back.at[0, "i"], back.at[1, "f"], back.at[2, "b"]) == (-1, 9.5, False)


def test_arrow_roundtrip_keeps_exact_types(tmp_path: Path, settings: Settings) -> None:
    table = pa.table(
        {
            "s": pa.array(["a", None]),
            "ls": pa.array(["a", "b"], pa.large_string()),
            "sv": pa.array(["a", "a string longer than twelve"], pa.string_view()),
            "d": pa.array(["q", "r"]).dictionary_encode(),
            "dec": pa.array([Decimal("1.1"), None], pa.decimal128(5, 1)),
            "m": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
            "t": pa.array([0, 1], pa.timestamp("ns", "America/New_York")),
        }
    ).replace_schema_metadata({"origin": "test"})
    back, kind, artifact_id = roundtrip(table, tmp_path, settings, pass_kind=True)
    assert kind == "arrow"
    # Parquet renames a map's entry fields ("value" -> the column name); nothing else changes.
    assert back.schema.remove(5).equals(table.schema.remove(5), check_metadata=True)
    assert back.cast(table.schema).equals(table)
    assert fingerprint_table(back) == artifact_id


def test_read_from_a_memory_map_or_path(tmp_path: Path, settings: Settings) -> None:
    frame = polars_frame()
    table, kind = to_arrow(frame, "f")
    path = tmp_path / "a.parquet"
    write_parquet(table, path, settings, kind=kind)
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
    ):
        view = memoryview(mapped)
        assert read_artifact(view, "polars").equals(frame)  # type: ignore[attr-defined]
        assert read_artifact_file(path, "polars").equals(frame)  # type: ignore[attr-defined]
        view.release()


def test_unsupported_outputs_name_the_feature() -> None:
    for value in (42, [1, 2], pa.record_batch({"a": [1]}), pd.Series([1]), pl.Series([1]), None):
        with pytest.raises(UnsupportedOutputError) as caught:
            to_arrow(value, "my_feature")
        assert "my_feature" in str(caught.value)
        assert isinstance(caught.value, TypeError)
        assert caught.value.feature == "my_feature"


def test_frames_arrow_cannot_represent_are_typed_errors() -> None:
    mixed = pd.DataFrame({"x": [1, "a"]})
    with pytest.raises(UnsupportedOutputError, match="cannot represent"):
        to_arrow(mixed, "feat")
    with pytest.raises(UnsupportedOutputError, match="feat"):
        to_arrow(pl.DataFrame({"big": pl.Series([1], dtype=pl.Int128)}), "feat")


def test_lazy_query_errors_propagate_unchanged() -> None:
    broken = pl.LazyFrame({"a": [1]}).select(pl.col("missing"))
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        to_arrow(broken, "feat")


@pytest.mark.parametrize("codec", ["none", "lz4", "zstd", "snappy"])
def test_pyarrow_writer_codec_statistics_and_checksums(
    tmp_path: Path, settings: Settings, codec: str
) -> None:
    table = pa.table(
        {
            "a": np.arange(50_000),
            "s": [f"v{i % 97}" for i in range(50_000)],
            "r": np.random.default_rng(0).integers(0, 1 << 62, 50_000),
        }
    )
    path = tmp_path / "t.parquet"
    write_parquet(table, path, with_overrides(settings, compression=codec, row_group_rows=20_000))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3
    column = meta.row_group(0).column(0)
    assert (
        column.compression
        == {"none": "UNCOMPRESSED", "lz4": "LZ4", "zstd": "ZSTD", "snappy": "SNAPPY"}[codec]
    )
    assert column.statistics is not None and column.statistics.has_min_max
    assert (column.statistics.min, column.statistics.max) == (0, 19_999)
    # Dictionaries where they pay (97 distinct strings); a column of distinct values gives up
    # on its dictionary at 64 KiB (pyarrow's default would first fill 1 MiB, here 160 KB).
    assert "RLE_DICTIONARY" in meta.row_group(0).column(1).encodings
    distinct = meta.row_group(0).column(2)
    assert "PLAIN" in distinct.encodings
    assert distinct.data_page_offset - (distinct.dictionary_page_offset or 0) < 80_000
    # The file carries page CRCs, so any Parquet reader that checks them catches a flipped byte
    # (the cache itself checks the whole file's xxh3 before reading, see test_decorator_e2e).
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + column.total_compressed_size // 2] ^= 0xFF
    with pytest.raises((OSError, pa.ArrowException)):
        pq.read_table(pa.BufferReader(bytes(data)), page_checksum_verification=True)


def test_polars_writer_keeps_statistics(tmp_path: Path, settings: Settings) -> None:
    table, kind = to_arrow(pl.DataFrame({"a": range(10_000)}), "f")
    assert table.get_total_buffer_size() >= SMALL_TABLE_BYTES  # polars' writer, not _write_small
    path = tmp_path / "p.parquet"
    write_parquet(table, path, with_overrides(settings, row_group_rows=4_000), kind=kind)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3
    assert meta.row_group(0).column(0).statistics.has_min_max


def test_scan_pushes_predicates_and_projections_down(tmp_path: Path, settings: Settings) -> None:
    frame = pl.DataFrame({"a": range(10_000), "b": [str(i) for i in range(10_000)], "c": 1.0})
    table, kind = to_arrow(frame, "f")
    path = tmp_path / "odd [name]*.parquet"  # glob characters must be taken literally
    write_parquet(table, path, with_overrides(settings, row_group_rows=1_000), kind=kind)
    query = scan_artifact(ScanTarget(path=str(path))).filter(pl.col("a") >= 9_990).select("b")
    plan = query.explain()
    assert "SELECTION" in plan  # the filter runs inside the Parquet scan
    assert "PROJECT 2/3 COLUMNS" in plan  # and only the columns needed are read
    assert query.collect()["b"].to_list() == [str(i) for i in range(9_990, 10_000)]


def test_describe_schema() -> None:
    table = pa.table(
        {"a": pa.array([1], pa.int32()), "t": pa.array([0], pa.timestamp("ms", "UTC"))}
    )
    table = table.cast(
        pa.schema([pa.field("a", pa.int32(), nullable=False), table.schema.field("t")])
    )
    assert describe_schema(table) == [
        {"name": "a", "type": "int32", "nullable": False},
        {"name": "t", "type": "timestamp[ms, tz=UTC]", "nullable": True},
    ]


def test_a_half_imported_pandas_does_not_break_recognising_frames(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another thread may be importing pandas (pyarrow does so lazily) while a call computes
    # its key: sys.modules then holds a module with no DataFrame yet. No pandas object can
    # exist before the import ends, so the frame is simply not a pandas one.
    import sys
    import types

    from featurecache.fingerprint.files import FileFingerprinter
    from featurecache.fingerprint.inputs import fingerprint_input
    from featurecache.frames import frame_kind

    monkeypatch.setitem(sys.modules, "pandas", types.ModuleType("pandas"))
    frame = pl.DataFrame({"x": [1, 2]})
    assert frame_kind(frame) == "polars"
    assert frame_kind(pa.table({"x": [1]})) == "arrow"
    files = FileFingerprinter(tmp_path / "state")
    assert fingerprint_input("s", pl.Series("x", [1, 2]), files=files).kind != "value"
    assert fingerprint_input("df", frame, files=files).kind == "polars"


def test_a_polars_result_has_one_stored_schema_whichever_writer_wrote_it(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A forked child writes polars results with pyarrow's writer: the stored Arrow types must
    # be the ones polars' writer stores, or readers that unify the parts of a partitioned
    # feature (Ray Data) refuse string_view next to large_string.
    frame = pl.DataFrame({"day": ["2026-01-01", None], "blob": [b"a", b"b"], "n": [1, 2]})
    table, kind = to_arrow(frame, "f")
    write_parquet(table, tmp_path / "parent.parquet", settings, kind=kind)
    monkeypatch.setattr("featurecache.parquet.in_forked_child", lambda: True)
    write_parquet(table, tmp_path / "child.parquet", settings, kind=kind)
    parent = pq.read_schema(tmp_path / "parent.parquet")
    child = pq.read_schema(tmp_path / "child.parquet")
    assert child.types == parent.types
    assert read_artifact_file(tmp_path / "child.parquet", "polars").equals(frame)


def test_a_small_polars_result_is_written_in_memory_with_polars_writers_types(
    tmp_path: Path, settings: Settings
) -> None:
    # A table under SMALL_TABLE_BYTES skips polars' writer (~1.1 ms on 3 rows) and compression:
    # it must still store the Arrow types polars' writer stores and read back exactly.
    frame = polars_frame()
    table, kind = to_arrow(frame, "f")
    assert table.get_total_buffer_size() < SMALL_TABLE_BYTES
    path = tmp_path / "small.parquet"
    write_parquet(table, path, settings, kind=kind)
    frame.write_parquet(tmp_path / "polars.parquet", statistics=True)
    assert pq.read_schema(path).types == pq.read_schema(tmp_path / "polars.parquet").types
    back = read_artifact_file(path, "polars")
    assert isinstance(back, pl.DataFrame)
    assert back.schema == frame.schema and back.equals(frame)
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression == "UNCOMPRESSED"
    assert meta.row_group(0).column(0).statistics.has_min_max


def test_a_table_at_the_small_limit_goes_through_the_configured_codec(
    tmp_path: Path, settings: Settings
) -> None:
    table = pa.table({"a": np.arange(SMALL_TABLE_BYTES // 8)})
    assert table.get_total_buffer_size() >= SMALL_TABLE_BYTES
    path = tmp_path / "big.parquet"
    write_parquet(table, path, with_overrides(settings, compression="zstd"), kind="arrow")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def _cast_then_written(table: pa.Table, settings: Settings, polars_types: bool) -> bytes:
    """What ``encode_small`` wrote before it learnt to skip the cast: the table cast to the
    stored types, then written by pyarrow with its schema stored."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        _pyarrow_writable(table, polars_types=polars_types),
        sink,
        compression="NONE",
        row_group_size=settings.row_group_rows,
        write_statistics=True,
        write_page_checksum=True,
        store_schema=True,
    )
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    "columns",
    [
        ["s"],  # a string view: written as it is, stored as large
        ["i", "s", "bin", "f"],  # string and binary views among other types
        ["i", "f", "b"],  # no view: nothing to store differently
        ["s", "cat"],  # a dictionary of views: cast first (pyarrow cannot write it)
        ["s", "list", "struct"],  # a view nested in a struct: cast first
    ],
)
def test_small_encoding_is_byte_for_byte_what_casting_first_writes(
    settings: Settings, columns: list[str]
) -> None:
    table, kind = to_arrow(polars_frame().select(columns), "f")
    assert kind == "polars"
    assert encode_small(table, settings, polars_types=True).to_pybytes() == _cast_then_written(
        table, settings, True
    )


def test_small_encoding_keeps_a_tables_metadata(settings: Settings) -> None:
    table = pa.table({"a": [1, 2], "s": pa.array(["x", "y"], pa.string_view())})
    table = table.replace_schema_metadata({b"pandas": b'{"index_columns": []}', b"k": b"v"})
    encoded = encode_small(table, settings, polars_types=True)
    assert encoded.to_pybytes() == _cast_then_written(table, settings, True)
    back = pq.read_table(pa.BufferReader(encoded)).schema
    assert back.metadata == table.schema.metadata
    assert back.types == [pa.int64(), pa.large_string()]
