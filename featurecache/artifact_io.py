"""Frames in and out of Parquet artifacts: the one place that converts a feature's return value
to Arrow, writes it, and reads it back as the same kind of object.

* ``to_arrow``: polars DataFrame ("polars", exported at polars' newest Arrow compatibility
  level: string views, zero-copy), LazyFrame (collected, "lazy"), pandas DataFrame ("pandas",
  RangeIndex kept as metadata, other indexes as columns, dtypes through pandas' metadata, plus
  what that metadata loses: an index ``freq`` and RangeIndex column labels) and pyarrow Table
  ("arrow"). Input fingerprints of frames use the same conversion (``frame_to_arrow``), so an
  input and an output with the same content share one fingerprint.
* ``write_parquet``: column statistics (predicate pushdown) always; polars' writer for polars
  kinds, pyarrow's (page CRC checksums, Arrow schema stored) for the rest.
* ``read_artifact_file`` / ``read_artifact`` / ``scan_artifact``: eager reads of a verified local
  file (memory-mapped) or of bytes in memory, and lazy polars scans.
* ``pandas_snapshot``: the copy-on-write snapshot a pandas result is published from.

polars and pyarrow are core dependencies but are imported here, not at ``import featurecache``;
pandas is never imported unless a pandas frame is being handled.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurecache.catalog.records import ReturnKind
from featurecache.errors import UnsupportedOutputError
from featurecache.forking import in_forked_child

if TYPE_CHECKING:
    import polars as pl

    from featurecache.settings import Settings
    from featurecache.store.base import ScanTarget

SUPPORTED_OUTPUTS = (
    "polars.DataFrame",
    "polars.LazyFrame (collected; handed back as a LazyFrame over the artifact)",
    "pandas.DataFrame",
    "pyarrow.Table",
)
_CODECS = {"none": "NONE", "lz4": "LZ4", "zstd": "ZSTD", "snappy": "SNAPPY"}
_DICTIONARY_PAGE_BYTES = 64 * 1024


class FrameConversionError(Exception):
    """Arrow could not represent a frame (e.g. a pandas object column of mixed types, a polars
    Int128 column). Turned into the typed input/output error by the callers."""

    def __init__(self, type_name: str, detail: str) -> None:
        self.type_name = type_name
        self.detail = detail
        super().__init__(f"{type_name}: {detail}")


def type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def frame_kind(obj: object) -> ReturnKind | None:
    """The return kind of a supported frame, else None. Recognises pandas and polars objects
    only if their library is already imported (an instance implies it is), never importing it."""
    polars = sys.modules.get("polars")
    if polars is not None:
        if isinstance(obj, polars.DataFrame):
            return "polars"
        if isinstance(obj, polars.LazyFrame):
            return "lazy"
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(obj, pandas.DataFrame):
        return "pandas"
    if isinstance(obj, pa.Table):
        return "arrow"
    return None


def frame_to_arrow(obj: Any, kind: ReturnKind) -> pa.Table:
    """The Arrow table of a frame of ``kind``: the single conversion used for artifact ids and
    frame fingerprints. A LazyFrame is collected (its query errors propagate unchanged)."""
    if kind == "arrow":
        return obj
    if kind == "lazy":
        obj = obj.collect()
        kind = "polars"
    try:
        if kind == "polars":
            import polars as pl

            for name, dtype in obj.schema.items():
                if _holds_objects(dtype):
                    # polars exports Object columns as raw 8-byte addresses: never content.
                    raise FrameConversionError(
                        type_name(obj),
                        f"column {name!r} has dtype {dtype} (Python objects, not data)",
                    )
            # The newest compatibility level exports polars' string views without a copy.
            return obj.to_arrow(compat_level=pl.CompatLevel.newest())
        # RangeIndex stays metadata (restored as a RangeIndex); other indexes become columns.
        return _with_pandas_extras(pa.Table.from_pandas(obj, preserve_index=None), obj)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise FrameConversionError(type_name(obj), str(exc).splitlines()[0]) from exc


def _holds_objects(dtype: Any) -> bool:
    import polars as pl

    if dtype == pl.Object:
        return True
    if isinstance(dtype, pl.List | pl.Array):
        return _holds_objects(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_holds_objects(field.dtype) for field in dtype.fields)
    return False


def to_arrow(obj: object, feature: str) -> tuple[pa.Table, ReturnKind]:
    """A feature's return value as an Arrow table plus the kind to hand back on a hit."""
    kind = frame_kind(obj)
    if kind is None:
        raise UnsupportedOutputError(feature, type_name(obj), SUPPORTED_OUTPUTS)
    try:
        return frame_to_arrow(obj, kind), kind
    except FrameConversionError as exc:
        raise UnsupportedOutputError(
            feature,
            f"{exc.type_name} that Arrow cannot represent ({exc.detail})",
            SUPPORTED_OUTPUTS,
        ) from exc


def pandas_snapshot(frame: Any) -> Any | None:
    """A copy-on-write snapshot of a pandas frame, or None where pandas cannot guarantee one.

    ``pa.Table.from_pandas`` shares the frame's numpy buffers. Under copy-on-write (always on
    from pandas 3, opt-in before) a shallow copy registers as a second reference to every block,
    so any later write through the caller's frame copies the block first and the snapshot (and
    the Arrow table built from it) never changes; numpy views handed out by ``to_numpy`` and
    ``values`` are read-only. The snapshot itself costs no copy.
    """
    import pandas as pd

    major = int(pd.__version__.split(".", 1)[0])
    if major < 3 and pd.options.mode.copy_on_write is not True:
        return None
    return frame.copy(deep=False)


def describe_schema(table: pa.Table | pa.Schema) -> list[dict[str, Any]]:
    """``[{"name", "type", "nullable"}]`` for the catalog and ``featurecache show``."""
    schema = table.schema if isinstance(table, pa.Table) else table
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def write_parquet(
    table: pa.Table, path: Path, settings: Settings, *, kind: ReturnKind | None = None
) -> None:
    """Write ``table`` as one Parquet file with the configured codec and row-group size and
    column statistics (predicate pushdown).

    Frames of kind "polars"/"lazy" are written by polars' own writer: it keeps polars dtypes
    exactly (Categorical, Enum, …), is as fast as pyarrow's and makes smaller files, but
    writes no page checksums. Everything else (and ``kind=None``) goes through pyarrow's
    writer with page CRC checksums and the Arrow schema stored in the file, so a read gives
    back the exact Arrow types and pandas metadata. The cache verifies every artifact's xxh3
    against the catalog on read either way.
    """
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
        _pyarrow_writable(table),
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


def _pyarrow_writable(table: pa.Table) -> pa.Table:
    """pyarrow's Parquet writer cannot encode dictionaries of string/binary views (what polars
    exports for Categorical): give those dictionaries large values instead."""

    def fix(t: pa.DataType) -> pa.DataType:
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

    schema = pa.schema([f.with_type(fix(f.type)) for f in table.schema], table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


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
    extras = _pandas_extras(table)
    # self_destruct releases each Arrow column once converted. Not split_blocks: it hands out
    # zero-copy numpy views of Arrow memory, which are read-only, and a frame from the cache
    # must take ``df.loc[...] = ...`` like any other (apache/arrow#13316).
    return _restore_pandas_extras(table.to_pandas(self_destruct=True), extras)


# What pandas' own Arrow metadata loses: an index's freq and a RangeIndex of column labels.
_PANDAS_EXTRAS = b"featurecache.pandas"


def _with_pandas_extras(table: pa.Table, frame: Any) -> pa.Table:
    extras: dict[str, Any] = {}
    freq = getattr(frame.index, "freqstr", None)
    if freq and type(frame.index).__name__ in {"DatetimeIndex", "TimedeltaIndex"}:
        extras["index_freq"] = freq
    columns = frame.columns
    if type(columns).__name__ == "RangeIndex":
        extras["columns_range"] = [columns.start, columns.stop, columns.step]
    if not extras:
        return table
    metadata = {**(table.schema.metadata or {}), _PANDAS_EXTRAS: json.dumps(extras).encode()}
    return table.replace_schema_metadata(metadata)


def _pandas_extras(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(_PANDAS_EXTRAS)
    return json.loads(raw) if raw else {}


def _restore_pandas_extras(frame: Any, extras: dict[str, Any]) -> Any:
    import pandas as pd

    freq = extras.get("index_freq")
    if freq and isinstance(frame.index, pd.DatetimeIndex):
        frame.index = pd.DatetimeIndex(frame.index, freq=freq)
    elif freq and isinstance(frame.index, pd.TimedeltaIndex):
        frame.index = pd.TimedeltaIndex(frame.index, freq=freq)
    span = extras.get("columns_range")
    if span and len(range(*span)) == len(frame.columns):
        frame.columns = pd.RangeIndex(*span)
    return frame


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
