"""Frame kinds and their conversion to Arrow: the one place that recognises a feature's return
value and turns it into the Arrow table that is fingerprinted and stored (no I/O here).

* ``to_arrow``: polars DataFrame ("polars", exported at polars' newest Arrow compatibility
  level: string views, zero-copy), LazyFrame (collected, "lazy"), pandas DataFrame ("pandas",
  RangeIndex kept as metadata, other indexes as columns, dtypes through pandas' metadata, plus
  what that metadata loses: an index ``freq`` and RangeIndex column labels; and, in object
  columns, where a missing value is not None, e.g. NaN: ``with_missing_kinds``) and pyarrow
  Table ("arrow"). Input fingerprints of frames use the same conversion (``frame_to_arrow``), so an
  input and an output with the same content share one fingerprint.
* ``pandas_snapshot``: the copy-on-write snapshot a pandas result is published from.
* ``restore_pandas_extras``: what ``parquet`` applies to a pandas frame read back.

pyarrow is a core dependency but is imported here, not at ``import featurecache``; pandas and
polars are never imported unless one of their frames is being handled.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

import pyarrow as pa

from featurecache.catalog.records import ReturnKind
from featurecache.errors import UnsupportedOutputError

SUPPORTED_OUTPUTS = (
    "polars.DataFrame",
    "polars.LazyFrame (collected; handed back as a LazyFrame over the artifact)",
    "pandas.DataFrame",
    "pyarrow.Table",
)


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


def loaded_class(module: str, name: str) -> type | None:
    """``module.name`` if that module is imported and defines it, without importing anything.
    None also while another thread is still importing the module (it is in ``sys.modules``
    half-initialised): no instance of its classes can exist before that import ends."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def is_instance(obj: object, module: str, name: str) -> bool:
    cls = loaded_class(module, name)
    return cls is not None and isinstance(obj, cls)


@functools.cache
def newest_polars_compat() -> Any:
    """``polars.CompatLevel.newest()``, made once: each call of it reads the environment (for
    polars' unstable-API warning), which cost more than exporting a small frame."""
    import polars as pl

    return pl.CompatLevel.newest()


def frame_kind(obj: object) -> ReturnKind | None:
    """The return kind of a supported frame, else None. Recognises pandas and polars objects
    only if their library is already imported (an instance implies it is), never importing it."""
    if is_instance(obj, "polars", "DataFrame"):
        return "polars"
    if is_instance(obj, "polars", "LazyFrame"):
        return "lazy"
    if is_instance(obj, "pandas", "DataFrame"):
        return "pandas"
    if isinstance(obj, pa.Table):
        return "arrow"
    return None


# pandas frames below this many cells are converted to Arrow without pyarrow's thread pool.
_THREADED_CELLS = 1_000_000


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
            # ``dtypes`` first: a list, cheaper than the ``schema`` the error names columns by.
            if any(_holds_objects(dtype) for dtype in obj.dtypes):
                for name, dtype in obj.schema.items():
                    if _holds_objects(dtype):
                        # polars exports Object columns as raw 8-byte addresses: never content.
                        raise FrameConversionError(
                            type_name(obj),
                            f"column {name!r} has dtype {dtype} (Python objects, not data)",
                        )
            # The newest compatibility level exports polars' string views without a copy.
            return obj.to_arrow(compat_level=newest_polars_compat())
        # RangeIndex stays metadata (restored as a RangeIndex); other indexes become columns.
        # A small frame converts on this thread: pyarrow's pool of threads, started for every
        # multi-column conversion, cost more than the conversion itself (~0.7 ms per call).
        rows, columns = obj.shape
        nthreads = 1 if rows * columns < _THREADED_CELLS else None
        table = pa.Table.from_pandas(obj, preserve_index=None, nthreads=nthreads)
        return with_pandas_extras(with_missing_kinds(table, obj), obj)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise FrameConversionError(type_name(obj), str(exc).splitlines()[0]) from exc


def _holds_objects(dtype: Any) -> bool:
    import polars as pl

    if isinstance(dtype, pl.Object) or dtype is pl.Object:  # an instance, or the class
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


# What pandas' own Arrow metadata loses: an index's freq and a RangeIndex of column labels.
_PANDAS_EXTRAS = b"featurecache.pandas"


def with_pandas_extras(table: pa.Table, frame: Any) -> pa.Table:
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


# Where a pandas object column holds a missing value that is not None (float NaN, pd.NA, pd.NaT,
# Decimal NaN): Arrow makes every missing value null, but Python code tells them apart
# (``v is None``), so the fingerprint must too. Metadata only, never restored on read.
_PANDAS_MISSING = b"featurecache.pandas_missing"


def with_missing_kinds(table: pa.Table, frame: Any) -> pa.Table:
    """``table`` plus, for each object column of ``frame`` holding a missing value other than
    None, which rows hold which kind: ``{column position: {type: xxh3 of the rows (int64)}}``.
    Frames whose object columns hold only None as missing values (and all other frames) are
    left as they are, so their fingerprints do not change."""
    import numpy as np
    import pandas as pd

    from featurecache.hashing import digest_bytes

    kinds: dict[str, dict[str, str]] = {}
    object_dtype = np.dtype(object)
    for position, dtype in enumerate(frame.dtypes):
        if dtype != object_dtype:
            continue
        column = frame.iloc[:, position]
        values = column.to_numpy(dtype=object)
        rows = np.flatnonzero(pd.isna(values))
        found: dict[str, list[int]] = {}
        for row in rows.tolist():
            value = values[row]
            if value is not None:
                kind = f"{type(value).__module__}.{type(value).__qualname__}"
                found.setdefault(kind, []).append(row)
        if found:
            kinds[str(position)] = {
                kind: digest_bytes(np.asarray(at, dtype="<i8").tobytes())
                for kind, at in sorted(found.items())
            }
    if not kinds:
        return table
    encoded = json.dumps(kinds, sort_keys=True).encode()
    return table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _PANDAS_MISSING: encoded}
    )


def pandas_extras(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(_PANDAS_EXTRAS)
    return json.loads(raw) if raw else {}


def restore_pandas_extras(frame: Any, extras: dict[str, Any]) -> Any:
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
