"""Composite results: a feature's return value that is not one frame, split into Parquet parts
plus a JSON structure, and joined back into a value of the same structure and types (no I/O).

``split`` walks the value: tuples, lists, dicts with str keys (order kept) and NamedTuples, to
any depth, are containers in the structure; every frame (same conversion as
``frames.to_arrow``, so a frame inside a tuple and the same frame returned alone are one
artifact), pandas / polars Series (``series``) and numpy array (``arrays``) is a ``Part``;
scalars (``scalars``) sit in the structure with a type tag. The structure refers to parts by
index and holds only str, int, bool, None, lists and str-keyed dicts (never floats, never an
object's key order): its JSON survives any catalog backend unchanged, and ``composite_id`` of
the structure read back equals the one computed at publish.

NamedTuples round-trip as their class when it can be found again by module and qualified name
(defined at module level; a class of ``__main__`` only in a process whose ``__main__`` defines
it again): ``split`` refuses a class defined inside a function, and ``join`` raises
``CompositeStructureError`` when the class is gone or its fields changed (the caller recomputes).
Other subclasses of tuple, list and dict (OrderedDict, defaultdict) are refused: a hit would
hand back the base class.

Like ``frames.to_arrow``, a part's table may share memory with the returned objects (numpy
arrays and pandas columns are not copied): publish it before the caller can write to them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from featurecache.catalog.records import ReturnKind
from featurecache.errors import FeatureCacheError, UnsupportedOutputError
from featurecache.frames import (
    FrameConversionError,
    frame_kind,
    frame_to_arrow,
    is_instance,
    loaded_class,
)
from featurecache.hashing import hash_struct
from featurecache.results import arrays, series
from featurecache.results.leaf import RefusedLeaf, text_in, text_out, type_name
from featurecache.results.scalars import (
    SCALAR_TAGS,
    decode_scalar,
    describe_scalar,
    encode_scalar,
    is_scalar,
)

CODEC = "featurecache.composite/1"

SUPPORTED_RESULTS = (
    "polars / pandas DataFrame, polars LazyFrame, pyarrow Table",
    "pandas / polars Series",
    "numpy arrays (any dtype but object) and numpy scalars",
    "None, bool, int, float, str, bytes, date, datetime, time, timedelta, Decimal",
    "pandas Timestamp, Timedelta, NaT and NA",
    "tuples, lists, NamedTuples and dicts with str keys of all of these",
)

# Scalars and containers live in the catalog row: past this many nodes the structure is data,
# and data belongs in a part (a numpy array or a Series).
MAX_NODES = 100_000


@dataclass(frozen=True)
class Part:
    """One Parquet artifact of a composite: its id is ``fingerprint_table(table)``; ``kind``
    says how to read it back (``parquet.read_artifact`` / ``read_artifact_file`` / a scan)."""

    table: pa.Table
    kind: ReturnKind


@dataclass(frozen=True)
class Split:
    """A composite result: its JSON-able structure (parts referred to by index) and its parts."""

    structure: dict[str, Any]
    parts: list[Part]


class UnsupportedResultPartError(UnsupportedOutputError):
    """A leaf of a composite result cannot be stored; ``where`` is its place in the result
    (``result[2]['model']``), ``hint`` what to return instead."""

    def __init__(self, feature: str, where: str, leaf_type: str, hint: str) -> None:
        self.where = where
        self.hint = hint
        super().__init__(feature, f"{leaf_type} at {where}", SUPPORTED_RESULTS)
        # What to do first, then the list of what can be stored.
        place = "" if where == "result" else f" at {where}"
        self.args = (
            f"feature {feature!r} returned {leaf_type}{place}, which featurecache cannot "
            f"store; nothing was cached. {hint[:1].upper()}{hint[1:]}. "
            f"Storable results: {'; '.join(SUPPORTED_RESULTS)}.",
        )


class CompositeStructureError(FeatureCacheError, ValueError):
    """A stored composite structure cannot be joined in this process (an unknown codec, a
    NamedTuple class that is gone or changed): the caller treats it as a miss."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"cannot rebuild a composite result: {problem}")


def is_composite(out: object) -> bool:
    """True for every result that is not one frame (frames keep the single-artifact path)."""
    return frame_kind(out) is None


def split(out: object, feature: str) -> Split:
    """``out`` as a structure plus parts; ``UnsupportedResultPartError`` (an
    ``UnsupportedOutputError``) names the feature and where the first unstorable leaf is."""
    splitter = _Splitter(feature)
    try:
        root = splitter.node(out, "result")
    except RecursionError:
        raise UnsupportedResultPartError(
            feature, "result", "a structure nested too deeply", "flatten it"
        ) from None
    return Split({"codec": CODEC, "root": root}, splitter.parts)


class _Splitter:
    def __init__(self, feature: str) -> None:
        self.feature = feature
        self.parts: list[Part] = []
        self.nodes = 0
        self.open: set[int] = set()  # ids of the containers on the current path

    def refuse(self, where: str, leaf_type: str, hint: str) -> UnsupportedResultPartError:
        return UnsupportedResultPartError(self.feature, where, leaf_type, hint)

    def node(self, value: object, where: str) -> dict[str, Any]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(
                where,
                f"a structure of more than {MAX_NODES} items",
                "return many values as a numpy array, a Series or a frame instead",
            )
        try:
            return self._node(value, where)
        except RefusedLeaf as exc:
            raise self.refuse(where, exc.type_name, exc.hint) from exc

    def _node(self, value: object, where: str) -> dict[str, Any]:
        kind = frame_kind(value)
        if kind is not None:
            return self.frame(value, kind)
        if is_scalar(value):
            return encode_scalar(value)
        if isinstance(value, tuple | list | dict):
            if id(value) in self.open:
                raise RefusedLeaf(
                    type_name(value), "it contains itself; return a copy without the cycle"
                )
            self.open.add(id(value))
            try:
                return self.container(value, where)
            finally:
                self.open.discard(id(value))
        # Exact classes: a subclass (a masked array, np.matrix, a GeoSeries) would come back
        # as its base class, without what the subclass adds (a mask!).
        if _is_exactly(value, "numpy", "ndarray"):
            return self.part(*arrays.split_array(value), "arrow")
        if _is_exactly(value, "pandas", "Series"):
            return self.part(*series.split_pandas_series(value), "pandas")
        if _is_exactly(value, "polars", "Series"):
            return self.part(*series.split_polars_series(value), "polars")
        raise RefusedLeaf(type_name(value), _hint_for(value))

    def part(self, node: dict[str, Any], table: pa.Table, kind: ReturnKind) -> dict[str, Any]:
        node["part"] = len(self.parts)
        self.parts.append(Part(table, kind))
        return node

    def frame(self, value: Any, kind: ReturnKind) -> dict[str, Any]:
        try:
            table = frame_to_arrow(value, kind)
        except FrameConversionError as exc:
            raise RefusedLeaf(
                f"{exc.type_name} that Arrow cannot represent ({exc.detail})",
                "give each column one data type first (e.g. df.astype({'col': str}))",
            ) from exc
        # pandas counts columns without the index (which the table may hold as columns).
        rows, columns = value.shape if kind == "pandas" else (table.num_rows, table.num_columns)
        node = {"t": "frame", "kind": kind, "type": type_name(value)}
        node |= {"rows": rows, "columns": columns}
        return self.part(node, table, kind)

    def container(
        self, value: tuple[Any, ...] | list[Any] | dict[Any, Any], where: str
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return self.mapping(value, where)
        if type(value) is list or type(value) is tuple:
            tag: dict[str, Any] = {"t": type(value).__name__}
        elif isinstance(value, tuple) and hasattr(type(value), "_fields"):
            tag = {"t": "namedtuple", **_named_class(type(value))}
        else:
            raise RefusedLeaf(type_name(value), f"return a plain {_base_name(value)} instead")
        return tag | {"items": [self.node(item, f"{where}[{i}]") for i, item in enumerate(value)]}

    def mapping(self, value: dict[Any, Any], where: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise RefusedLeaf(type_name(value), "return a plain dict instead (dict(value))")
        keys = []
        for key in value:
            if type(key) is not str:
                raise self.refuse(
                    f"{where} key {key!r}",
                    f"a dict key of type {type_name(key)}",
                    "use str keys (e.g. {str(k): v for k, v in d.items()}): JSON keys are text",
                )
            keys.append(text_out(key))
        values = [self.node(item, f"{where}[{key!r}]") for key, item in value.items()]
        return {"t": "dict", "keys": keys, "values": values}


def _base_name(value: object) -> str:
    return "tuple" if isinstance(value, tuple) else "list"


def _named_class(cls: type) -> dict[str, Any]:
    module, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname or _find_class(module, qualname) is not cls:
        raise RefusedLeaf(
            f"NamedTuple {module}.{qualname}",
            "define the NamedTuple class at module level (a hit must find it again by name), "
            "or return a plain tuple or dict",
        )
    fields = [text_out(field) for field in cls._fields]  # type: ignore[attr-defined]
    return {"module": module, "qualname": qualname, "fields": fields}


def _find_class(module: str, qualname: str) -> object:
    found: object = sys.modules.get(module)
    if found is None:
        import importlib

        try:
            found = importlib.import_module(module)
        except ImportError:
            return None
    for name in qualname.split("."):
        found = getattr(found, name, None)
    return found


def _is_exactly(value: object, module: str, name: str) -> bool:
    cls = loaded_class(module, name)
    return cls is not None and type(value) is cls


def _hint_for(value: object) -> str:
    if is_instance(value, "numpy", "ndarray"):
        return (
            "return a plain array (np.asarray(value); a masked array: value.filled(...), or a "
            "pandas Series with missing values)"
        )
    if is_instance(value, "pandas", "Series") or is_instance(value, "polars", "Series"):
        return "return a plain Series (pd.Series(value) / pl.Series(value))"
    if is_instance(value, "pandas", "Index"):
        return "return it as a Series (index.to_series()) or a numpy array (index.to_numpy())"
    if isinstance(value, set | frozenset):
        return "return a sorted list instead (sets have no order to store)"
    return (
        "return frames, Series, numpy arrays, Python scalars or tuples / lists / dicts of "
        "them; convert other objects to one of these first"
    )


def join(structure: dict[str, Any], parts: Sequence[Any]) -> Any:
    """The value ``split`` split: ``parts[i]`` is part ``i`` as read back with its kind."""
    if structure.get("codec") != CODEC:
        raise CompositeStructureError(f"unknown codec {structure.get('codec')!r}")
    return _join(structure["root"], parts)


def _join(node: dict[str, Any], parts: Sequence[Any]) -> Any:
    tag = node["t"]
    if tag in SCALAR_TAGS:
        return decode_scalar(node)
    if tag == "list":
        return [_join(item, parts) for item in node["items"]]
    if tag == "tuple":
        return tuple(_join(item, parts) for item in node["items"])
    if tag == "dict":
        keys = [text_in(key) for key in node["keys"]]
        return {key: _join(item, parts) for key, item in zip(keys, node["values"], strict=True)}
    if tag == "namedtuple":
        cls = _joined_class(node)
        return cls(*(_join(item, parts) for item in node["items"]))
    part = parts[node["part"]]
    if tag == "frame":
        return part
    if tag == "numpy.ndarray":
        return arrays.join_array(node, part)
    if tag == "pandas.Series":
        return series.join_pandas_series(node, part)
    if tag == "polars.Series":
        return series.join_polars_series(node, part)
    raise CompositeStructureError(f"unknown node type {tag!r}")


def _joined_class(node: dict[str, Any]) -> Any:
    name = f"{node['module']}.{node['qualname']}"
    cls = _find_class(node["module"], node["qualname"])
    if not isinstance(cls, type) or not issubclass(cls, tuple):
        raise CompositeStructureError(f"NamedTuple class {name} is not defined in this process")
    fields = [text_in(field) for field in node["fields"]]
    if list(getattr(cls, "_fields", ())) != fields:
        raise CompositeStructureError(f"NamedTuple class {name} no longer has fields {fields}")
    return cls


def composite_id(structure: dict[str, Any], part_ids: Sequence[str]) -> str:
    """The artifact id of a composite: its structure and its parts' artifact ids."""
    return hash_struct(["composite", structure, list(part_ids)])


def describe(structure: dict[str, Any], limit: int = 200) -> str:
    """One line for ``ls`` / ``show``: ``tuple(pandas.DataFrame 800×12, pandas.Series int64
    ×800)``; long containers are cut (``… 97 more``), the whole line at ``limit`` characters."""
    text = _describe(structure["root"])
    marker = structure.get("partitioned")
    if marker is not None:  # partitions.record: a feature mapped over partitions
        text = f"{marker['parts']} partitions of {marker['feature']}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SHOWN_ITEMS = 8


def _describe(node: dict[str, Any]) -> str:
    tag = node["t"]
    if tag in SCALAR_TAGS:
        return describe_scalar(node)
    if tag == "frame":
        return f"{node['type']} {node['rows']}×{node['columns']}"
    if tag == "numpy.ndarray":
        return arrays.describe_array(node)
    if tag == "pandas.Series":
        return series.describe_pandas_series(node)
    if tag == "polars.Series":
        return series.describe_polars_series(node)
    if tag == "dict":
        pairs = zip(node["keys"], node["values"], strict=True)
        inner = [f"{text_in(k)}: {_describe(v)}" for k, v in pairs]
        return f"dict({_cut(inner, len(node['keys']))})"
    inner = _runs([_describe(item) for item in node["items"]])
    label = node["qualname"] if tag == "namedtuple" else tag
    return f"{label}({_cut(inner, len(node['items']))})"


def _runs(items: list[str]) -> list[str]:
    """Equal neighbours counted once: ``str, str, str`` reads ``3 × str``."""
    out: list[tuple[str, int]] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1] = (item, out[-1][1] + 1)
        else:
            out.append((item, 1))
    return [item if count == 1 else f"{count} × {item}" for item, count in out]


def _cut(items: list[str], total: int) -> str:
    shown = items[:_SHOWN_ITEMS]
    counted = sum(_run_length(item) for item in shown)
    rest = total - counted
    return ", ".join(shown) + (f", … {rest} more" if rest > 0 else "")


def _run_length(item: str) -> int:
    head, sep, _ = item.partition(" × ")
    return int(head) if sep and head.isdigit() else 1
