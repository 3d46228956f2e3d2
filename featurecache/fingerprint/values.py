"""Fingerprints of plain parameter values and numpy data, and how ``why`` displays them.

Plain values (None, bool, int, float, str, bytes, date/datetime/time/timedelta, Decimal, Enum
and lists/tuples/dicts/sets of them) are hashed through ``hashing.canonical_encode``, which is
type-tagged (``1``, ``1.0``, ``True`` and ``"1"`` differ) and independent of hash seeds.
numpy arrays are hashed by dtype, shape and their bytes in C order; object arrays are refused
(their bytes are pointers). numpy is never imported here: an array's presence implies it.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import json
import math
from typing import Any

from featurecache.hashing import canonical_encode, hash_struct, new_hasher

# Parameters whose display form is larger than this are summarised, not stored in full.
_MAX_ITEMS = 200
_MAX_TEXT = 500
_PLAIN_SCALARS = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    decimal.Decimal,
    enum.Enum,
)
CONTAINERS = (list, tuple, dict, set, frozenset)


class ObjectArrayError(TypeError):
    """A numpy array of dtype object (or a structured dtype holding objects)."""


def is_plain_scalar(value: object) -> bool:
    return isinstance(value, _PLAIN_SCALARS)


def value_digest(value: object) -> str:
    """32-hex digest of a plain value; raises ``UnencodableValueError`` for anything else."""
    return hash_struct(["value", value])


def is_numpy(value: object) -> bool:
    module = type(value).__module__
    return module == "numpy" or module.startswith("numpy.")


def numpy_digest(value: Any) -> str:
    """32-hex digest of a numpy array or scalar: dtype, shape and the C-order bytes."""
    import numpy as np  # an instance exists, so numpy is already imported

    if isinstance(value, np.ma.MaskedArray):  # the mask is part of the value
        return hash_struct(
            ["numpy.ma", numpy_digest(value.data), numpy_digest(np.ma.getmaskarray(value))]
        )
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise ObjectArrayError(array.dtype)
    contiguous = np.ascontiguousarray(array)
    hasher = new_hasher()
    # Viewed as bytes: datetime64 and structured dtypes do not export a buffer directly.
    hasher.update(contiguous.reshape(-1).view(np.uint8).data)
    tag = "numpy.ndarray" if isinstance(value, np.ndarray) else "numpy.generic"
    dtype = [array.dtype.str, repr(array.dtype.descr)]
    return hash_struct([tag, dtype, list(array.shape), hasher.hexdigest()])


def numpy_summary(value: Any) -> tuple[str, Any]:
    """(summary, JSON-able value) of a numpy array or scalar."""
    import numpy as np

    if isinstance(value, np.ndarray):
        shape = " × ".join(f"{n:,}" for n in value.shape) or "scalar"
        return f"numpy {value.dtype} array {shape}", None
    shown = json_value(value.item())
    return f"numpy.{type(value).__name__} {_short(shown)}", shown


class _TooBig(Exception):
    pass


def json_value(value: object) -> Any:
    """A JSON-able rendering of a plain value for ``featurecache why`` ("30 → 45"); None when
    it is too large to be worth storing (the fingerprint still covers all of it)."""
    try:
        return _json(value, [0])
    except _TooBig:
        return None


def _json(value: object, count: list[int]) -> Any:
    count[0] += 1
    if count[0] > _MAX_ITEMS:
        raise _TooBig
    if isinstance(value, enum.Enum):  # before int: IntEnum members are ints
        return f"{type(value).__qualname__}.{value.name}"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSONB has no NaN / inf
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise _TooBig
        return value
    if isinstance(value, bytes | bytearray):
        if len(value) > _MAX_TEXT // 2:
            raise _TooBig
        return {"bytes": bytes(value).hex()}
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta | decimal.Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(item, count) for item in value]
    if isinstance(value, set | frozenset):
        return [_json(item, count) for item in sorted(value, key=canonical_encode)]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _json(item, count) for key, item in value.items()}
        return [[_json(k, count), _json(v, count)] for k, v in value.items()]
    return repr(value)


def _short(shown: Any, limit: int = 80) -> str:
    text = json.dumps(shown, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_summary(value: object, shown: Any) -> str:
    """A one-line description: the value itself when short, else its type and size."""
    if shown is not None or value is None:
        return _short(shown)
    if isinstance(value, str):
        return f"str of {len(value):,} characters"
    if isinstance(value, bytes):
        return f"bytes of length {len(value):,}"
    if isinstance(value, CONTAINERS):
        return f"{type(value).__name__} of {len(value):,} items"
    return type(value).__name__
