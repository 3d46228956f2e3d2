"""Hashing the *values* a feature's code reads: module constants, closure cells, default
arguments, class attributes, ``depends_on`` values.

Values are encoded into a tagged structure that ``canonical_encode`` accepts, so a value's
digest is stable across processes and hash seeds:

* scalars, dates, decimals and enums as themselves; lists, tuples, dicts and sets recursively
  (dicts and sets sorted by the encoding of their members);
* functions, classes and modules as *references* (the caller follows them into the code
  identity and returns a token such as ``pipeline.util:clean_ts``);
* ``functools.partial`` as its function, arguments and keywords; bound methods as the instance
  and the function; instances of user classes as their class and their state (dataclass fields,
  ``__dict__``, ``__slots__``), as are dataclass instances and ``SimpleNamespace``s;
* numpy arrays and scalars by their bytes, polars / pandas / pyarrow frames by their logical
  Arrow fingerprint (``fingerprint/arrow.py``; both up to 64 MiB),
  numpy / polars / pyarrow data types, compiled regular expressions, paths and UUIDs by value;
* loggers and locks by type only (they do not change results).

Anything else (an open file, a database connection, a random generator…) has no canonical
value: it is reported as a finding and only its type is hashed.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import enum
import functools
import logging
import re
import sys
import threading
import types
import uuid
from pathlib import PurePath
from typing import Any, Protocol

from featurecache.hashing import UnencodableValueError, canonical_encode, digest_bytes, hash_struct

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 24
_ATOMS = (type(None), bool, int, float, str, bytes)
# Library objects a class statement makes from the class's own code, by (module, name):
# scikit-learn's ``set_*_request`` methods, made by ``__init_subclass__`` from the signatures
# of ``fit``/``score``/… of every estimator class (a user estimator included).
_CLASS_MADE = frozenset({("sklearn.utils._metadata_requests", "RequestMethod")})
_NEUTRAL_TYPES: tuple[type, ...] = (
    logging.Logger,
    logging.LoggerAdapter,
    logging.Handler,
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Event,
    threading.Condition,
    # Made by the class statement itself (``__slots__``, NamedTuple fields, ABC caches): the
    # class statement is hashed, so these are no live state.
    types.MemberDescriptorType,
    type(vars(collections.namedtuple("_Probe", "x"))["x"]),
    type(vars(abc.ABC)["_abc_impl"]),
)


class ValueContext(Protocol):
    def token(self, obj: object) -> str | None:
        """A reference token for functions, classes, modules (followed); None for values."""

    def finding(self, message: str, fatal: bool) -> None:
        """Report something that cannot be hashed faithfully."""


def value_digest(obj: object, ctx: ValueContext, path: str) -> tuple[str, bool]:
    """``(digest, mutable)``: mutable values must be re-checked before a memoised identity is
    reused, immutable ones only by identity."""
    encoder = _Encoder(ctx)
    structure = encoder.encode(obj, path, 0)
    return hash_struct(["value", structure]), encoder.mutable


class _Encoder:
    def __init__(self, ctx: ValueContext) -> None:
        self.ctx = ctx
        self.mutable = False
        self._stack: set[int] = set()

    def encode(self, obj: object, path: str, depth: int) -> object:
        if type(obj) in _ATOMS:  # exact types: subclasses (numpy scalars…) bring their class
            return ["A", obj]
        if depth > MAX_DEPTH:
            self.ctx.finding(f"{path} is nested deeper than {MAX_DEPTH} levels", True)
            return ["deep"]
        if id(obj) in self._stack:
            return ["cycle"]
        self._stack.add(id(obj))
        try:
            return self._encode(obj, path, depth + 1)
        finally:
            self._stack.discard(id(obj))

    def _encode(self, obj: object, path: str, depth: int) -> object:
        token = self.ctx.token(obj)
        if token is not None:
            return ["R", token]
        if isinstance(obj, bytearray | memoryview):
            self.mutable = True
            return ["A", bytes(obj)]
        if type(obj).__module__ != "builtins":
            # The type's code runs when the value is used: a library type records its
            # version, a user class is followed.
            self.ctx.token(type(obj))
        simple = _simple(obj)
        if simple is not None:
            return simple
        if isinstance(obj, collections.deque):
            self.mutable = True
            return ["Q", self._container(list(obj), path, depth)]
        if isinstance(obj, list | tuple | set | frozenset | dict):
            return self._container(obj, path, depth)
        if isinstance(obj, functools.partial):
            return [
                "P",
                self.encode(obj.func, f"{path}.func", depth),
                self.encode(list(obj.args), f"{path}.args", depth),
                self.encode(dict(obj.keywords), f"{path}.keywords", depth),
            ]
        if isinstance(obj, types.MethodType):
            return [
                "M",
                self.encode(obj.__self__, f"{path}.__self__", depth),
                self.encode(obj.__func__, path, depth),
            ]
        if _is_numpy_object_array(obj):
            self.mutable = True
            return self._object_array(obj, path, depth)
        data = _data_value(obj, path, self.ctx)
        if data is not None:
            self.mutable = True
            return data
        return self._instance(obj, path, depth)

    def _container(self, obj: object, path: str, depth: int) -> object:
        if isinstance(obj, list | set | dict):
            self.mutable = True
        if isinstance(obj, dict):
            items = [
                (self.encode(k, f"{path}[key]", depth), self.encode(v, f"{path}[{k!r}]", depth))
                for k, v in obj.items()
            ]
            items.sort(key=lambda kv: canonical_encode(kv[0]))
            return ["D", [list(kv) for kv in items]]
        if isinstance(obj, set | frozenset):
            members = [self.encode(v, f"{path}{{}}", depth) for v in obj]
            return ["S", sorted(members, key=canonical_encode)]
        assert isinstance(obj, list | tuple)
        tag = "L" if isinstance(obj, list) else "T"
        return [tag, [self.encode(v, f"{path}[{i}]", depth) for i, v in enumerate(obj)]]

    def _object_array(self, obj: Any, path: str, depth: int) -> object:
        if obj.size > 10_000:
            self.ctx.finding(f"{path} is a numpy object array over 10,000 items (not hashed)", True)
            return ["X", "numpy-object", list(obj.shape)]
        return ["NO", list(obj.shape), self.encode(obj.tolist(), path, depth)]

    def _instance(self, obj: object, path: str, depth: int) -> object:
        cls = type(obj)
        cls_token = self.ctx.token(cls) or f"{cls.__module__}.{cls.__qualname__}"
        if isinstance(obj, _NEUTRAL_TYPES) or (cls.__module__, cls.__name__) in _CLASS_MADE:
            return ["X", cls_token]
        wrapped = wrapped_function(obj)
        if wrapped is not None:
            return ["W", cls_token, self.encode(wrapped, f"{path}.__wrapped__", depth)]
        if _state_is_the_value(obj, cls_token):
            state = _instance_state(obj)
            if state is not None:
                self.mutable = True
                return ["I", cls_token, self.encode(state, path, depth)]
        self.ctx.finding(
            f"{path} is a live {cls.__module__}.{cls.__qualname__} object with no canonical "
            "value (only its type is hashed)",
            True,
        )
        return ["X", cls_token]


def _state_is_the_value(obj: object, cls_token: str) -> bool:
    # User classes, dataclasses and namespaces are their attributes; other library objects
    # (connections, generators, models) hold state their attributes do not show.
    if not cls_token.startswith(("lib:", "std:", "builtin:")):
        return True
    if dataclasses.is_dataclass(obj) or isinstance(obj, types.SimpleNamespace):
        return True
    return (type(obj).__module__, type(obj).__name__) == ("argparse", "Namespace")


def wrapped_function(obj: object) -> object | None:
    """The function a decorator object wraps (``functools.wraps``, numba, joblib, vectorize)."""
    if isinstance(
        obj, type | types.ModuleType | types.FunctionType | types.MethodType | functools.partial
    ):
        return None
    if not callable(obj):
        return None
    for attr in ("__wrapped__", "py_func", "pyfunc", "func"):
        inner: object = getattr(obj, attr, None) if attr in _attr_names(obj) else None
        if callable(inner):
            return inner
    return None


def _attr_names(obj: object) -> set[str]:
    names = set(getattr(obj, "__dict__", None) or {})
    for klass in type(obj).__mro__:
        names.update(vars(klass))
    return names


def _simple(obj: object) -> list[object] | None:
    """Values with a direct canonical encoding."""
    if isinstance(obj, complex):
        return ["C", obj.real, obj.imag]
    if isinstance(obj, range):
        return ["X", "range", [obj.start, obj.stop, obj.step]]
    if isinstance(obj, re.Pattern):
        return ["X", "re.Pattern", [obj.pattern, obj.flags]]
    if isinstance(obj, PurePath):
        return ["X", type(obj).__name__, str(obj)]
    if isinstance(obj, uuid.UUID):
        return ["X", "uuid", str(obj)]
    if obj is Ellipsis or obj is NotImplemented:
        return ["X", repr(obj)]
    if not isinstance(obj, list | tuple | dict | set | frozenset):
        try:
            return ["A", canonical_encode(obj)]
        except UnencodableValueError:
            pass
    if type(obj).__module__ == "typing":  # aliases such as Optional[int]: repr is canonical
        return ["X", "typing", repr(obj)]
    dtype = _dtype_text(obj)
    if dtype is not None:
        return ["X", "dtype", dtype]
    return None


def _dtype_text(obj: object) -> str | None:
    module = type(obj).__module__ or ""
    top = module.partition(".")[0]
    name = type(obj).__name__
    if top == "numpy" and isinstance(obj, sys.modules["numpy"].dtype):
        return f"numpy:{obj.str}:{obj}"
    if top == "polars" and module.startswith("polars.datatypes"):
        return f"polars:{obj!r}"
    if (
        top == "pyarrow"
        and name.endswith("Type")
        and "DataType" in [c.__name__ for c in type(obj).__mro__]
    ):
        return f"pyarrow:{obj}"
    return None


def _data_value(obj: object, path: str, ctx: ValueContext) -> list[object] | None:
    """numpy arrays/scalars and frames, by their bytes."""
    module = (type(obj).__module__ or "").partition(".")[0]
    name = type(obj).__name__
    if module == "numpy":
        return _numpy_value(obj, path, ctx)
    if (module, name) in _FRAME_TYPES:
        return _frame_value(obj, module, name, path, ctx)
    return None


_FRAME_TYPES = {
    ("polars", "DataFrame"),
    ("polars", "Series"),
    ("pandas", "DataFrame"),
    ("pandas", "Series"),
    ("pyarrow", "Table"),
    ("pyarrow", "RecordBatch"),
    ("pyarrow", "ChunkedArray"),
}


def _is_numpy_object_array(obj: object) -> bool:
    dtype = getattr(obj, "dtype", None)
    return (
        (type(obj).__module__ or "").startswith("numpy")
        and type(obj).__name__ == "ndarray"
        and bool(getattr(dtype, "hasobject", False))
    )


def _numpy_value(obj: Any, path: str, ctx: ValueContext) -> list[object] | None:
    if not hasattr(obj, "dtype") or not hasattr(obj, "tobytes"):
        return None
    if obj.nbytes > MAX_BYTES:
        ctx.finding(f"{path} is a numpy array over {MAX_BYTES >> 20} MiB (not hashed)", True)
        return ["X", "numpy-large", obj.dtype.str, list(getattr(obj, "shape", ()))]
    import numpy as np

    data = np.ascontiguousarray(obj).tobytes()
    return ["N", obj.dtype.str, list(getattr(obj, "shape", ())), digest_bytes(data)]


def _frame_value(obj: Any, module: str, name: str, path: str, ctx: ValueContext) -> list[object]:
    import pyarrow as pa

    from featurecache.fingerprint.arrow.content import fingerprint_table

    if module == "polars":
        table: Any = obj.to_frame().to_arrow() if name == "Series" else obj.to_arrow()
    elif module == "pandas":
        frame = obj.to_frame() if name == "Series" else obj
        table = pa.Table.from_pandas(frame, preserve_index=True)
    elif name == "ChunkedArray":
        table = pa.table({"values": obj})
    elif name == "RecordBatch":
        table = pa.Table.from_batches([obj])
    else:
        table = obj
    if table.nbytes > MAX_BYTES:
        ctx.finding(f"{path} is a {module} {name} over {MAX_BYTES >> 20} MiB (not hashed)", True)
        return ["X", f"{module}.{name}-large", str(table.schema)]
    return ["F", f"{module}.{name}", fingerprint_table(table)]


def _instance_state(obj: object) -> dict[str, object] | None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    state: dict[str, object] = {}
    has_state = False
    if hasattr(obj, "__dict__"):
        state.update(vars(obj))
        has_state = True
    for klass in type(obj).__mro__:
        for slot in _slots(klass):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                state[slot] = getattr(obj, slot)
                has_state = True
    return state if has_state else None


def _slots(klass: type) -> tuple[str, ...]:
    slots = klass.__dict__.get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def short_json(value: object, limit: int = 80) -> tuple[bool, object]:
    """``(True, copy)`` when ``value`` is plain JSON and short enough to show in ``why``: a
    copy, as a key must keep showing the value it was built from after a list is mutated."""
    import json

    if not _plain_json(value, 0):
        return False, None
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return (True, json.loads(text)) if len(text) <= limit else (False, None)


def _plain_json(value: object, depth: int) -> bool:
    if depth > 4:
        return False
    if isinstance(value, enum.Enum):
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v, depth + 1) for k, v in value.items())
    return False
