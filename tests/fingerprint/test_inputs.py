"""``fingerprint_input``: every supported type, the frame contract, and typed refusals."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurecache.errors import InputNotFoundError, UnsupportedInputError
from featurecache.fingerprint import inputs as inputs_module
from featurecache.fingerprint.arrow.content import fingerprint_table
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.types import InputFingerprint
from featurecache.frames import to_arrow


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileFingerprinter]:
    fingerprinter = FileFingerprinter(tmp_path / "state", project_root=tmp_path)
    yield fingerprinter
    fingerprinter.close()


def fp(value: object, files: FileFingerprinter, argument: str = "arg") -> InputFingerprint:
    return fingerprint_input(argument, value, files=files)


def test_frames_fingerprint_as_the_table_they_would_be_stored_as(files: FileFingerprinter) -> None:
    """An input and an output of the same content agree: input hex == artifact id."""
    polars_frame = pl.DataFrame({"a": [1, None], "s": ["x", "a string over twelve bytes"]})
    frames = [
        polars_frame,
        polars_frame.lazy(),
        pd.DataFrame({"a": [1.5, None]}, index=pd.Index(["r1", "r2"], name="k")),
        pa.table({"a": [1, 2]}),
    ]
    for frame in frames:
        result = fp(frame, files)
        table, kind = to_arrow(frame, "feature")
        assert result.kind == kind
        assert result.fingerprint == f"xxh3_128:{fingerprint_table(table)}"
        assert result.rows == 2 and result.value is None
        assert result.schema and {"name", "type", "nullable"} <= set(result.schema[0])
    assert fp(polars_frame, files).summary == "polars DataFrame 2 × 2"


def test_kinds_tell_apart_inputs_that_share_a_digest(files: FileFingerprinter) -> None:
    """A polars frame and a pyarrow table holding the same Arrow data share a digest: the
    cache key must include the kind (see the module docstring of inputs)."""
    polars_frame = pl.DataFrame({"a": [1, 2]})
    table = pa.table({"a": [1, 2]})
    assert fp(polars_frame, files).fingerprint == fp(table, files).fingerprint
    assert fp(polars_frame, files).kind != fp(table, files).kind
    # Where no output contract ties them, different types get different digests outright.
    series, frame = pd.Series([1, 2], name="a"), pd.DataFrame({"a": [1, 2]})
    assert fp(series, files).fingerprint != fp(frame, files).fingerprint
    assert (
        fp(pd.Series([1, 2], name=0), files).fingerprint != fp(pd.Series([1, 2]), files).fingerprint
    )
    batch = pa.record_batch({"a": [1, 2]})
    assert fp(batch, files).fingerprint != fp(table, files).fingerprint
    assert (
        fp(pa.array([1, 2]), files).fingerprint != fp(pa.chunked_array([[1, 2]]), files).fingerprint
    )
    assert fp(pl.Series("a", [1, 2]), files).kind == "polars"


@pytest.mark.parametrize(
    "values",
    [
        (1, 1.0, True, "1", b"1", bytearray(b"2"), decimal.Decimal("1"), None),
        (0.0, -0.0),
        (dt.date(2020, 1, 1), dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),  # noqa: DTZ001
        (dt.time(1), dt.timedelta(hours=1)),
        (Color.RED, Color.BLUE, 1),
        ([1, 2], (1, 2), {1, 2}, [2, 1], {"a": 1}, {"a": 1.0}),
    ],
)
def test_distinct_values_have_distinct_fingerprints(
    values: tuple[object, ...], files: FileFingerprinter
) -> None:
    digests = [fp(v, files).fingerprint for v in values]
    assert len(set(digests)) == len(digests)
    assert all(fp(v, files).kind == "value" for v in values)


def test_values_are_shown_for_why(files: FileFingerprinter) -> None:
    assert fp(30, files).value == 30 and fp(30, files).summary == "30"
    assert fp("abc", files).summary == '"abc"'
    assert fp(float("nan"), files).value == "nan"  # JSONB has no NaN
    assert fp(Color.RED, files).value == "Color.RED"
    assert fp({"k": [1, (2, 3)]}, files).value == {"k": [1, [2, 3]]}
    assert fp(dt.date(2020, 5, 17), files).value == "2020-05-17"
    big = list(range(10_000))
    assert fp(big, files).value is None and fp(big, files).summary == "list of 10,000 items"
    assert fp(np.int64(5), files).value == 5


def test_dict_order_does_not_matter_but_list_order_does(files: FileFingerprinter) -> None:
    assert fp({"a": 1, "b": 2}, files).fingerprint == fp({"b": 2, "a": 1}, files).fingerprint
    assert fp([1, 2], files).fingerprint != fp([2, 1], files).fingerprint


def test_numpy_arrays(files: FileFingerprinter) -> None:
    base = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert fp(base, files).kind == "numpy"
    assert fp(np.asfortranarray(base), files).fingerprint == fp(base, files).fingerprint
    assert (
        fp(base[:, ::2], files).fingerprint
        == fp(np.ascontiguousarray(base[:, ::2]), files).fingerprint
    )
    variants = [base, base.reshape(4, 3), base.astype(np.int32), base.astype(">i8"), base + 1]
    assert len({fp(v, files).fingerprint for v in variants}) == len(variants)
    dates = np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]")
    assert fp(dates, files).fingerprint != fp(dates.astype("datetime64[us]"), files).fingerprint
    structured = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    assert fp(structured, files).kind == "numpy"
    masked = np.ma.masked_array([1, 2, 3], mask=[False, True, False])
    unmasked = np.ma.masked_array([1, 2, 3], mask=[False, False, False])
    assert fp(masked, files).fingerprint != fp(unmasked, files).fingerprint


def test_paths_are_content_and_strings_are_values(files: FileFingerprinter, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a\n1\n")
    as_path = fp(path, files)
    assert as_path.kind == "file"
    as_text = fp(str(path), files)  # that file, and its text (test_path_strings.py)
    assert as_text.kind == "file" and as_text.fingerprint != as_path.fingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fp("not/a/real/path", files).kind == "value"  # text that names nothing
    path.write_text("a\n2\n")
    assert fp(path, files).fingerprint != as_path.fingerprint


def test_containers_holding_paths_and_frames(files: FileFingerprinter, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("1")
    frame = pl.DataFrame({"a": [1]})
    value = {"inputs": [path, frame], "threshold": 3}
    first = fp(value, files)
    assert first.kind == "container"
    assert [part["kind"] for part in first.value["parts"]] == ["file", "polars"]
    assert fp({"threshold": 3, "inputs": [path, frame]}, files).fingerprint == first.fingerprint
    path.write_text("2")
    assert fp(value, files).fingerprint != first.fingerprint
    assert fp([path], files).fingerprint != fp((path,), files).fingerprint


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (object(), "plain values"),
        (np.array([1, "a"], dtype=object), "pointers"),
        (iter([1, 2]), "materialise"),
        ((x for x in range(2)), "materialise"),
        (pd.Index([1, 2]), "DataFrame or Series"),
        (lambda: 1, "code identity"),
    ],
)
def test_unsupported_inputs_are_typed_errors(
    value: object, hint: str, files: FileFingerprinter
) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        fp(value, files, argument="features_cfg")
    error = caught.value
    assert isinstance(error, TypeError)
    assert error.argument == "features_cfg" and "'features_cfg'" in str(error)
    assert "Supported:" in str(error) and "pathlib.Path" in str(error)
    assert hint in str(error)


def test_unsupported_values_inside_containers_say_where(files: FileFingerprinter) -> None:
    with pytest.raises(UnsupportedInputError, match=r"cfg\['model'\]"):
        fp({"model": object()}, files, argument="cfg")


def test_unrepresentable_frames_are_typed_errors(files: FileFingerprinter) -> None:
    with pytest.raises(UnsupportedInputError, match="cannot represent"):
        fp(pd.DataFrame({"x": [1, "mixed"]}), files)
    with pytest.raises(UnsupportedInputError, match="cannot represent"):
        fp(pl.DataFrame({"x": pl.Series([1], dtype=pl.Int128)}), files)
    # polars would export Python objects as their memory addresses: refused, never hashed.
    objects = pl.DataFrame({"o": pl.Series([object()], dtype=pl.Object)})
    with pytest.raises(UnsupportedInputError, match="Python objects"):
        fp(objects, files)
    with pytest.raises(UnsupportedInputError, match="Python objects"):
        fp(objects.lazy(), files)


def test_missing_path_is_an_input_not_found_error(files: FileFingerprinter, tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="raw_path"):
        fp(tmp_path / "missing.parquet", files, argument="raw_path")


def test_s3_paths_are_dispatched_to_the_s3_fingerprint(
    files: FileFingerprinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.fingerprint import s3object

    seen: list[tuple[str, object]] = []

    def fake(argument: str, path: object, **_: object) -> InputFingerprint:
        seen.append((argument, path))
        return InputFingerprint(argument=argument, kind="s3", fingerprint="s3:x", summary="s3")

    monkeypatch.setattr(s3object, "fingerprint_s3_object", fake)
    target = s3object.S3Path("s3://bucket/key.parquet")
    assert fp(target, files, argument="events").kind == "s3"
    assert seen == [("events", target)]


def test_importing_featurecache_does_not_import_pandas() -> None:
    code = (
        "import sys, featurecache, featurecache.fingerprint.inputs, featurecache.frames;"
        "print('pandas' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_module_exports() -> None:
    assert "pathlib.Path and os.PathLike (the file's content)" in inputs_module.SUPPORTED_INPUTS


@pytest.mark.parametrize(
    ("dtype", "holds"),
    [
        (pl.Object, True),
        (pl.Object(), True),
        (pl.List(pl.Object), True),
        (pl.Array(pl.Object, 2), True),
        (pl.Struct({"a": pl.List(pl.Object)}), True),
        (pl.Int64, False),
        (pl.Int64(), False),
        (pl.List(pl.Int64), False),
        (pl.Struct({"a": pl.String}), False),
    ],
    ids=repr,
)
def test_object_dtypes_are_found_however_nested(dtype: object, holds: bool) -> None:
    from featurecache.frames import _holds_objects

    assert _holds_objects(dtype) is holds


def test_a_frames_summary_and_schema_are_made_when_first_read(files: FileFingerprinter) -> None:
    """A hit never reads them (only a miss records them): they are made on first read, from
    the Arrow schema and shape taken when the frame was fingerprinted, so a frame changed
    afterwards does not change what its fingerprint says."""
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    result = fp(frame, files)
    assert "summary" not in vars(result) and "schema" not in vars(result)
    frame.insert_column(2, pl.Series("c", [0.5, 1.5, 2.5]))  # in place, after the call
    assert result.summary == "polars DataFrame 3 × 2"
    assert result.schema == [
        {"name": "a", "type": "int64", "nullable": True},
        {"name": "b", "type": "string_view", "nullable": True},
    ]
    assert result.to_json()["summary"] == result.summary
    assert result.to_json()["schema"] == result.schema
    assert result == fp(frame.drop("c"), files)
    for kind, frame_of_kind, label in (
        ("pandas", frame.to_pandas(), "pandas DataFrame 3 × 3"),
        ("arrow", frame.to_arrow(), "pyarrow Table 3 × 3"),
        ("lazy", frame.lazy(), "polars LazyFrame (collected) 3 × 3"),
    ):
        described = fp(frame_of_kind, files)
        assert (described.kind, described.summary) == (kind, label)
        assert described.schema is not None and len(described.schema) == 3
