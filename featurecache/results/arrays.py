"""numpy arrays of a composite result: one Arrow table (one column, ``values``) per array, the
dtype, shape and memory order in the structure.

The column holds the flattened C-order values, typed where Arrow has the type (booleans,
integers, float16/32/64, datetime64/timedelta64 in s/ms/us/ns with NaT as null, ``U`` and
``StringDType`` strings), so the part is readable by any Parquet tool. Everything else
(complex, long double, ``S`` bytes, structured and void dtypes, other datetime units) is a
``fixed_size_binary(itemsize)`` column of each element's raw bytes: exact for any dtype numpy
can describe without objects. dtype ``object`` is refused: its elements are Python objects,
which are never pickled.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from featurecache.results.leaf import RefusedLeaf
from featurecache.results.scalars import decode_dtype, encode_dtype

COLUMN = "values"
_ARROW_TIME_UNITS = frozenset({"s", "ms", "us", "ns"})


def split_array(array: Any) -> tuple[dict[str, Any], pa.Table]:
    """The structure node (without its part index) and the table of a numpy array."""
    import numpy as np

    dtype = array.dtype
    # StringDType reports hasobject (its arena holds pointers) but its values are text.
    if dtype.hasobject and dtype.kind != "T":
        raise RefusedLeaf(
            f"numpy.ndarray of dtype {dtype}",
            "its elements are Python objects, which featurecache does not pickle; convert it "
            "first (arr.astype(str), arr.astype(float), or a pandas Series / DataFrame)",
        )
    node: dict[str, Any] = {
        "t": "numpy.ndarray",
        "dtype": encode_dtype(dtype),
        "shape": list(array.shape),
        # Fortran order is given back as it came (a copy of a C-order read); C otherwise.
        "order": "F"
        if array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
        else "C",
    }
    flat = np.ravel(array, order="C")
    column = _typed_column(flat)
    if column is not None:
        node["layout"] = "arrow"
    elif dtype.itemsize == 0:
        node["layout"] = "empty"  # nothing to store: every element is the empty value
        column = pa.nulls(0)
    else:
        node["layout"] = "bytes"
        column = _raw_column(flat)
    return node, pa.table({COLUMN: column})


def _typed_column(flat: Any) -> pa.Array | None:
    """Arrow values of a flat array where Arrow has its type exactly, else None."""
    import numpy as np

    dtype = flat.dtype
    kind = dtype.kind
    native = flat.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else flat
    if kind in "biu" or (kind == "f" and dtype.itemsize <= 8):
        return pa.array(native)
    if kind in "mM":
        unit, count = np.datetime_data(dtype)
        if unit in _ARROW_TIME_UNITS and count == 1:
            return pa.array(native)  # NaT becomes null, read back as NaT
        return None
    if kind in "UT":
        # Through Python str: pyarrow's direct numpy-U conversion cuts strings at an inner NUL.
        try:
            return pa.array(flat.tolist(), type=pa.large_string())
        except (pa.ArrowException, UnicodeError):
            return None  # e.g. unpaired surrogates, which UTF-8 cannot carry: raw bytes
    return None


def _raw_column(flat: Any) -> pa.Array:
    import numpy as np

    data = np.ascontiguousarray(flat).tobytes()
    width = flat.dtype.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(flat), [None, pa.py_buffer(data)]
    )


def join_array(node: dict[str, Any], table: pa.Table) -> Any:
    """The numpy array of ``node`` from its table as read back (kind "arrow")."""
    import numpy as np

    dtype = decode_dtype(node["dtype"])
    shape = tuple(node["shape"])
    layout = node["layout"]
    if layout == "empty":
        flat = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    elif layout == "bytes":
        flat = _from_raw(table.column(COLUMN), dtype)
    elif dtype.kind in "UT":
        # Through an object array of str: a third faster than to_pylist for a million strings.
        flat = table.column(COLUMN).to_numpy(zero_copy_only=False).astype(dtype)
    else:
        flat = table.column(COLUMN).to_numpy()
        if flat.dtype != dtype:
            flat = flat.astype(dtype)  # byte order
    if not flat.flags.writeable:
        flat = flat.copy()  # zero-copy reads are read-only; a computed array is not
    result = flat.reshape(shape)
    return np.asfortranarray(result) if node["order"] == "F" else result


def _from_raw(column: pa.ChunkedArray, dtype: Any) -> Any:
    import numpy as np

    chunk = column.combine_chunks()
    width = dtype.itemsize
    buffer = chunk.buffers()[1]
    if buffer is None:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype, count=len(chunk), offset=chunk.offset * width)


def describe_array(node: dict[str, Any]) -> str:
    shape = node["shape"]
    dims = "×".join(str(n) for n in shape) if shape else "scalar"
    dtype = node["dtype"]
    label = "structured" if isinstance(dtype, dict) else str(decode_dtype(dtype))
    return f"numpy.ndarray {label} {dims}"
