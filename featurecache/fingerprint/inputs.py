"""``fingerprint_input``: the fingerprint of one argument of a feature call, by type.

Dispatch recognises third-party types through ``sys.modules`` (an instance of a pandas frame
implies pandas is imported), so ``import featurecache`` never imports pandas, polars or numpy.

* frames (polars DataFrame / LazyFrame, pandas DataFrame, pyarrow Table): the logical Arrow
  fingerprint of exactly the table ``frames.to_arrow`` would store, so an input and an
  output of the same content share one fingerprint; a LazyFrame is collected. Frames handed
  out by the cache are recognised (``carry``) and cost no rehash;
* pandas Series, pyarrow RecordBatch / Array / ChunkedArray, numpy arrays and scalars;
* paths (``pathlib.Path``, ``os.PathLike``): their content (``files``); ``S3Path``: its
  object's metadata (``s3object``). A ``str`` is a value, never a path;
* plain values and containers of them (``values``); a container holding frames or paths is a
  Merkle hash of its parts (kind "container").

The fingerprint's ``kind`` says which of these an input is. Two inputs of different kinds can
share a digest (a pyarrow Table and a polars DataFrame holding the same Arrow data), so the
cache key must include the kind as well as the fingerprint.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint import carry
from featurecache.fingerprint.arrow.content import fingerprint_array, fingerprint_table
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.frame_info import carried_schema, frame_shape, schema_of
from featurecache.fingerprint.types import InputFingerprint
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
    "featurecache S3Path (the s3:// object)",
    "featurecache DvcPath (a DVC-tracked file at a git revision)",
)
_S3_MODULE = "featurecache.fingerprint.s3object"
# Input types that integrations teach the fingerprinter (``register_input_type``): each module
# that defines such a type registers it when imported, which any instance implies.
_REGISTERED: dict[type, Callable[[str, Any], InputFingerprint]] = {}


def register_input_type(cls: type, fingerprint: Callable[[str, Any], InputFingerprint]) -> None:
    """Fingerprint arguments of exactly type ``cls`` with ``fingerprint(argument, value)``."""
    _REGISTERED[cls] = fingerprint


class StrLooksLikePathWarning(UserWarning):
    """A ``str`` argument names an existing file: its text is hashed, not the file."""


def _prefixed(digest: str) -> str:
    return f"{HASH_ALGO}:{digest}"


def fingerprint_input(
    argument: str, value: object, *, files: FileFingerprinter
) -> InputFingerprint:
    """The fingerprint of ``value`` passed as ``argument``. Raises ``UnsupportedInputError``
    (naming the argument, the type and what is supported) for anything else."""
    return _fingerprint(argument, argument, value, files)


def _fingerprint(
    argument: str, where: str, value: object, files: FileFingerprinter
) -> InputFingerprint:
    artifact_id = carry.recall(value)
    if artifact_id is not None:
        return _carried(argument, value, artifact_id)
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
    if is_plain_scalar(value) or isinstance(value, CONTAINERS):
        return _plain(argument, where, value, files)
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
    label = {"polars": "polars DataFrame", "lazy": "polars LazyFrame (collected)"}.get(
        kind, "pandas DataFrame" if kind == "pandas" else "pyarrow Table"
    )
    return InputFingerprint(
        argument=argument,
        kind=kind,
        fingerprint=_prefixed(fingerprint_table(table)),
        summary=f"{label} {rows:,} × {columns:,}",
        schema=schema_of(table),
        rows=rows,
    )


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
    try:
        digest = value_digest(value)
    except UnencodableValueError:
        return _container(argument, where, value, files)
    if isinstance(value, str):
        _warn_if_path(argument, value)
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


def _warn_if_path(argument: str, text: str) -> None:
    if not text or len(text) > 1024 or "\n" in text or ("/" not in text and os.sep not in text):
        return
    if os.path.exists(text):
        warnings.warn(
            f"argument {argument!r} is the str {text!r}, which names an existing path: "
            "featurecache keys on the text, not on the file. Pass pathlib.Path(...) to "
            "fingerprint the file's content.",
            StrLooksLikePathWarning,
            stacklevel=5,
        )


def _at(argument: str, where: str) -> str:
    return "" if where == argument else f" at {where}"


def _unsupported(argument: str, where: str, value: object) -> UnsupportedInputError:
    hint = "Pass plain values, frames or paths instead (or convert the object to one)."
    if hasattr(value, "__next__") or type(value).__name__ in {"generator", "map", "filter"}:
        hint = "Iterators are consumed by hashing: materialise it first, e.g. list(...)."
    elif type(value).__module__.split(".")[0] == "pandas":
        hint = "Convert it to a pandas DataFrame or Series."
    elif callable(value):
        hint = "Functions are part of the code identity, not of the inputs: call it inside."
    return UnsupportedInputError(
        argument, f"{type_name(value)}{_at(argument, where)}", SUPPORTED_INPUTS, hint
    )
