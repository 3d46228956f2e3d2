"""Scalars of a composite result, inline in its JSON structure with a type tag, so that ``1``,
``1.0``, ``True`` and ``"1"`` stay distinct and every type comes back exactly.

* Python: None, bool, int (any size, as text), float (``float.hex``: NaN, inf and -0.0 exact,
  and JSON-standard, which PostgreSQL's JSONB requires), str, bytes (base64), date, datetime
  and time (naive or with a ``datetime.timezone`` / ``zoneinfo.ZoneInfo``; ``fold`` kept),
  timedelta, Decimal (its text: sign, digits and exponent exact).
* numpy scalars (``np.float64(1.5)``, ``np.datetime64``, structured ``np.void``…): their dtype
  (``encode_dtype``) and raw bytes; ``np.str_`` / ``np.bytes_`` as their text / bytes.
* pandas ``Timestamp`` (ticks in its own unit, the unit, the zone) and ``Timedelta``, ``NaT``
  and ``NA``: what ``df["ts"].max()`` or a missing-value marker returns.

Only exact types are accepted (``type(v) is float``): a subclass (pandas ``Timestamp``, an
``IntEnum``) would come back as its base class, so it is refused with a hint instead.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys
from typing import Any, cast

from featurecache.frames import loaded_class
from featurecache.results.leaf import RefusedLeaf, bytes_in, bytes_out, text_in, text_out
from featurecache.results.leaf import type_name as leaf_type_name

_PLAIN = (type(None), bool, int, float, str, bytes, dt.date, dt.datetime, dt.time, dt.timedelta)


def is_numpy_scalar(value: object) -> bool:
    generic = loaded_class("numpy", "generic")
    return generic is not None and isinstance(value, generic)


_PANDAS_SCALARS = ("Timestamp", "Timedelta", "NaTType", "NAType")


def _pandas_scalar(value: object) -> str | None:
    """The class name of a pandas Timestamp / Timedelta / NaT / NA (exact types), else None."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    name = type(value).__name__
    if name in _PANDAS_SCALARS and type(value) is _pandas_class(pandas, name):
        return name
    return None


def _pandas_class(pandas: Any, name: str) -> object:
    if name in ("NaTType", "NAType"):
        return type(pandas.NaT if name == "NaTType" else pandas.NA)
    return getattr(pandas, name, None)


def is_scalar(value: object) -> bool:
    kind = type(value)
    return (
        kind in _PLAIN
        or kind is decimal.Decimal
        or is_numpy_scalar(value)
        or _pandas_scalar(value) is not None
    )


def encode_scalar(value: object) -> dict[str, Any]:
    """The tagged JSON node of a scalar; ``RefusedLeaf`` for anything else."""
    if is_numpy_scalar(value):
        return _encode_numpy_scalar(value)
    pandas_name = _pandas_scalar(value)
    if pandas_name is not None:
        return _encode_pandas_scalar(pandas_name, value)
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": str(value)}  # text: JSON numbers lose precision in other readers
    if kind is float:
        assert isinstance(value, float)
        return {"t": "float", "v": value.hex()}
    if kind is str:
        assert isinstance(value, str)
        return {"t": "str", "v": text_out(value)}
    if kind is bytes:
        assert isinstance(value, bytes)
        return {"t": "bytes", "v": bytes_out(value)}
    if kind is decimal.Decimal:
        return {"t": "decimal", "v": str(value)}
    if kind is dt.timedelta:
        assert isinstance(value, dt.timedelta)
        return {"t": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is dt.date:
        assert isinstance(value, dt.date)
        return {"t": "date", "v": value.isoformat()}
    if kind is dt.datetime or kind is dt.time:
        assert isinstance(value, dt.datetime | dt.time)
        naive = value.replace(tzinfo=None).isoformat()
        return {
            "t": kind.__name__,
            "v": naive,
            "fold": value.fold,
            "tz": _encode_tz(value.tzinfo, value),
        }
    raise RefusedLeaf(leaf_type_name(value), _scalar_hint(value))


def _scalar_hint(value: object) -> str:
    if isinstance(value, dt.datetime):
        return "return a datetime.datetime (e.g. ts.to_pydatetime()) or a numpy.datetime64"
    for base in (bool, int, float, str, bytes):
        if isinstance(value, base):
            return f"convert it to a plain {base.__name__} first ({base.__name__}(value))"
    return (
        "return frames, Series, numpy arrays, Python scalars or tuples / lists / dicts of "
        "them; convert other objects to one of these first"
    )


def _encode_tz(tz: dt.tzinfo | None, at: dt.datetime | dt.time) -> dict[str, Any] | None:
    if tz is None:
        return None
    if type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default = dt.timezone(offset).tzname(None)
        node: dict[str, Any] = {
            "offset": [offset.days, offset.seconds, offset.microseconds],
            "utc": tz is dt.UTC,
        }
        if name != default:
            node["name"] = text_out(name)
        return node
    zoneinfo = loaded_class("zoneinfo", "ZoneInfo")
    if zoneinfo is not None and type(tz) is zoneinfo and getattr(tz, "key", None):
        return {"zone": tz.key}  # type: ignore[attr-defined]
    raise RefusedLeaf(
        f"{leaf_type_name(at)} with tzinfo {leaf_type_name(tz)}",
        "give it a datetime.timezone or a zoneinfo.ZoneInfo (e.g. "
        "value.astimezone(zoneinfo.ZoneInfo('Europe/Paris')))",
    )


def _decode_tz(node: dict[str, Any] | None) -> dt.tzinfo | None:
    if node is None:
        return None
    if "zone" in node:
        from zoneinfo import ZoneInfo

        return ZoneInfo(node["zone"])
    if node["utc"]:
        return dt.UTC
    offset = dt.timedelta(*node["offset"])
    if "name" in node:
        return dt.timezone(offset, text_in(node["name"]))
    return dt.timezone(offset)


def decode_scalar(node: dict[str, Any]) -> object:
    tag = node["t"]
    if tag == "numpy.scalar":
        return _decode_numpy_scalar(node)
    if tag.startswith("pandas."):
        return _decode_pandas_scalar(node)
    if tag == "none":
        return None
    if tag == "bool":
        return bool(node["v"])
    if tag == "int":
        return int(node["v"])
    if tag == "float":
        return float.fromhex(node["v"])
    if tag == "str":
        return text_in(node["v"])
    if tag == "bytes":
        return bytes_in(node["v"])
    if tag == "decimal":
        return decimal.Decimal(node["v"])
    if tag == "timedelta":
        days, seconds, micros = node["v"]
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if tag == "date":
        return dt.date.fromisoformat(node["v"])
    if tag == "datetime":
        naive = dt.datetime.fromisoformat(node["v"])
        return naive.replace(tzinfo=_decode_tz(node["tz"]), fold=node["fold"])
    if tag == "time":
        clock = dt.time.fromisoformat(node["v"])
        return clock.replace(tzinfo=_decode_tz(node["tz"]), fold=node["fold"])
    raise KeyError(tag)


SCALAR_TAGS = frozenset(
    {"numpy.scalar", "none", "bool", "int", "float", "str", "bytes", "decimal"}
    | {"timedelta", "date", "datetime", "time"}
    | {"pandas.Timestamp", "pandas.Timedelta", "pandas.NaT", "pandas.NA"}
)


# --- pandas --------------------------------------------------------------------------------


def _encode_pandas_scalar(name: str, value: Any) -> dict[str, Any]:
    if name in ("NaTType", "NAType"):
        return {"t": "pandas.NaT" if name == "NaTType" else "pandas.NA"}
    # In its own unit: a Timestamp of year 1000 in seconds has no nanosecond value.
    ticks = str(int(value.asm8.view("i8")))
    node: dict[str, Any] = {"t": f"pandas.{name}", "v": ticks, "unit": value.unit}
    if name == "Timestamp":
        node["tz"] = _encode_tz(value.tzinfo, value)
    return node


def _decode_pandas_scalar(node: dict[str, Any]) -> object:
    import numpy as np
    import pandas as pd

    tag = node["t"]
    if tag == "pandas.NaT":
        return pd.NaT
    if tag == "pandas.NA":
        return pd.NA
    if tag == "pandas.Timedelta":
        return pd.Timedelta(np.timedelta64(int(node["v"]), node["unit"]))
    stamp = pd.Timestamp(np.datetime64(int(node["v"]), node["unit"]))
    tz = _decode_tz(node["tz"])
    # asm8 counts from the epoch in UTC: localise there, then show it in its own zone.
    return stamp if tz is None else stamp.tz_localize("UTC").tz_convert(tz)


# --- numpy ---------------------------------------------------------------------------------


def encode_dtype(dtype: Any) -> Any:
    """A numpy dtype as JSON: its ``str`` (byte order, width and datetime unit included), or
    for structured dtypes the names / formats / offsets / itemsize / titles / alignment that
    ``np.dtype`` takes back, nested formats and sub-array fields included."""
    import numpy as np

    if dtype.hasobject and dtype.kind != "T":
        raise RefusedLeaf(
            f"numpy dtype {dtype}",
            "it holds Python objects, which featurecache does not pickle; convert it first "
            "(e.g. arr.astype(str), or a pandas Series)",
        )
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return {"sub": encode_dtype(base), "shape": list(shape)}
    if dtype.names is None:
        if dtype.kind == "T":
            if dtype != np.dtypes.StringDType():
                raise RefusedLeaf(
                    f"numpy dtype {dtype!r}",
                    "only StringDType() without na_object is stored; convert it first",
                )
            return "T"
        return dtype.str
    fields = [dtype.fields[name] for name in dtype.names]
    node: dict[str, Any] = {
        "names": [text_out(name) for name in dtype.names],
        "formats": [encode_dtype(field[0]) for field in fields],
        "offsets": [field[1] for field in fields],
        "itemsize": dtype.itemsize,
        "aligned": bool(dtype.isalignedstruct),
    }
    if any(len(field) > 2 for field in fields):
        node["titles"] = [text_out(f[2]) if len(f) > 2 else None for f in fields]
    return node


def decode_dtype(node: Any) -> Any:
    import numpy as np

    if isinstance(node, str):
        return np.dtypes.StringDType() if node == "T" else np.dtype(node)
    if "sub" in node:
        return np.dtype((decode_dtype(node["sub"]), tuple(node["shape"])))
    spec: dict[str, Any] = {
        "names": [text_in(name) for name in node["names"]],
        "formats": [decode_dtype(f) for f in node["formats"]],
        "offsets": node["offsets"],
        "itemsize": node["itemsize"],
    }
    if "titles" in node:
        spec["titles"] = [None if t is None else text_in(t) for t in node["titles"]]
    # The dict form is what numpy documents for structured dtypes; its stubs do not list it.
    return np.dtype(cast(Any, spec), align=bool(node["aligned"]))


def _encode_numpy_scalar(value: Any) -> dict[str, Any]:
    import numpy as np

    # np.str_ / np.bytes_ are str / bytes: their trailing NULs are content, which an element
    # of an S / U array (padded with NULs) cannot keep, so they are stored as their text / bytes.
    if isinstance(value, np.str_):
        return {"t": "numpy.scalar", "dtype": "str_", "v": text_out(str(value))}
    if isinstance(value, np.bytes_):
        return {"t": "numpy.scalar", "dtype": "bytes_", "v": bytes_out(bytes(value))}
    array = np.asarray(value)
    return {
        "t": "numpy.scalar",
        "dtype": encode_dtype(array.dtype),
        "v": bytes_out(array.tobytes()),
    }


def _decode_numpy_scalar(node: dict[str, Any]) -> object:
    import numpy as np

    if node["dtype"] == "str_":
        return np.str_(text_in(node["v"]))
    if node["dtype"] == "bytes_":
        return np.bytes_(bytes_in(node["v"]))
    dtype = decode_dtype(node["dtype"])
    # A copy: frombuffer's array is read-only and shares the decoded bytes.
    return np.frombuffer(bytes_in(node["v"]), dtype=dtype, count=1).copy()[0]


def describe_scalar(node: dict[str, Any]) -> str:
    tag: str = node["t"]
    if tag.startswith("pandas."):
        return tag
    if tag == "numpy.scalar":
        dtype = node["dtype"]
        return f"numpy.{dtype}" if dtype in ("str_", "bytes_") else f"numpy {_dtype_label(dtype)}"
    return "None" if tag == "none" else tag


def _dtype_label(node: Any) -> str:
    return "structured" if isinstance(node, dict) else str(decode_dtype(node))
