"""``fingerprint_input``: the fingerprint of one argument of a feature call, by type.

Dispatch recognises third-party types through ``sys.modules`` (an instance of a pandas frame
implies pandas is imported), so ``import featurecache`` never imports pandas, polars or numpy.

* frames (polars DataFrame / LazyFrame, pandas DataFrame, pyarrow Table): the logical Arrow
  fingerprint of exactly the table ``frames.to_arrow`` would store, so an input and an
  output of the same content share one fingerprint; a LazyFrame is collected. Frames handed
  out by the cache are recognised (``carry``) and cost no rehash;
* pandas Series, pyarrow RecordBatch / Array / ChunkedArray, numpy arrays and scalars;
* paths (``pathlib.Path``, ``os.PathLike``): their content (``files``); ``S3Path``: its
  object's metadata (``s3object``). A ``str`` that names an existing file or folder, a glob
  that matches files, or an ``s3://`` object or prefix is that path too, its text included
  (``pathstr``); any other ``str`` is a value;
* plain values and containers of them (``values``); a container holding frames or paths is a
  Merkle hash of its parts (kind "container").

The fingerprint's ``kind`` says which of these an input is. Two inputs of different kinds can
share a digest (a pyarrow Table and a polars DataFrame holding the same Arrow data), so the
cache key must include the kind as well as the fingerprint.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint import carry
from featurecache.fingerprint.arrow.content import fingerprint_array, fingerprint_table
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.frame_info import carried_schema, frame_shape, schema_of
from featurecache.fingerprint.models import fingerprint_model, is_model
from featurecache.fingerprint.object_inputs import fingerprint_declared, fingerprint_instance
from featurecache.fingerprint.objects import refusal_hint
from featurecache.fingerprint.pathstr import fingerprint_path_str, names_data
from featurecache.fingerprint.registry import registered_fingerprint
from featurecache.fingerprint.types import FrameFingerprint, InputFingerprint
from featurecache.fingerprint.values import (
    CONTAINERS,
    ObjectArrayError,
    is_numpy,
    is_plain_scalar,
    json_value,
    numpy_digest,
    numpy_summary,
    value_digest,
    value_summary,
)
from featurecache.frames import (
    FrameConversionError,
    frame_kind,
    frame_to_arrow,
    is_instance,
    type_name,
)
from featurecache.hashing import HASH_ALGO, UnencodableValueError, canonical_encode, hash_struct

SUPPORTED_INPUTS = (
    "polars.DataFrame",
    "polars.LazyFrame",
    "pandas.DataFrame",
    "pandas.Series",
    "polars.Series",
    "pyarrow.Table / RecordBatch / Array / ChunkedArray",
    "numpy arrays and scalars (not dtype=object)",
    "None, bool, int, float, str, bytes",
    "datetime.date / datetime / time / timedelta",
    "decimal.Decimal",
    "enum.Enum",
    "list / tuple / dict / set of these",
    "pathlib.Path and os.PathLike (the file's content)",
    "str naming an existing file or folder, a glob matching files, or an s3:// object",
    "featurecache S3Path (the s3:// object)",
    "featurecache DvcPath (a DVC-tracked file at a git revision)",
    "dataclasses, NamedTuples, attrs classes, pydantic models (their fields)",
    "instances of your own classes (their attributes)",
    "scikit-learn estimators, LightGBM Boosters",
    "str MLflow model URIs (models:/…, runs:/…)",
    "types taught with featurecache.register_fingerprint",
)
_S3_MODULE = "featurecache.fingerprint.s3object"
# Input types that integrations teach the fingerprinter (``register_input_type``): each module
# that defines such a type registers it when imported, which any instance implies.
_REGISTERED: dict[type, Callable[[str, Any], InputFingerprint]] = {}


def register_input_type(cls: type, fingerprint: Callable[[str, Any], InputFingerprint]) -> None:
    """Fingerprint arguments of exactly type ``cls`` with ``fingerprint(argument, value)``."""
    _REGISTERED[cls] = fingerprint


# Whether a ``str`` that names a path is fingerprinted as that path: False while an argument
# listed in ``@cached_feature(values=[...])`` is fingerprinted. A context variable rather than a
# parameter, so every recursion into containers (and into the fields of config objects) sees
# the argument's setting without each handler passing it on.
_STR_PATHS: ContextVar[bool] = ContextVar("featurecache_str_paths", default=True)


def _prefixed(digest: str) -> str:
    return f"{HASH_ALGO}:{digest}"


def fingerprint_input(
    argument: str, value: object, *, files: FileFingerprinter, str_paths: bool = True
) -> InputFingerprint:
    """The fingerprint of ``value`` passed as ``argument``. Raises ``UnsupportedInputError``
    (naming the argument, the type and what is supported) for anything else.

    ``str_paths=False`` hashes every ``str`` in ``value`` as text, even one naming a path
    (the ``values=[...]`` option of ``cached_feature``)."""
    token = _STR_PATHS.set(str_paths)
    try:
        return _fingerprint(argument, argument, value, files)
    finally:
        _STR_PATHS.reset(token)


def _fingerprint(
    argument: str, where: str, value: object, files: FileFingerprinter
) -> InputFingerprint:
    artifact_id = carry.recall(value)
    if artifact_id is not None:
        return _carried(argument, value, artifact_id)
    # Types given to register_fingerprint, then config objects: before the built-in rules, as
    # a registration wins over them and a NamedTuple is also a tuple.
    declared = fingerprint_declared(argument, where, value, _recurse(argument, files))
    if declared is not None:
        return declared
    kind = frame_kind(value)
    if kind is not None:
        return _frame(argument, where, value, kind)
    cls = type(value)
    if cls.__name__ == "S3Path" and cls.__module__ == _S3_MODULE:
        from featurecache.fingerprint.s3object import fingerprint_s3_object

        return fingerprint_s3_object(argument, value)  # type: ignore[arg-type]
    registered = _REGISTERED.get(cls)
    if registered is not None:
        return registered(argument, value)
    special = _special(value)
    if special is not None:
        return special(argument, where, value)
    if isinstance(value, os.PathLike):
        return files.fingerprint(argument, value)
    if isinstance(value, str) and _STR_PATHS.get():
        named = fingerprint_path_str(argument, value, files)
        if named is not None:
            return named
    if is_plain_scalar(value) or isinstance(value, CONTAINERS):
        return _plain(argument, where, value, files)
    if is_model(value):  # after the common values: they never pay for the check
        return fingerprint_model(argument, where, value)
    instance = fingerprint_instance(argument, where, value, _recurse(argument, files))
    if instance is not None:
        return instance
    raise _unsupported(argument, where, value)


def _frame(argument: str, where: str, value: Any, kind: Any) -> InputFingerprint:
    try:
        table = frame_to_arrow(value, kind)
    except FrameConversionError as exc:
        raise UnsupportedInputError(
            argument,
            f"{exc.type_name} that Arrow cannot represent{_at(argument, where)}",
            SUPPORTED_INPUTS,
            f"({exc.detail}) Convert the offending columns to supported dtypes first.",
        ) from exc
    rows, columns = frame_shape(value, table)
    return FrameFingerprint(
        argument=argument,
        kind=kind,
        fingerprint=_prefixed(fingerprint_table(table)),
        label=_FRAME_LABELS.get(kind, "pyarrow Table"),
        rows=rows,
        columns=columns,
        arrow_schema=table.schema,
    )


_FRAME_LABELS = {
    "polars": "polars DataFrame",
    "lazy": "polars LazyFrame (collected)",
    "pandas": "pandas DataFrame",
}


def _carried(argument: str, value: Any, artifact_id: str) -> InputFingerprint:
    kind = frame_kind(value) or "arrow"
    schema, rows = carried_schema(value, kind)
    return InputFingerprint(
        argument=argument,
        kind=kind,
        fingerprint=_prefixed(artifact_id),
        summary=f"cached artifact {artifact_id[:12]}"
        + (f" ({rows:,} rows)" if rows is not None else ""),
        schema=schema,
        rows=rows,
        upstream_artifact_id=artifact_id,
    )


def _special(value: object) -> Callable[[str, str, Any], InputFingerprint] | None:
    """Handlers for the non-frame third-party types, found without importing anything."""
    if any(
        is_instance(value, "pyarrow", name) for name in ("RecordBatch", "Array", "ChunkedArray")
    ):
        return _arrow_other
    if is_instance(value, "pandas", "Series") or is_instance(value, "polars", "Series"):
        return _series
    if is_numpy(value):
        return _numpy
    return None


def _arrow_other(argument: str, where: str, value: Any) -> InputFingerprint:
    import pyarrow as pa

    tag = f"pyarrow.{type(value).__name__}"
    if isinstance(value, pa.RecordBatch):
        table = pa.Table.from_batches([value])
        digest, rows, schema = fingerprint_table(table), table.num_rows, schema_of(table)
        summary = f"pyarrow RecordBatch {rows:,} × {table.num_columns:,}"
    else:
        digest, rows, schema = fingerprint_array(value), len(value), None
        summary = f"{tag} {value.type} × {rows:,}"
    return InputFingerprint(
        argument=argument,
        kind="arrow",
        fingerprint=_prefixed(hash_struct([tag, digest])),
        summary=summary,
        schema=schema,
        rows=rows,
    )


def _series(argument: str, where: str, value: Any) -> InputFingerprint:
    """A pandas or polars Series: its one-column frame, tagged with the library and name."""
    library = type(value).__module__.split(".")[0]
    try:
        table = frame_to_arrow(value.to_frame(), "pandas" if library == "pandas" else "polars")
    except FrameConversionError as exc:
        raise UnsupportedInputError(
            argument,
            f"{library}.Series that Arrow cannot represent{_at(argument, where)}",
            SUPPORTED_INPUTS,
            f"({exc.detail}) Convert it to a supported dtype first.",
        ) from exc
    try:  # the name is part of the value (to_frame() names an unnamed Series 0)
        name: object = canonical_encode(value.name)
    except UnencodableValueError:
        name = repr(value.name)
    return InputFingerprint(
        argument=argument,
        kind=library,
        fingerprint=_prefixed(hash_struct([f"{library}.Series", name, fingerprint_table(table)])),
        summary=f"{library} Series {value.dtype} × {len(value):,}",
        schema=schema_of(table),
        rows=len(value),
    )


def _numpy(argument: str, where: str, value: Any) -> InputFingerprint:
    try:
        digest = numpy_digest(value)
    except ObjectArrayError:
        raise UnsupportedInputError(
            argument,
            f"numpy array of dtype object{_at(argument, where)}",
            SUPPORTED_INPUTS,
            "Its bytes are pointers to Python objects: convert it to a typed array, a list, "
            "or a frame.",
        ) from None
    summary, shown = numpy_summary(value)
    return InputFingerprint(
        argument=argument, kind="numpy", fingerprint=_prefixed(digest), summary=summary, value=shown
    )


def _plain(argument: str, where: str, value: object, files: FileFingerprinter) -> InputFingerprint:
    if isinstance(value, CONTAINERS) and _needs_parts(value, _STR_PATHS.get()):
        return _container(argument, where, value, files)
    try:
        digest = value_digest(value)
    except UnencodableValueError:
        return _container(argument, where, value, files)
    shown = json_value(value)
    return InputFingerprint(
        argument=argument,
        kind="value",
        fingerprint=_prefixed(digest),
        summary=value_summary(value, shown),
        value=shown,
    )


def _container(
    argument: str, where: str, value: object, files: FileFingerprinter
) -> InputFingerprint:
    """A list/tuple/dict/set holding frames or paths: a Merkle hash over tagged parts."""
    parts: list[dict[str, Any]] = []

    def tree(item: object, at: str) -> list[Any]:
        if item is not value and _declared(item):  # a NamedTuple is a config, not a tuple
            leaf = _fingerprint(argument, at, item, files)
            parts.append({"at": at, **leaf.to_json()})
            return ["leaf", leaf.kind, leaf.fingerprint]
        if isinstance(item, list | tuple):
            tag = "list" if isinstance(item, list) else "tuple"
            return [tag, [tree(x, f"{at}[{i}]") for i, x in enumerate(item)]]
        if isinstance(item, dict):
            pairs = [[tree(k, f"{at}[key]"), tree(v, f"{at}[{k!r}]")] for k, v in item.items()]
            return ["dict", sorted(pairs, key=canonical_encode)]
        if isinstance(item, set | frozenset):
            return ["set", sorted((tree(x, f"{at}{{}}") for x in item), key=canonical_encode)]
        leaf = _fingerprint(argument, at, item, files)
        if leaf.kind != "value":
            parts.append({"at": at, **leaf.to_json()})
        return ["leaf", leaf.kind, leaf.fingerprint]

    structure = tree(value, where)
    return InputFingerprint(
        argument=argument,
        kind="container",
        fingerprint=_prefixed(hash_struct(["container", structure])),
        summary=f"{type(value).__name__} of {len(value):,} items with {len(parts)} frame/path parts",  # type: ignore[arg-type]
        value={"parts": parts},
    )


def _needs_parts(value: object, paths: bool, top: bool = True) -> bool:
    """Whether a container of plain values holds a ``str`` that names a path (``paths``), or a
    NamedTuple or registered type (a config, whose class counts, not a plain tuple): then it
    is hashed part by part (``_container``), so each such item counts as it would alone. A
    container of plain values keeps the value fingerprint it always had."""
    if isinstance(value, str):
        return paths and names_data(value)
    if not top and _declared(value):
        return True
    if isinstance(value, dict):
        return any(
            _needs_parts(k, paths, False) or _needs_parts(v, paths, False) for k, v in value.items()
        )
    if isinstance(value, CONTAINERS):
        return any(_needs_parts(item, paths, False) for item in value)
    return False


def _declared(value: object) -> bool:
    """A container-like value with a fingerprint of its own: a NamedTuple, or an instance of
    a type given to ``register_fingerprint`` (which may subclass a container)."""
    cls = type(value)
    if cls in _PLAIN_CONTAINERS or not isinstance(value, CONTAINERS):
        return False
    return hasattr(cls, "_fields") or registered_fingerprint(cls) is not None


def _at(argument: str, where: str) -> str:
    return "" if where == argument else f" at {where}"


def _recurse(argument: str, files: FileFingerprinter) -> Callable[[str, object], InputFingerprint]:
    """The dispatch for the fields of an object argument (``object_inputs``)."""
    return lambda where, item: _fingerprint(argument, where, item, files)


_PLAIN_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})

_CODE_TYPES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    functools.partial,
)


def _unsupported(argument: str, where: str, value: object) -> UnsupportedInputError:
    if hasattr(value, "__next__") or type(value).__name__ in {"generator", "map", "filter"}:
        hint = "Iterators are consumed by hashing: materialise it first, e.g. list(...)."
    elif type(value).__module__.split(".")[0] == "pandas":
        hint = "Convert it to a pandas DataFrame or Series."
    elif isinstance(value, _CODE_TYPES):
        hint = "Functions are part of the code identity, not of the inputs: call it inside."
    else:
        hint = refusal_hint(value)
    return UnsupportedInputError(
        argument, f"{type_name(value)}{_at(argument, where)}", SUPPORTED_INPUTS, hint
    )
