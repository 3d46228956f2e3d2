"""Artifacts on disk: write a frame's Arrow table as one Parquet file, read it back as the same
kind of object, or scan it lazily.

* ``write_parquet``: column statistics (predicate pushdown) always; polars' writer for polars
  kinds, pyarrow's (page CRC checksums, Arrow schema stored) for the rest; a small table is
  encoded in memory by pyarrow's writer, uncompressed (``_write_small``).
* ``read_artifact_file`` / ``read_artifact`` / ``scan_artifact`` / ``scan_artifact_bytes``: eager
  reads of a verified local file (memory-mapped) or of bytes in memory, and lazy polars scans.
* ``read_footer``: what a file's Parquet footer says it holds (rows, columns, decoded size),
  read before any decoding so a hit can compare it with the catalog first.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurecache.background import in_forked_child
from featurecache.catalog.records import ReturnKind
from featurecache.frames import pandas_extras, restore_pandas_extras

if TYPE_CHECKING:
    import polars as pl

    from featurecache.settings import Settings
    from featurecache.store.base import ScanTarget

_CODECS = {"none": "NONE", "lz4": "LZ4", "zstd": "ZSTD", "snappy": "SNAPPY"}


_DICTIONARY_PAGE_BYTES = 64 * 1024


def write_parquet(
    table: pa.Table, path: Path, settings: Settings, *, kind: ReturnKind | None = None
) -> None:
    """Write ``table`` as one Parquet file with the configured codec and row-group size and
    column statistics (predicate pushdown).

    Frames of kind "polars"/"lazy" are written by polars' own writer: it keeps polars dtypes
    exactly (Categorical, Enum, …), is as fast as pyarrow's and makes smaller files, but
    writes no page checksums. Everything else (and ``kind=None``) goes through pyarrow's
    writer with page CRC checksums and the Arrow schema stored in the file, so a read gives
    back the exact Arrow types and pandas metadata. A table under ``SMALL_TABLE_BYTES`` of
    buffers is encoded in memory by pyarrow's writer, uncompressed, whatever its kind
    (``_write_small``). The cache verifies every artifact's xxh3 against the catalog on read
    either way.
    """
    if is_small(table):
        _write_small(table, path, settings, polars_types=kind in ("polars", "lazy"))
        return
    level = settings.compression_level if settings.compression == "zstd" else None
    if kind in ("polars", "lazy") and not in_forked_child():
        import polars as pl

        frame = pl.from_arrow(table, rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        frame.write_parquet(
            path,
            compression="uncompressed" if settings.compression == "none" else settings.compression,  # type: ignore[arg-type]
            compression_level=level,
            row_group_size=settings.row_group_rows,
            statistics=True,
        )
        return
    pq.write_table(
        # A polars result written here (in a forked child, where polars' writer is not safe)
        # stores the Arrow types polars' own writer stores, so every artifact of a feature has
        # one schema whichever process wrote it: readers that unify the parts' schemas (Ray
        # Data, pyarrow datasets) refuse string_view next to large_string.
        _pyarrow_writable(table, polars_types=kind in ("polars", "lazy")),
        path,
        compression=_CODECS[settings.compression],
        compression_level=level,
        row_group_size=settings.row_group_rows,
        write_statistics=True,
        write_page_checksum=True,
        store_schema=True,
        # pyarrow tries a dictionary on every column until its dictionary page reaches this
        # size. At the 1 MiB default a high-cardinality column encodes a megabyte of
        # dictionary before falling back; 64 KiB keeps dictionaries for low-cardinality
        # columns and cut the 1.2 GB benchmark write from 5.1 s to 3.6 s (file 2 % smaller).
        dictionary_pagesize_limit=_DICTIONARY_PAGE_BYTES,
    )


# Below this many bytes of Arrow buffers a table is written by ``_write_small``.
SMALL_TABLE_BYTES = 64 * 1024


def _write_small(table: pa.Table, path: Path, settings: Settings, *, polars_types: bool) -> None:
    """A small table (under ``SMALL_TABLE_BYTES``) written with one ``write`` of
    ``encode_small``'s bytes."""
    encoded = encode_small(table, settings, polars_types=polars_types)
    with open(path, "wb") as handle:
        handle.write(encoded)


def is_small(table: pa.Table) -> bool:
    """Whether ``write_parquet`` writes ``table`` through ``encode_small``."""
    return bool(table.get_total_buffer_size() < SMALL_TABLE_BYTES)


def encode_small(table: pa.Table, settings: Settings, *, polars_types: bool) -> pa.Buffer:
    """A small table's Parquet file, encoded in memory by pyarrow's writer, uncompressed.
    Writing a 3-row frame to a file took ~1.1 ms through polars' writer and ~0.53 ms through
    pyarrow's with the default codec, against ~0.27 ms for this and one ``write`` when it cast
    polars' string views first, ~0.13 ms to encode now that it need not (measured on a 2-core
    VM); compressing a few KB saves nothing. A polars result is stored with the Arrow
    types polars' writer stores (``polars_types``), so every artifact of a feature has one
    schema whichever size it had. Row groups, statistics, page checksums and the stored Arrow
    schema are as in ``write_parquet``."""
    sink = pa.BufferOutputStream()
    options: dict[str, Any] = {
        "compression": "NONE",
        "write_statistics": True,
        "write_page_checksum": True,
    }
    stored = _views_stored_large(table.schema) if polars_types else None
    if stored is None:
        pq.write_table(
            _pyarrow_writable(table, polars_types=polars_types),
            sink,
            row_group_size=settings.row_group_rows,
            store_schema=True,
            **options,
        )
        return sink.getvalue()
    # Its only polars types are string/binary views: their Parquet columns are those of the
    # large types, so the table is written as it is and only the stored Arrow schema says
    # large (the file is byte for byte what casting first writes; a test checks it). Casting
    # cost more than the rest of the encoding.
    metadata = dict(table.schema.metadata or {})
    metadata[_ARROW_SCHEMA_KEY] = base64.b64encode(stored.serialize().to_pybytes())
    with pq.ParquetWriter(sink, table.schema, store_schema=False, **options) as writer:
        writer.write_table(table, row_group_size=settings.row_group_rows)
        writer.add_key_value_metadata(metadata)
    return sink.getvalue()


# Where pyarrow's writer stores the Arrow schema (``store_schema``): its IPC form, in base64.
_ARROW_SCHEMA_KEY = b"ARROW:schema"
_VIEWS_LARGE = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}


def _views_stored_large(schema: pa.Schema) -> pa.Schema | None:
    """The schema to store a table of ``schema`` under, when the only columns whose type
    polars' writer stores differently are top-level string or binary views (one at least);
    else None."""
    types = schema.types
    if not any(t in _VIEWS_LARGE for t in types):
        return None
    stored = _pyarrow_writable_schema(schema, polars_types=True)
    changed = [new != old for new, old in zip(stored.types, types, strict=True)]
    if any(change and old not in _VIEWS_LARGE for change, old in zip(changed, types, strict=True)):
        return None
    return stored


# ``_pyarrow_writable``'s answer per flat type (no children, so no field metadata inside)
# and ``polars_types``: working it out costs ~7 µs a column, and a feature's results share
# their types. Bounded: forgotten whole when full.
_FLAT_WRITABLE: dict[tuple[pa.DataType, bool], pa.DataType] = {}
_FLAT_KEPT = 1024


def _pyarrow_writable(table: pa.Table, *, polars_types: bool = False) -> pa.Table:
    """pyarrow's Parquet writer cannot encode dictionaries of string/binary views (what polars
    exports for Categorical): give those dictionaries large values instead. ``polars_types``:
    every string/binary view becomes large, as polars' writer stores them."""
    schema = _pyarrow_writable_schema(table.schema, polars_types=polars_types)
    return table if schema.equals(table.schema) else table.cast(schema)


def _pyarrow_writable_schema(schema: pa.Schema, *, polars_types: bool) -> pa.Schema:
    """``_pyarrow_writable``'s schema for a table of ``schema``."""

    def fix(t: pa.DataType) -> pa.DataType:
        if polars_types and pa.types.is_string_view(t):
            return pa.large_string()
        if polars_types and pa.types.is_binary_view(t):
            return pa.large_binary()
        if pa.types.is_dictionary(t):
            value = t.value_type
            if pa.types.is_string_view(value):
                value = pa.large_string()
            elif pa.types.is_binary_view(value):
                value = pa.large_binary()
            return pa.dictionary(t.index_type, fix(value), t.ordered)
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(fix(f.type)) for f in t])
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            field = t.value_field.with_type(fix(t.value_type))
            if pa.types.is_fixed_size_list(t):
                return pa.list_(field, t.list_size)
            return pa.large_list(field) if pa.types.is_large_list(t) else pa.list_(field)
        return t

    def writable(t: pa.DataType) -> pa.DataType:
        if t.num_fields or pa.types.is_dictionary(t):
            return fix(t)
        found = _FLAT_WRITABLE.get((t, polars_types))
        if found is None:
            if len(_FLAT_WRITABLE) >= _FLAT_KEPT:
                _FLAT_WRITABLE.clear()
            found = _FLAT_WRITABLE[(t, polars_types)] = fix(t)
        return found

    types = [writable(t) for t in schema.types]
    if all(new == old for new, old in zip(types, schema.types, strict=True)):
        return schema
    return pa.schema([f.with_type(t) for f, t in zip(schema, types, strict=True)], schema.metadata)


@dataclass(frozen=True)
class Footer:
    """What a Parquet file's footer declares, before any page is decoded."""

    rows: int
    columns: int  # top-level Arrow fields (the stored Arrow schema when there is one)
    row_group_rows: int  # the sum over row groups; equals ``rows`` in a well-formed file
    uncompressed_bytes: int  # the sum of the row groups' decoded sizes


def read_footer(source: memoryview | bytes | Path) -> Footer:
    """The footer of an artifact (a local file or its bytes). Reads the footer only (a few KB at
    the end of the file). Raises ``ValueError`` (``pyarrow.ArrowInvalid``) when there is no
    readable footer, ``FileNotFoundError`` when the file is gone."""
    if isinstance(source, Path):
        parquet_file = pq.ParquetFile(source, memory_map=True)
    else:
        parquet_file = pq.ParquetFile(pa.BufferReader(pa.py_buffer(source)))
    with parquet_file:
        meta = parquet_file.metadata
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        return Footer(
            rows=meta.num_rows,
            columns=len(parquet_file.schema_arrow),
            row_group_rows=sum(group.num_rows for group in groups),
            uncompressed_bytes=sum(group.total_byte_size for group in groups),
        )


def read_table(source: memoryview | bytes | Path) -> pa.Table:
    """An artifact as an Arrow table, from its bytes (zero-copy) or its local file (memory-mapped:
    the page cache, not a heap copy). Page CRCs are not re-checked: every read the cache makes
    follows a check of the whole file's xxh3 against the catalog, which covers them (and costs
    a fraction: CRC verification more than doubled pyarrow's read time on the 1 GB benchmark)."""
    if isinstance(source, Path):
        return pq.read_table(source, memory_map=True, use_threads=True)
    return pq.read_table(pa.BufferReader(pa.py_buffer(source)), use_threads=True)


def _whole_bytes(data: memoryview | bytes) -> bytes | None:
    if isinstance(data, bytes):
        return data
    owner = data.obj
    if isinstance(owner, bytes) and data.nbytes == len(owner):
        return owner
    return None


def read_artifact(data: memoryview | bytes, kind: ReturnKind) -> object:
    """The object a hit hands back from an artifact's bytes (a remote store's download): a
    polars DataFrame ("polars"), a LazyFrame over it ("lazy"), a pandas DataFrame with its index
    ("pandas") or a pyarrow Table ("arrow"). Local files go through ``read_artifact_file``.
    polars reads ``bytes`` without copying them."""
    if kind in ("polars", "lazy") and not in_forked_child():
        import polars as pl

        whole = _whole_bytes(data)
        frame = pl.read_parquet(whole if whole is not None else io.BytesIO(data))
        return frame.lazy() if kind == "lazy" else frame
    return _from_table(read_table(data), kind)


def read_artifact_file(path: Path, kind: ReturnKind) -> object:
    """``read_artifact`` for a local file the caller has already verified: polars and pyarrow
    both map it, so its pages are shared with the page cache rather than copied. Raises
    FileNotFoundError if it is gone (a concurrent GC)."""
    if kind in ("polars", "lazy") and not in_forked_child():
        import polars as pl

        frame = pl.read_parquet(path, glob=False)
        return frame.lazy() if kind == "lazy" else frame
    return _from_table(read_table(path), kind)


def _from_table(table: pa.Table, kind: ReturnKind) -> object:
    if kind in ("polars", "lazy"):
        # In a forked child polars' thread pool may deadlock: read through pyarrow instead.
        import polars as pl

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame.lazy() if kind == "lazy" else frame
    if kind == "arrow":
        return table
    extras = pandas_extras(table)
    # self_destruct releases each Arrow column once converted. Not split_blocks: it hands out
    # zero-copy numpy views of Arrow memory, which are read-only, and a frame from the cache
    # must take ``df.loc[...] = ...`` like any other (apache/arrow#13316).
    return restore_pandas_extras(table.to_pandas(self_destruct=True), extras)


def scan_artifact(target: ScanTarget) -> pl.LazyFrame:
    """A lazy polars scan of an artifact where it lies (local path or s3:// with
    ``storage_options``); predicates and projections are pushed down into the Parquet read."""
    import polars as pl

    return pl.scan_parquet(
        target.path,
        storage_options=target.storage_options,
        glob=False,  # store roots may contain '*' or '[': the path is a path, not a pattern
        hive_partitioning=False,
    )


def scan_artifact_bytes(data: memoryview | bytes) -> pl.LazyFrame:
    """A lazy polars scan of an artifact's verified bytes (a remote store's download): the
    query reads only the row groups and columns it needs from memory, never the store again,
    so what it reads is exactly what was verified."""
    import polars as pl

    whole = _whole_bytes(data)
    return pl.scan_parquet(whole if whole is not None else bytes(data), hive_partitioning=False)
