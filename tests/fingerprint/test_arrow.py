"""Laws of the logical Arrow fingerprint: layout never matters, content always does."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from featurecache.fingerprint.arrow import content as arrow_fp
from featurecache.fingerprint.arrow.content import (
    CANONICAL_FORMAT,
    fingerprint_array,
    fingerprint_table,
)

# ---------------------------------------------------------------------------- strategies
_text = st.text(max_size=20)  # crosses the 12-byte inline limit of string views
COLUMN_TYPES: dict[str, tuple[st.SearchStrategy[Any], pa.DataType]] = {
    "int64": (st.integers(-(2**63), 2**63 - 1), pa.int64()),
    "int8": (st.integers(-128, 127), pa.int8()),
    "float64": (st.floats(allow_nan=False), pa.float64()),
    "float32": (st.floats(width=32, allow_nan=False), pa.float32()),
    "bool": (st.booleans(), pa.bool_()),
    "string": (_text, pa.string()),
    "large_string": (_text, pa.large_string()),
    "string_view": (_text, pa.string_view()),
    "binary": (st.binary(max_size=20), pa.binary()),
    "binary_view": (st.binary(max_size=20), pa.binary_view()),
    "date": (st.dates(), pa.date32()),
    "ts_tz": (
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),  # noqa: DTZ001
        pa.timestamp("us", "Europe/Paris"),
    ),
    "decimal": (
        st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
        pa.decimal128(12, 2),
    ),
    "list": (st.lists(st.none() | st.integers(-50, 50), max_size=4), pa.list_(pa.int64())),
    "large_list_str": (st.lists(st.none() | _text, max_size=3), pa.large_list(pa.string_view())),
    "struct": (
        st.fixed_dictionaries({"x": st.none() | st.integers(-5, 5), "y": st.none() | _text}),
        pa.struct([("x", pa.int64()), ("y", pa.string_view())]),
    ),
    "dictionary": (st.sampled_from(["a", "b", "ccc", "é"]), pa.dictionary(pa.int32(), pa.string())),
    "map": (
        st.lists(st.tuples(st.text(max_size=3), st.none() | st.integers(-9, 9)), max_size=3),
        pa.map_(pa.string(), pa.int64()),
    ),
    "fixed_size_list": (
        st.lists(st.integers(-9, 9), min_size=2, max_size=2),
        pa.list_(pa.int32(), 2),
    ),
}


@st.composite
def tables(draw: st.DrawFn, min_rows: int = 0, dictionaries: bool = True) -> pa.Table:
    rows = draw(st.integers(min_rows, 25))
    names = list(COLUMN_TYPES) if dictionaries else [n for n in COLUMN_TYPES if n != "dictionary"]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
    columns = {}
    for name in chosen:
        values, arrow_type = COLUMN_TYPES[name]
        cells = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        columns[name] = pa.array(cells, type=arrow_type)
    return pa.table(columns)


@st.composite
def split_points(draw: st.DrawFn, rows: int) -> list[int]:
    return sorted(draw(st.lists(st.integers(0, rows), max_size=6)))


def rechunk(table: pa.Table, points: list[int]) -> pa.Table:
    bounds = [0, *points, table.num_rows]
    pieces = [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    return pa.concat_tables(pieces)


REAL_BLOCK_ROWS = arrow_fp.BLOCK_ROWS


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 rows, so small tables cross block boundaries the way big ones do."""
    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", 4)


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- layout laws
@PROPERTY
@given(data=st.data())
def test_chunking_never_changes_the_fingerprint(data: st.DataObject) -> None:
    table = data.draw(tables())
    expected = fingerprint_table(table)
    chunked = rechunk(table, data.draw(split_points(table.num_rows)))
    assert fingerprint_table(chunked) == expected
    assert fingerprint_table(chunked.combine_chunks()) == expected
    assert fingerprint_table(rechunk(chunked, data.draw(split_points(table.num_rows)))) == expected


@PROPERTY
@given(data=st.data())
def test_slices_equal_freshly_built_tables(data: st.DataObject) -> None:
    """A slice (offsets into larger buffers) hashes like the same rows built from scratch."""
    table = data.draw(tables(dictionaries=False))
    start = data.draw(st.integers(0, table.num_rows))
    length = data.draw(st.integers(0, table.num_rows - start))
    sliced = table.slice(start, length)
    fresh = pa.Table.from_pylist(sliced.to_pylist(), schema=table.schema)
    assert fingerprint_table(sliced) == fingerprint_table(fresh)


@PROPERTY
@given(data=st.data())
def test_parallel_and_serial_paths_agree(data: st.DataObject) -> None:
    table = data.draw(tables(min_rows=5))
    serial = fingerprint_table(table)
    with mock.patch.object(arrow_fp, "_PARALLEL_MIN_BYTES", 0):
        assert fingerprint_table(table) == serial


def test_polars_rechunk_and_pandas_origin_do_not_matter() -> None:
    frame = pl.DataFrame(
        {
            "i": [1, None, 3, 4, 5, 6, 7],
            "s": ["a", None, "a longer string than twelve", "", "é", "x", "y"],
            "c": pl.Series(["x", "y", "x", "z", None, "y", "x"], dtype=pl.Categorical),
            "l": [[1], [], None, [2, 3], [4], [5], [6]],
        }
    )
    pieces = pl.concat([frame[:2], frame[2:5], frame[5:]], rechunk=False)
    assert pieces.n_chunks() > 1
    newest = pl.CompatLevel.newest()
    expected = fingerprint_table(frame.to_arrow(compat_level=newest))
    assert fingerprint_table(pieces.to_arrow(compat_level=newest)) == expected
    assert fingerprint_table(pieces.rechunk().to_arrow(compat_level=newest)) == expected
    plain = frame.select(pl.col("i").fill_null(0), "s", "l")
    via_pandas = pl.from_pandas(plain.to_pandas())  # numpy / object columns back to polars
    assert via_pandas.schema == plain.schema
    assert fingerprint_table(via_pandas.to_arrow(compat_level=newest)) == fingerprint_table(
        plain.to_arrow(compat_level=newest)
    )


def test_many_tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", 1 << 20)
    table = pa.table({"a": np.arange(3000), "s": [str(i) for i in range(3000)]})
    tiny = pa.concat_tables([table.slice(i, 1) for i in range(3000)])
    assert tiny.column(0).num_chunks == 3000
    assert fingerprint_table(tiny) == fingerprint_table(table)


# ---------------------------------------------------------------------------- bytes under nulls
def _bitmap(valid: list[bool]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.array(valid, np.uint8), bitorder="little").tobytes())


def _int128(values: list[int]) -> pa.Buffer:
    return pa.py_buffer(b"".join(v.to_bytes(16, "little", signed=True) for v in values))


def test_garbage_under_null_fixed_width_and_bool() -> None:
    valid = [True, False, True, False]
    ints = pa.Array.from_buffers(
        pa.int64(), 4, [_bitmap(valid), pa.py_buffer(np.array([1, 99, 3, -7], np.int64))]
    )
    bools = pa.Array.from_buffers(pa.bool_(), 4, [_bitmap(valid), _bitmap([True] * 4)])
    decimals = pa.Array.from_buffers(
        pa.decimal128(10, 2), 4, [_bitmap(valid), _int128([100, 12345, 250, -1])]
    )
    dirty = pa.table({"i": ints, "b": bools, "d": decimals})
    clean = pa.table(
        {
            "i": pa.array([1, None, 3, None], pa.int64()),
            "b": pa.array([True, None, True, None]),
            "d": pa.array([Decimal("1.00"), None, Decimal("2.50"), None], pa.decimal128(10, 2)),
        }
    )
    assert dirty.to_pylist() == clean.to_pylist()
    assert fingerprint_table(dirty) == fingerprint_table(clean)


def test_garbage_under_null_strings_lists_structs_and_views() -> None:
    valid = [True, False, True]
    strings = pa.Array.from_buffers(
        pa.string(),
        3,
        [_bitmap(valid), pa.py_buffer(np.array([0, 1, 6, 7], np.int32)), pa.py_buffer(b"aGARBAb")],
    )
    lists = pa.Array.from_buffers(
        pa.list_(pa.int64()),
        3,
        [_bitmap(valid), pa.py_buffer(np.array([0, 1, 4, 5], np.int32))],
        children=[pa.array([1, 66, 66, 66, 2])],
    )
    structs = pa.StructArray.from_arrays(
        [pa.array([1, 42, 3]), pa.array(["a", "garbage", "b"], pa.string_view())],
        names=["x", "y"],
        mask=pa.array([False, True, False]),
    )
    views = np.zeros((3, 16), np.uint8)
    views[0, :4] = np.frombuffer(np.int32(1).tobytes(), np.uint8)
    views[0, 4] = ord("a")
    views[1] = np.frombuffer(b"\x05\x00\x00\x00junkjunkjunk", np.uint8)
    views[2, :4] = np.frombuffer(np.int32(1).tobytes(), np.uint8)
    views[2, 4] = ord("b")
    string_views = pa.Array.from_buffers(
        pa.string_view(), 3, [_bitmap(valid), pa.py_buffer(views.tobytes())]
    )
    dirty = pa.table({"s": strings, "l": lists, "st": structs, "v": string_views})
    clean = pa.table(
        {
            "s": pa.array(["a", None, "b"]),
            "l": pa.array([[1], None, [2]]),
            "st": pa.array([{"x": 1, "y": "a"}, None, {"x": 3, "y": "b"}], structs.type),
            "v": pa.array(["a", None, "b"], pa.string_view()),
        }
    )
    assert dirty.to_pylist() == clean.to_pylist()
    assert fingerprint_table(dirty) == fingerprint_table(clean)


def test_extra_capacity_is_ignored() -> None:
    data = pa.py_buffer(np.array([5, 6, 7, 123456, 987654], np.int64))  # two rows of slack
    assert fingerprint_array(pa.Array.from_buffers(pa.int64(), 3, [None, data])) == (
        fingerprint_array(pa.array([5, 6, 7], pa.int64()))
    )


# ---------------------------------------------------------------------------- content laws
@PROPERTY
@given(data=st.data())
def test_any_value_change_changes_the_fingerprint(data: st.DataObject) -> None:
    table = data.draw(tables(min_rows=1))
    column = data.draw(st.sampled_from(table.column_names))
    row = data.draw(st.integers(0, table.num_rows - 1))
    values, arrow_type = COLUMN_TYPES[column]
    new = data.draw(st.none() | values)
    cells = table.column(column).to_pylist()
    assume(cells[row] != new)
    cells[row] = new
    changed = table.set_column(
        table.column_names.index(column), column, pa.array(cells, type=arrow_type)
    )
    # Compared as Arrow values: a naive datetime drawn for a tz-aware column is read as UTC,
    # so it can differ from the old cell in Python and still be the same instant.
    assume(not changed.column(column).equals(table.column(column)))
    assert fingerprint_table(changed) != fingerprint_table(table)


@PROPERTY
@given(data=st.data())
def test_row_order_counts(data: st.DataObject) -> None:
    table = data.draw(tables(min_rows=2, dictionaries=False))
    i, j = data.draw(
        st.tuples(st.integers(0, table.num_rows - 1), st.integers(0, table.num_rows - 1))
    )
    rows = table.to_pylist()
    assume(rows[i] != rows[j])
    rows[i], rows[j] = rows[j], rows[i]
    swapped = pa.Table.from_pylist(rows, schema=table.schema)  # take() has no string_view kernel
    assert fingerprint_table(swapped) != fingerprint_table(table)


@PROPERTY
@given(table=tables())
def test_schema_changes_change_the_fingerprint(table: pa.Table) -> None:
    expected = fingerprint_table(table)
    renamed = table.rename_columns([f"{n}_" for n in table.column_names])
    assert fingerprint_table(renamed) != expected
    strict = pa.schema([f.with_nullable(not f.nullable) for f in table.schema])
    flipped = pa.Table.from_arrays(table.columns, schema=strict)
    assert fingerprint_table(flipped) != expected
    tagged = table.replace_schema_metadata({"origin": "test"})
    assert fingerprint_table(tagged) != expected


def test_dtype_changes_with_equal_values_change_the_fingerprint() -> None:
    base = pa.table({"a": pa.array([1, 2, 3], pa.int64())})
    for other in (pa.int32(), pa.uint64(), pa.float64(), pa.timestamp("s"), pa.duration("s")):
        assert fingerprint_table(base.cast(pa.schema([("a", other)]))) != fingerprint_table(base)
    naive = pa.table({"t": pa.array([0], pa.timestamp("us"))})
    aware = pa.table({"t": pa.array([0], pa.timestamp("us", "UTC"))})
    assert fingerprint_table(naive) != fingerprint_table(aware)
    text = ["a", "b"]
    digests = {
        fingerprint_table(pa.table({"s": pa.array(text, t)}))
        for t in (pa.string(), pa.large_string(), pa.string_view(), pa.binary())
    }
    assert len(digests) == 4  # different types, deliberately different fingerprints


def test_nulls_and_empty_values_are_distinct() -> None:
    variants = [
        pa.array(["", None], pa.string()),
        pa.array([None, ""], pa.string()),
        pa.array(["", ""], pa.string()),
        pa.array([None, None], pa.string()),
    ]
    assert len({fingerprint_array(v) for v in variants}) == 4
    lists = [pa.array(x) for x in ([[], None], [None, []], [[None], []], [[], [None]])]
    assert len({fingerprint_array(v) for v in lists}) == 4
    # Moving a boundary between strings must change the digest ("ab","c" vs "a","bc").
    assert fingerprint_array(pa.array(["ab", "c"])) != fingerprint_array(pa.array(["a", "bc"]))


def test_pandas_metadata_ignores_versions_but_not_the_index() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2]})
    table = pa.Table.from_pandas(frame)
    meta = dict(table.schema.metadata)
    patched = meta[b"pandas"].replace(b'"pandas_version": "', b'"pandas_version": "0.0.0+')
    assert patched != meta[b"pandas"]
    assert fingerprint_table(table.replace_schema_metadata({**meta, b"pandas": patched})) == (
        fingerprint_table(table)
    )
    moved = pa.Table.from_pandas(frame.set_axis([5, 6]))
    assert fingerprint_table(moved) != fingerprint_table(table)


def test_dictionary_chunks_are_unified_and_categories_count() -> None:
    first = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["a", "b"]))
    second = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["c", "a"]))
    chunked = pa.table({"d": pa.chunked_array([first, second])})
    assert fingerprint_table(chunked) == fingerprint_table(chunked.combine_chunks())
    reordered = pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["b", "a"]))
    assert fingerprint_array(reordered) != fingerprint_array(first)  # category order is content
    unused = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["a", "b", "z"]))
    assert fingerprint_array(unused) != fingerprint_array(first)  # so are unused categories


@pytest.mark.parametrize(
    "array",
    [
        pa.array([1, None, 2, 3, None, 4, 5, 6, 7], pa.int64()).cast(pa.int64()),
        pa.nulls(9),
        pa.RunEndEncodedArray.from_arrays(
            pa.array([3, 7, 9], pa.int32()), pa.array(["x", None, "y"])
        ),
        pa.UnionArray.from_sparse(
            pa.array([0, 1, 0, 1, 1, 0, 0, 1, 0], pa.int8()),
            [pa.array(range(9)), pa.array([str(i) for i in range(9)])],
        ),
        pa.ListViewArray.from_arrays(
            pa.array([0, 2, 1, 0, 3, 0, 1, 2, 0], pa.int32()),
            pa.array([2, 1, 2, 0, 1, 3, 1, 1, 2], pa.int32()),
            pa.array([10, 11, 12, 13]),
        ),
        pa.ExtensionArray.from_storage(
            pa.uuid(), pa.array([bytes([i]) * 16 for i in range(9)], pa.binary(16))
        ),
        pa.array([[("k", i)] for i in range(9)], pa.map_(pa.string(), pa.int64())),
        pa.array([dt.timedelta(days=i) for i in range(9)], pa.duration("us")),
        pa.array([(1, 2, i) for i in range(9)], pa.month_day_nano_interval()),
        pa.array([{"a": [i, None], "b": {"c": str(i)}} for i in range(9)]),
    ],
    ids=lambda a: str(a.type)[:30],
)
def test_exotic_types_are_layout_independent(array: pa.Array) -> None:
    expected = fingerprint_array(array)
    assert fingerprint_array(pa.chunked_array([array[:2], array[2:5], array[5:]])) == expected
    assert fingerprint_array(pa.concat_arrays([array[:4], array[4:]])) == expected
    assert fingerprint_array(array.slice(1)) != expected


# ---------------------------------------------------------------------------- stability
_STABLE_SCRIPT = """
import datetime as dt, pyarrow as pa
from featurecache.fingerprint.arrow.content import fingerprint_table
t = pa.table({"i": [1, None, 3], "s": ["a", "é", None], "m": [{"k": 1}, None, {"k": 2}],
              "t": pa.array([dt.datetime(2020, 1, 1)] * 3, pa.timestamp("ns", "UTC"))})
print(fingerprint_table(t))
"""


@pytest.mark.slow  # fresh processes under several hash seeds
def test_fingerprints_are_stable_across_processes_and_hash_seeds() -> None:
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", _STABLE_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(result.stdout.strip())
    assert len(outputs) == 1


def test_golden_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins the canonical form: if this changes, every artifact id changes. Bump
    CANONICAL_FORMAT (and tell the lead: it invalidates caches) before updating the value."""
    assert REAL_BLOCK_ROWS == 1 << 20  # the block size is part of the canonical form
    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", REAL_BLOCK_ROWS)
    table = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "s": pa.array(["a", "é", None]),
            "b": pa.array([True, False, None]),
            "l": pa.array([[1, 2], None, []]),
            "d": pa.array(["x", "y", "x"]).dictionary_encode(),
        }
    )
    assert CANONICAL_FORMAT == "arrow-canonical-1"
    assert fingerprint_table(table) == GOLDEN


GOLDEN = "658f07238b9228d2fd3605912f4d5021"


# ---------------------------------------------------------------------------- small tables
# A small table of plain columns takes ``_small_column_digests`` (and ``whole_digest``): the
# same digests as the general path, which these tests compare it with.
PLAIN = [*(n for n, (_, t) in COLUMN_TYPES.items() if type(t) is pa.DataType), "ts_tz", "decimal"]


@st.composite
def plain_tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 25))
    chosen = draw(st.lists(st.sampled_from(PLAIN), min_size=1, max_size=5, unique=True))
    nulls = draw(st.booleans())
    columns = {}
    for name in chosen:
        values, arrow_type = COLUMN_TYPES[name]
        cell = st.none() | values if nulls else values
        columns[name] = pa.array(draw(st.lists(cell, min_size=rows, max_size=rows)), arrow_type)
    return pa.table(columns)


def _general(table: pa.Table) -> list[str]:
    return arrow_fp._column_digests(table.columns)


@PROPERTY
@given(data=st.data())
def test_the_small_table_path_gives_the_general_paths_digests(data: st.DataObject) -> None:
    table = data.draw(plain_tables())
    one_block = mock.patch.object(arrow_fp, "BLOCK_ROWS", REAL_BLOCK_ROWS)  # the fast path
    for variant in (
        table,
        rechunk(table, data.draw(split_points(table.num_rows))),
        table.slice(data.draw(st.integers(0, table.num_rows))),
    ):
        with one_block:
            fast = arrow_fp._small_column_digests(variant)
            assert fast is not None  # plain and small: never left to the general path
            assert fast == _general(variant)


def test_the_small_table_path_on_the_frames_users_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polars frames (string views, inline and not), a pandas-made table, slices, nulls, many
    chunks: the fast path's table fingerprint equals the general path's."""
    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", REAL_BLOCK_ROWS)
    long = "a value longer than twelve bytes"
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "value": [0.5, -0.0, float("nan")],
            "name": ["n0", "n1", "n2"],
            "long": ["x", long, "y"],
            "flag": [True, False, True],
            "day": [dt.date(2024, 1, d) for d in (1, 2, 3)],
        }
    )
    newest = pl.CompatLevel.newest()
    with_nulls = frame.with_columns(pl.col("id").cast(pl.Int32), name=pl.Series([None, "a", "b"]))
    tables = [
        frame.to_arrow(compat_level=newest),
        frame.to_arrow(),
        with_nulls.to_arrow(compat_level=newest),
        frame.to_arrow(compat_level=newest).slice(1),
        pa.concat_tables([frame.to_arrow(compat_level=newest).slice(i, 1) for i in range(3)] * 7),
        pa.Table.from_pandas(frame.to_pandas(), preserve_index=False),
        frame.clear().to_arrow(compat_level=newest),
    ]
    for table in tables:
        fast = arrow_fp._small_column_digests(table)
        assert fast is not None
        assert fast == _general(table)


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"d": pa.array(["a", "b"]).dictionary_encode()}),
        pa.table({"l": pa.array([[1], [2]])}),
        pa.table({"s": pa.array([{"x": 1}])}),
        pa.table({"i": [1, 2, 3, 4, 5]}),  # more rows than a block (4 in these tests)
    ],
    ids=["dictionary", "list", "struct", "two blocks"],
)
def test_other_tables_take_the_general_path(table: pa.Table) -> None:
    assert arrow_fp._small_column_digests(table) is None


def test_a_key_is_the_same_through_either_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a hit depends on: the key of a call on a small polars frame must not depend on
    which path fingerprinted it."""
    from featurecache.fingerprint.files import FileFingerprinter
    from featurecache.fingerprint.inputs import fingerprint_input
    from featurecache.fingerprint.types import CodeIdentity
    from featurecache.keys import build_key

    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", REAL_BLOCK_ROWS)
    files = FileFingerprinter(tmp_path)
    frame = pl.DataFrame({"id": [0, 1, 2], "value": [1.0, 2.0, 3.0], "name": ["n0", "n1", "n2"]})
    code = CodeIdentity(digest="c" * 32, qualname="m.f", source="")

    def key() -> str:
        return build_key(
            "f", code, {"frame": fingerprint_input("frame", frame, files=files)}
        ).key_id

    fast = key()
    monkeypatch.setattr(arrow_fp, "_small_column_digests", lambda table: None)
    assert key() == fast


def test_the_small_table_path_tells_parametric_types_apart() -> None:
    """Its per-process caches are keyed by type: every parameter must count."""
    values = [1, 2]
    variants = [
        pa.array(values, pa.timestamp("us", "UTC")),
        pa.array(values, pa.timestamp("us", "Europe/Paris")),
        pa.array(values, pa.timestamp("ns", "UTC")),
        pa.array(values, pa.timestamp("us")),
        pa.array(values, pa.duration("us")),
        pa.array(values, pa.time64("us")),
        pa.array([Decimal(1), Decimal(2)], pa.decimal128(12, 2)),
        pa.array([Decimal(1), Decimal(2)], pa.decimal128(12, 3)),
    ]
    digests = [arrow_fp._small_column_digests(pa.table({"c": v})) for v in variants]
    assert None not in digests
    assert len({d[0] for d in digests if d is not None}) == len(variants)
    for variant, digest in zip(variants, digests, strict=True):
        assert digest == _general(pa.table({"c": variant}))


def test_the_small_table_path_on_other_plain_types() -> None:
    """Types the strategies above do not draw: null, float16, date64, large_binary, time32,
    fixed_size_binary, duration with nulls, uint8, binary_view with a long value; also empty."""
    table = pa.table(
        {
            "n": pa.nulls(3),
            "h": pa.array(np.array([1, 2, 3], np.float16)),
            "d64": pa.array([dt.date(2020, 1, 1)] * 3, pa.date64()),
            "lb": pa.array([b"a", None, b"c"], pa.large_binary()),
            "t32": pa.array([1, 2, 3], pa.time32("s")),
            "fsb": pa.array([b"ab", b"cd", b"ef"], pa.binary(2)),
            "dur": pa.array([1, None, 3], pa.duration("ms")),
            "u8": pa.array([1, 2, 3], pa.uint8()),
            "bv": pa.array([b"x" * 20, b"y", b""], pa.binary_view()),
        }
    )
    for variant in (table, table.slice(1), table.slice(3)):
        fast = arrow_fp._small_column_digests(variant)
        assert fast is not None
        assert fast == _general(variant)


@pytest.mark.parametrize("rows", [1, 31, 32, 33, 100])
def test_the_small_table_path_reads_view_lengths_at_any_row_count(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few views' lengths are read by one ``struct`` call, more through numpy: either way a
    view column (all inline, or one value longer than 12 bytes at its end) and its slices get
    the general path's digests."""
    monkeypatch.setattr(arrow_fp, "BLOCK_ROWS", REAL_BLOCK_ROWS)
    short = [f"v{i % 9}" for i in range(rows)]
    for values in (short, [*short[:-1], "a value longer than twelve bytes"]):
        table = pa.table({"s": pa.array(values, pa.string_view())})
        for variant in (table, table.slice(1), table.slice(0, rows - 1)):
            fast = arrow_fp._small_column_digests(variant)
            assert fast is not None
            assert fast == _general(variant)


def _reference_fingerprint(table: pa.Table) -> str:
    """``fingerprint_table`` as its definition reads, without any per-process encoding."""
    from featurecache.fingerprint.arrow.schema import schema_descriptor
    from featurecache.hashing import hash_struct

    digests = arrow_fp._column_digests(table.columns)
    return hash_struct(
        ["table", CANONICAL_FORMAT, schema_descriptor(table.schema), table.num_rows, digests]
    )


def test_the_schema_part_is_the_descriptor_whatever_was_encoded_before() -> None:
    """Field descriptors are encoded once per process, by name, type and nullability: a field
    that differs in any of them, or has metadata, or a type that is not plain, and a schema
    with metadata, each give the fingerprint of the definition, in any order of calls."""
    base = pa.table({"a": pa.array([1, 2], pa.int64()), "b": pa.array(["x", "y"])})
    plain = pa.field("a", pa.int64())
    variants = [
        base,
        base.cast(pa.schema([plain.with_nullable(False), base.schema.field("b")])),
        base.rename_columns(["A", "b"]),
        base.cast(pa.schema([plain.with_metadata({"unit": "m"}), base.schema.field("b")])),
        base.cast(pa.schema([plain.with_metadata({"unit": "s"}), base.schema.field("b")])),
        base.replace_schema_metadata({"source": "x"}),
        base.cast(pa.schema([pa.field("a", pa.timestamp("us", "UTC")), base.schema.field("b")])),
        base.cast(pa.schema([pa.field("a", pa.timestamp("us")), base.schema.field("b")])),
        pa.table({"a": pa.array([1, 2]).dictionary_encode(), "b": pa.array(["x", "y"])}),
    ]
    arrow_fp._ENCODED_FIELDS.clear()
    for order in (variants, variants[::-1], variants):
        found = [fingerprint_table(table) for table in order]
        assert found == [_reference_fingerprint(table) for table in order]
    assert len(set(found)) == len(variants)


def test_the_field_encodings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_fp, "_ENCODED_FIELDS_LIMIT", 3)
    arrow_fp._ENCODED_FIELDS.clear()
    for i in range(10):
        table = pa.table({f"c{i}": [i]})
        assert fingerprint_table(table) == _reference_fingerprint(table)
        assert len(arrow_fp._ENCODED_FIELDS) <= 3
